/**
 * `directory` (issue 6): lookups per second sustained by the directory with 1,000 groups
 * registered (target ≥10,000/s on this 2-core machine) and their latency, against a baseline:
 * the same server answering a constant (GET /v1/health, through the same TLS and the same
 * per-connection identity hook); and the time of an mDNS resolution on a quiet link
 * (bench/lib/mdnsResolve.ts, two network namespaces; needs root).
 *
 * The directory runs as deployed (`iolus directory --config …`, its own process), trusting 1,000
 * group CAs; 2,000 agents (a controller and an intermediary per group) register over mutual TLS
 * from this process. The load comes from a third process (this file, forked): keep-alive mutual
 * TLS connections, each a member of a different group looking its own group up, a few requests
 * pipelined per connection on a minimal HTTP/1.1 client, so the client costs less CPU than the
 * server. Baseline and lookup rounds alternate; the figures are medians of the rounds.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, renameSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import tls from 'node:tls';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { createCa, issueCertificate } from '../src/pki/index.js';
import { median, percentile, writeReport, type BenchRow } from './lib/report.js';

const GROUPS = Number(process.env.IOLUS_BENCH_DIRECTORY_GROUPS ?? 1000);
const TARGET_PER_S = 10_000;
const CONNECTIONS = 16;
const DEPTH = 4;
const ROUND_MS = 4_000;
const WARMUP_MS = 1_000;
const ROUNDS = 5;
const here = dirname(fileURLToPath(import.meta.url));
const MAIN_JS = join(here, '..', 'src', 'cli', 'main.js');

interface Pair {
  cert: string;
  key: string;
}
interface BenchGroup {
  group: string;
  ca: string;
  agents: (Pair & { name: string })[];
  member?: Pair;
}
interface DirectoryPki {
  version: number;
  notAfter: string;
  dirCa: string;
  directory: Pair;
  groups: BenchGroup[];
}

function log(line: string): void {
  process.stdout.write(`directory: ${line}\n`);
}

const groupName = (i: number) => `bench-g${String(i).padStart(4, '0')}`;

/** 1,000 group CAs with two agents each, a member for the first groups, a directory CA; cached. */
async function directoryPki(): Promise<DirectoryPki> {
  const dir = join(os.tmpdir(), 'iolus-bench-cache');
  const path = join(dir, `directory-pki-${GROUPS}-v1.json`);
  if (existsSync(path)) {
    const c = JSON.parse(readFileSync(path, 'utf8')) as DirectoryPki;
    if (c.version === 1 && Date.parse(c.notAfter) > Date.now() + 2 * 86_400_000) return c;
  }
  const t0 = Date.now();
  log(`issuing ${GROUPS} group CAs and ${2 * GROUPS} agent certificates (cached in ${path})`);
  const dirCa = await createCa({ group: 'directory', validityDays: 60 });
  const d = await issueCertificate(dirCa, { name: 'directory', role: 'controller', validityDays: 60 });
  const groups: BenchGroup[] = new Array(GROUPS);
  let next = 0;
  await Promise.all(Array.from({ length: 6 }, async () => {
    while (next < GROUPS) {
      const i = next++;
      const ca = await createCa({ group: groupName(i), validityDays: 60 });
      const agents = [];
      for (const [name, role] of [['ctl', 'controller'], ['int', 'intermediary']] as const) {
        const c = await issueCertificate(ca, { name, role, validityDays: 60 });
        agents.push({ name, cert: c.certPem, key: c.keyPem });
      }
      const m = i < CONNECTIONS ? await issueCertificate(ca, { name: 'member', role: 'member', validityDays: 60 }) : undefined;
      groups[i] = { group: groupName(i), ca: ca.certPem, agents, ...(m ? { member: { cert: m.certPem, key: m.keyPem } } : {}) };
    }
  }));
  const pki: DirectoryPki = { version: 1, notAfter: new Date(Date.now() + 59 * 86_400_000).toISOString(), dirCa: dirCa.certPem, directory: { cert: d.certPem, key: d.keyPem }, groups };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(pki), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  log(`issued in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return pki;
}

interface Server {
  child: ChildProcess;
  url: string;
  cpuMs(): number;
}

async function startDirectory(work: string, pki: DirectoryPki): Promise<Server> {
  const groups: Record<string, { ca: string }> = {};
  mkdirSync(join(work, 'ca'));
  for (const g of pki.groups) {
    const f = join(work, 'ca', `${g.group}.crt`);
    writeFileSync(f, g.ca);
    groups[g.group] = { ca: f };
  }
  writeFileSync(join(work, 'directory.crt'), pki.directory.cert);
  writeFileSync(join(work, 'directory.key'), pki.directory.key, { mode: 0o600 });
  writeFileSync(join(work, 'directory.yaml'), toYaml({
    listen: { host: '127.0.0.1', port: 0 }, tls: { cert: 'directory.crt', key: 'directory.key' }, groups,
    registrations: { maxTtl: '1h', maxRegistrations: 10 * GROUPS }, log: { level: 'warn' },
  }));
  const child = spawn(process.execPath, [MAIN_JS, 'directory', '--config', join(work, 'directory.yaml')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, IOLUS_LOG_LEVEL: 'info' } });
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('directory did not start within 60 s')), 60_000);
    lines.on('line', (l) => {
      if (!l.includes('"event":"start"')) return;
      clearTimeout(timer);
      resolve(String((JSON.parse(l) as { url: string }).url));
    });
    child.once('exit', (code) => reject(new Error(`directory exited with ${code}`)));
  });
  const cpuMs = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  return { child, url, cpuMs };
}

/** Every agent registers itself, over its own TLS connection (a few at a time). */
async function registerAll(url: string, pki: DirectoryPki): Promise<number> {
  const jobs = pki.groups.flatMap((g, i) => g.agents.map((a, k) => ({ g, a, body: { url: `https://127.0.0.1:${10_000 + 2 * i + k}`, level: k, members: (i * 7 + k) % 50, ttl: 3600 } })));
  let next = 0;
  let ok = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < jobs.length) {
      const j = jobs[next++]!;
      const status = await new Promise<number>((resolve) => {
        const payload = JSON.stringify(j.body);
        const req = https.request(`${url}/v1/groups/${j.g.group}/agents`, {
          method: 'POST', agent: false, ca: pki.dirCa, cert: j.a.cert, key: j.a.key, servername: 'localhost',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(0));
        req.end(payload);
      });
      if (status === 201 || status === 200) ok++;
    }
  }));
  return ok;
}

// ---------------------------------------------------------------------------------------------
// The load process

interface LoadSpec {
  url: string;
  ca: string;
  conns: (Pair & { path: string })[];
  depth: number;
  warmupMs: number;
  durationMs: number;
}
interface LoadResult {
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  p50Us: number;
  p99Us: number;
  clientCpuMs: number;
  sample: string;
}

/** One keep-alive TLS connection sending `depth` pipelined GETs, reading responses by content-length. */
function drive(spec: LoadSpec, c: LoadSpec['conns'][number], until: () => number, record: (us: number, status: number) => void): Promise<string> {
  const u = new URL(spec.url);
  const request = Buffer.from(`GET ${c.path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    const sent: number[] = [];
    let buf: Buffer = Buffer.alloc(0);
    let sample = '';
    const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca: spec.ca, cert: c.cert, key: c.key, servername: 'localhost', minVersion: 'TLSv1.3' }, () => {
      for (let i = 0; i < spec.depth; i++) send();
    });
    const send = () => {
      sent.push(performance.now());
      socket.write(request);
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      // The requests this chunk's responses release go out together: one TLS record, one write.
      socket.cork();
      process.nextTick(() => socket.uncork());
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /content-length: *(\d+)/i.exec(head);
        const len = m ? Number(m[1]) : 0;
        if (buf.length < end + 4 + len) return;
        const status = Number(head.slice(9, 12));
        if (!sample) sample = buf.subarray(end + 4, end + 4 + len).toString('utf8');
        buf = buf.subarray(end + 4 + len);
        const t0 = sent.shift()!;
        const now = performance.now();
        record((now - t0) * 1000, status);
        if (now < until()) send();
        else if (sent.length === 0) {
          socket.end();
          resolve(sample);
          return;
        }
      }
    });
    socket.on('error', reject);
  });
}

async function loadMain(spec: LoadSpec): Promise<LoadResult> {
  const start = performance.now();
  const measureFrom = start + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  const lat: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  const cpu0 = process.cpuUsage();
  const samples = await Promise.all(spec.conns.map((c) => drive(spec, c, () => stopAt, (us, status) => {
    if (performance.now() < measureFrom) return;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status !== 200) errors++;
    lat.push(us);
  })));
  const cpu = process.cpuUsage(cpu0);
  return {
    requests: lat.length, errors, statuses, seconds: spec.durationMs / 1000,
    p50Us: median(lat), p99Us: percentile(lat, 99), clientCpuMs: (cpu.user + cpu.system) / 1000, sample: samples[0] ?? '',
  };
}

function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, IOLUS_BENCH_DIRECTORY_ROLE: 'load' } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('load process did not finish in time'));
    }, spec.warmupMs + spec.durationMs + 30_000);
    child.once('message', (r: LoadResult | { error: string }) => {
      clearTimeout(timer);
      if ('error' in r) reject(new Error(r.error));
      else resolve(r);
      child.kill();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`load process exited with ${code}`));
    });
    child.send(spec);
  });
}

if (process.env.IOLUS_BENCH_DIRECTORY_ROLE === 'load') {
  process.once('message', (spec: LoadSpec) => {
    loadMain(spec).then((r) => process.send!(r), (err: unknown) => process.send!({ error: String(err) }));
  });
}

// ---------------------------------------------------------------------------------------------

interface Round {
  rps: number;
  p50Us: number;
  p99Us: number;
  serverCpuPerReqUs: number;
  clientCpuPerReqUs: number;
  errors: number;
}

async function measure(server: Server, spec: LoadSpec): Promise<Round> {
  const cpu0 = server.cpuMs();
  const r = await runLoad(spec);
  const serverCpu = server.cpuMs() - cpu0;
  const total = r.requests || 1;
  return { rps: r.requests / r.seconds, p50Us: r.p50Us, p99Us: r.p99Us, serverCpuPerReqUs: (serverCpu * 1000) / total, clientCpuPerReqUs: (r.clientCpuMs * 1000) / total, errors: r.errors };
}

function summary(rounds: Round[]): Record<string, number> {
  const m = (k: keyof Round) => median(rounds.map((r) => r[k]));
  return {
    'req/s': m('rps'), 'p50 µs': m('p50Us'), 'p99 µs': m('p99Us'), 'server CPU µs/req': m('serverCpuPerReqUs'),
    // What one core could sustain at that cost, were it the directory's alone.
    'req/s per server core': 1e6 / m('serverCpuPerReqUs'),
    'client CPU µs/req': m('clientCpuPerReqUs'), errors: rounds.reduce((n, r) => n + r.errors, 0),
  };
}

async function mdnsFigures(): Promise<{ row?: BenchRow; note: string }> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { note: 'mDNS resolution not measured: needs root (network namespaces)' };
  const { measureMdnsResolve } = await import('./lib/mdnsResolve.js');
  const f = await measureMdnsResolve({ rounds: 40 });
  return {
    row: { case: `mDNS resolution, cold cache, quiet link (${f.resolved}/${f.rounds} rounds)`, figures: { 'p50 µs': f.medianMs * 1000, 'p99 µs': f.p99Ms * 1000, errors: f.failures } },
    note: `mDNS: median ${f.medianMs.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms (min ${f.minMs.toFixed(1)}, max ${f.maxMs.toFixed(1)}); most of it is the 20-120 ms delay RFC 6762 §6 asks of every responder before a shared (PTR) answer`,
  };
}

export async function run(): Promise<void> {
  const pki = await directoryPki();
  const work = mkdtempSync(join(os.tmpdir(), 'iolus-bench-directory-'));
  let server: Server | undefined;
  try {
    server = await startDirectory(work, pki);
    const t0 = Date.now();
    const registered = await registerAll(server.url, pki);
    log(`${registered} registrations for ${GROUPS} groups in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    if (registered !== 2 * GROUPS) throw new Error(`only ${registered} of ${2 * GROUPS} registrations succeeded`);
    const members = pki.groups.filter((g) => g.member).slice(0, CONNECTIONS);
    const spec = (path: (g: BenchGroup) => string, conns: number, depth: number, durationMs: number): LoadSpec => ({
      url: server!.url, ca: pki.dirCa, depth, warmupMs: WARMUP_MS, durationMs,
      conns: Array.from({ length: conns }, (_, i) => ({ ...members[i % members.length]!.member!, path: path(members[i % members.length]!) })),
    });
    const lookup = (g: BenchGroup) => `/v1/groups/${g.group}/agents`;
    const health = () => '/v1/health';
    const base: Round[] = [];
    const look: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      base.push(await measure(server, spec(health, CONNECTIONS, DEPTH, ROUND_MS)));
      look.push(await measure(server, spec(lookup, CONNECTIONS, DEPTH, ROUND_MS)));
      log(`round ${i + 1}: constant ${Math.round(base.at(-1)!.rps)}/s, lookup ${Math.round(look.at(-1)!.rps)}/s`);
    }
    const check = await runLoad(spec(lookup, 1, 1, 200));
    const sample = JSON.parse(check.sample) as { agents?: unknown[] };
    if (sample.agents?.length !== 2) throw new Error(`unexpected lookup answer: ${check.sample.slice(0, 200)}`);
    const lightBase = await measure(server, spec(health, 1, 1, 3_000));
    const lightLook = await measure(server, spec(lookup, 1, 1, 3_000));
    const mdns = await mdnsFigures();

    const b = summary(base);
    const l = summary(look);
    const rows: BenchRow[] = [
      { case: `constant answer (baseline), ${CONNECTIONS} conns × ${DEPTH} in flight`, figures: b },
      { case: `lookup, ${GROUPS} groups / ${2 * GROUPS} agents, ${CONNECTIONS} conns × ${DEPTH} in flight`, figures: { ...l, 'vs baseline': l['req/s']! / b['req/s']! } },
      { case: 'constant answer, 1 conn, 1 in flight', figures: summary([lightBase]) },
      { case: 'lookup, 1 conn, 1 in flight', figures: summary([lightLook]) },
      ...(mdns.row ? [mdns.row] : []),
    ];
    writeReport({
      name: 'directory',
      description: `Directory lookups over keep-alive mutual TLS 1.3 from a separate process (members of ${CONNECTIONS} groups, each looking its own group up) with ${GROUPS} groups registered, vs the same server answering a constant; medians of ${ROUNDS} alternating ${ROUND_MS / 1000} s rounds. And an mDNS resolution (group → agent) between two namespaces.`,
      rows,
      targets: [{ target: `≥${TARGET_PER_S.toLocaleString('en-US')} lookups/s with ${GROUPS} groups registered`, met: l['req/s']! >= TARGET_PER_S, detail: `${Math.round(l['req/s']!).toLocaleString('en-US')}/s, p99 ${Math.round(l['p99 µs']!)} µs; constant ${Math.round(b['req/s']!).toLocaleString('en-US')}/s` }],
      notes: [
        `Load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} cores shared by the directory, the load process and whatever else runs.`,
        'Latencies under saturation include queueing behind the requests pipelined on the same connection; the 1-connection rows show a lone request.',
        '"req/s per server core" is 10^6 / the directory process\'s CPU time per request (from /proc): what it would sustain on a core of its own, independent of how busy the machine is.',
        'Lookups are ranked and serialized once per (group, site, prefix) until the group changes (directory/lookupView.ts); per request only the remaining TTLs are written in.',
        mdns.note,
      ],
    });
  } finally {
    server?.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    server?.child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  }
}
