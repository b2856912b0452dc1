/**
 * `keypull`: key pulls per second from the local agent (`iolus agent`, issue 4) over its Unix
 * socket and over 127.0.0.1 with a bearer token, with 1, 8 and 32 keep-alive connections from a
 * separate load process; median and p99 latency (target ≥ 20,000 pulls/s with p99 < 2 ms).
 *
 * Processes: a controller (`iolus keyd`), the agent joined to it as a member, a load generator
 * (this file forked with LOAD_FLAG) and, as the baseline, a trivial node:http server (this file
 * forked with BASELINE_FLAG) that answers every request with a constant body the size of the
 * agent's answer, on a Unix socket and on 127.0.0.1 alike. The load generator speaks HTTP/1.1 on
 * raw sockets, one request in flight per connection (no pipelining), so what it measures is
 * the server, not node:http's client. Cases are interleaved agent/baseline.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_GROUP, benchPki, memberName } from './lib/benchPki.js';
import { loadAverage, MAIN_JS, procCpuMs, runDir, startKeyd, type KeydProcess } from './lib/keydHarness.js';
import { median, percentile, writeReport, type BenchRow } from './lib/report.js';

const LOAD_FLAG = '--iolus-keypull-load';
const BASELINE_FLAG = '--iolus-keypull-baseline';
const LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';
const CONCURRENCY = [1, 8, 32];
const WARMUP_MS = 500;
const MEASURE_MS = Number(process.env.IOLUS_BENCH_KEYPULL_MS ?? 3_000);
const TARGET_PULLS = 20_000;
const TARGET_P99_MS = 2;

type Target = { socketPath: string } | { host: string; port: number; token: string };

interface LoadJob {
  target: Target;
  path: string;
  connections: number;
  warmupMs: number;
  measureMs: number;
}

interface LoadResult {
  pulls: number;
  perSecond: number;
  medianMs: number;
  p99Ms: number;
  errors: number;
  statuses: Record<string, number>;
}

function log(line: string): void {
  process.stdout.write(`keypull: ${line}\n`);
}

const nowNs = () => process.hrtime.bigint();

// ---------------------------------------------------------------------------------------------
// Load generator (child process)

/** One keep-alive connection: request, full response, next request, until `end` (ns). */
function connection(job: LoadJob, request: Buffer, measureFrom: bigint, end: bigint, lat: number[], res: LoadResult): Promise<void> {
  return new Promise((resolve) => {
    const t = job.target;
    const sock = 'socketPath' in t ? net.connect(t.socketPath) : net.connect(t.port, t.host);
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let need = -1;
    let started = 0n;
    const next = () => {
      if (nowNs() >= end) {
        sock.destroy();
        resolve();
        return;
      }
      started = nowNs();
      sock.write(request);
    };
    sock.on('connect', next);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      if (need < 0) {
        const h = buf.indexOf('\r\n\r\n');
        if (h < 0) return;
        const head = buf.subarray(0, h).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        need = h + 4 + Number(m?.[1] ?? 0);
        const status = head.slice(9, 12);
        res.statuses[status] = (res.statuses[status] ?? 0) + 1;
        if (status !== '200') res.errors++;
      }
      if (buf.length < need) return;
      const done = nowNs();
      if (started >= measureFrom && done <= end) {
        res.pulls++;
        lat.push(Number(done - started) / 1e6);
      }
      buf = buf.subarray(need);
      need = -1;
      next();
    });
    sock.on('error', () => {
      res.errors++;
      resolve();
    });
  });
}

async function runLoad(job: LoadJob): Promise<LoadResult> {
  const auth = 'token' in job.target ? `authorization: Bearer ${job.target.token}\r\n` : '';
  const request = Buffer.from(`GET ${job.path} HTTP/1.1\r\nhost: local\r\n${auth}\r\n`, 'latin1');
  const lat: number[] = [];
  const res: LoadResult = { pulls: 0, perSecond: 0, medianMs: NaN, p99Ms: NaN, errors: 0, statuses: {} };
  const t0 = nowNs();
  const measureFrom = t0 + BigInt(job.warmupMs) * 1_000_000n;
  const end = measureFrom + BigInt(job.measureMs) * 1_000_000n;
  await Promise.all(Array.from({ length: job.connections }, () => connection(job, request, measureFrom, end, lat, res)));
  res.perSecond = res.pulls / (job.measureMs / 1000);
  res.medianMs = median(lat);
  res.p99Ms = percentile(lat, 99);
  return res;
}

// ---------------------------------------------------------------------------------------------
// Baseline server (child process): node:http, a constant answer.

async function runBaseline(body: string, socketPath: string): Promise<number> {
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(body);
  };
  const unix = http.createServer(handler);
  const tcp = http.createServer(handler);
  for (const s of [unix, tcp]) s.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => unix.listen(socketPath, () => r()));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
  return (tcp.address() as net.AddressInfo).port;
}

function childMain(): void {
  process.on('message', (m: { op: 'load'; job: LoadJob } | { op: 'serve'; body: string; socketPath: string }) => {
    if (m.op === 'load') void runLoad(m.job).then((r) => process.send!({ op: 'result', result: r }));
    else void runBaseline(m.body, m.socketPath).then((port) => process.send!({ op: 'listening', port }));
  });
}

if (process.send && (process.argv.includes(LOAD_FLAG) || process.argv.includes(BASELINE_FLAG))) childMain();

// ---------------------------------------------------------------------------------------------
// The benchmark

function forkSelf(flag: string): ChildProcess {
  return fork(fileURLToPath(import.meta.url), [flag], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function once<T>(child: ChildProcess, op: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${op}: no answer in ${timeoutMs} ms`)), timeoutMs);
    const on = (m: { op: string } & Record<string, unknown>) => {
      if (m.op !== op) return;
      clearTimeout(t);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
  });
}

interface AgentProcess {
  child: ChildProcess;
  socketPath: string;
  tcp: { host: string; port: number; token: string };
}

/** `iolus agent` as a member of the controller at `url`; resolves on its 'ready' line. */
async function startAgent(dir: string, url: string, pair: { cert: string; key: string }, ca: string, port: number, nodeFlags: string[] = []): Promise<AgentProcess> {
  const token = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'agent.crt'), pair.cert);
  writeFileSync(join(dir, 'agent.key'), pair.key, { mode: 0o600 });
  writeFileSync(join(dir, 'ca.crt'), ca);
  writeFileSync(join(dir, 'token'), token, { mode: 0o600 });
  const socketPath = join(dir, 'run', 'agent.sock');
  const child = spawn(process.execPath, [...nodeFlags, MAIN_JS, 'agent', '--group', BENCH_GROUP, '--agent', url,
    '--cert', join(dir, 'agent.crt'), '--key', join(dir, 'agent.key'), '--ca', join(dir, 'ca.crt'),
    '--socket', socketPath, '--tcp', `127.0.0.1:${port}`, '--token-file', join(dir, 'token')], {
    cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, IOLUS_LOG_LEVEL: 'warn' },
  });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    const t = setTimeout(() => reject(new Error(`agent not ready in 20 s: ${text}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.includes('"event":"ready"')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${text}`)));
  });
  child.stdout!.resume();
  return { child, socketPath, tcp: { host: '127.0.0.1', port, token } };
}

function unixGet(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath, path }, (res) => {
      let s = '';
      res.on('data', (c: Buffer) => (s += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(s) : reject(new Error(`${res.statusCode}: ${s}`))));
    }).on('error', reject);
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function run(): Promise<void> {
  const pki = await benchPki(1, log);
  const dir = runDir('keypull');
  mkdirSync(join(dir, 'run'), { recursive: true, mode: 0o700 });
  const load0 = loadAverage();
  const profile = process.env.IOLUS_BENCH_KEYPULL_PROFILE === '1';
  let ctl: KeydProcess | undefined;
  let agent: AgentProcess | undefined;
  const children: ChildProcess[] = [];
  try {
    ctl = await startKeyd({
      dir, name: 'ctl', ca: pki.ca.cert, pair: pki.principals.ctl!,
      config: {
        group: BENCH_GROUP, agent: { name: 'ctl', role: 'controller' }, listen: { host: '127.0.0.1', port: 0 },
        subgroup: { transport: { kind: 'unicast' } }, acl: [{ principal: 'm*', roles: ['member'] }], log: { level: 'info' },
      },
    });
    agent = await startAgent(dir, ctl.url, pki.members[0]!, pki.ca.cert, await freePort(), profile ? ['--cpu-prof', '--cpu-prof-dir', join(dir, 'prof')] : []);
    const keyPath = `/v1/key?label=${encodeURIComponent(LABEL)}&epoch=current&format=json`;
    const sample = await unixGet(agent.socketPath, keyPath);
    log(`agent of ${memberName(0)} ready; a key answer is ${Buffer.byteLength(sample)} bytes; logs in ${dir}`);

    const baseline = forkSelf(BASELINE_FLAG);
    children.push(baseline);
    const baseSocket = join(dir, 'run', 'baseline.sock');
    baseline.send({ op: 'serve', body: sample, socketPath: baseSocket });
    const { port: basePort } = await once<{ port: number }>(baseline, 'listening', 10_000);
    const loader = forkSelf(LOAD_FLAG);
    children.push(loader);

    const targets = {
      agentUnix: { socketPath: agent.socketPath } as Target,
      agentTcp: agent.tcp as Target,
      baseUnix: { socketPath: baseSocket } as Target,
      baseTcp: { host: '127.0.0.1', port: basePort, token: agent.tcp.token } as Target,
    };
    const measure = async (target: Target, connections: number, path = keyPath) => {
      loader.send({ op: 'load', job: { target, path, connections, warmupMs: WARMUP_MS, measureMs: MEASURE_MS } satisfies LoadJob });
      return (await once<{ result: LoadResult }>(loader, 'result', MEASURE_MS + WARMUP_MS + 30_000)).result;
    };

    const rows: BenchRow[] = [];
    const results: { name: string; transport: string; c: number; r: LoadResult; cpuMsPerPull?: number }[] = [];
    for (const transport of ['unix', 'tcp'] as const) {
      for (const c of CONCURRENCY) {
        const cpu0 = procCpuMs(agent.child.pid!);
        const a = await measure(transport === 'unix' ? targets.agentUnix : targets.agentTcp, c);
        const cpuMsPerPull = (procCpuMs(agent.child.pid!) - cpu0) / Math.max(1, a.pulls);
        const cpuB0 = procCpuMs(baseline.pid!);
        const b = await measure(transport === 'unix' ? targets.baseUnix : targets.baseTcp, c);
        const cpuMsPerPullB = (procCpuMs(baseline.pid!) - cpuB0) / Math.max(1, b.pulls);
        results.push({ name: 'agent', transport, c, r: a, cpuMsPerPull }, { name: 'baseline', transport, c, r: b, cpuMsPerPull: cpuMsPerPullB });
        log(`${transport} c=${c}: agent ${a.perSecond.toFixed(0)}/s p50 ${a.medianMs.toFixed(3)} p99 ${a.p99Ms.toFixed(3)} ms (errors ${a.errors}); baseline ${b.perSecond.toFixed(0)}/s p50 ${b.medianMs.toFixed(3)} p99 ${b.p99Ms.toFixed(3)} ms`);
      }
    }
    const sdes = await measure(targets.agentUnix, 8, `/v1/key?label=${encodeURIComponent(LABEL)}&epoch=current&format=sdes`);
    results.push({ name: 'agent, format=sdes', transport: 'unix', c: 8, r: sdes });

    for (const x of results) {
      const base = results.find((y) => y.name === 'baseline' && y.transport === x.transport && y.c === x.c);
      rows.push({
        case: `${x.name === 'baseline' ? 'baseline: node:http constant' : x.name}, ${x.transport === 'unix' ? 'Unix socket' : '127.0.0.1 + bearer'}, ${x.c} conn`,
        figures: {
          'pulls/s': x.r.perSecond,
          'p50 ms': x.r.medianMs,
          'p99 ms': x.r.p99Ms,
          errors: x.r.errors,
          ...(x.name !== 'baseline' && base ? { 'vs baseline %': (x.r.perSecond / base.r.perSecond) * 100 } : {}),
          ...(x.cpuMsPerPull !== undefined ? { 'server CPU µs/pull': x.cpuMsPerPull * 1000 } : {}),
        },
      });
    }
    const agentRows = results.filter((x) => x.name === 'agent');
    const meets = (x: (typeof results)[number]) => x.r.perSecond >= TARGET_PULLS && x.r.p99Ms < TARGET_P99_MS && x.r.errors === 0;
    const best = (transport: string) => agentRows.filter((x) => x.transport === transport).reduce((a, b) => (b.r.perSecond > a.r.perSecond ? b : a));
    const targets2 = (['unix', 'tcp'] as const).map((transport) => {
      const ok = agentRows.filter((x) => x.transport === transport && meets(x));
      const b = best(transport);
      return {
        target: `≥${TARGET_PULLS.toLocaleString('en-US')} pulls/s with p99 < ${TARGET_P99_MS} ms over ${transport === 'unix' ? 'the Unix socket' : '127.0.0.1 with a bearer token'}`,
        met: ok.length > 0,
        detail: ok.length > 0
          ? `met at ${ok.map((x) => `${x.c} conn (${x.r.perSecond.toFixed(0)}/s, p99 ${x.r.p99Ms.toFixed(2)} ms)`).join(', ')}`
          : `best ${b.r.perSecond.toFixed(0)}/s at ${b.c} conn, p99 ${b.r.p99Ms.toFixed(2)} ms; baseline at ${b.c} conn: ${results.find((y) => y.name === 'baseline' && y.transport === transport && y.c === b.c)!.r.perSecond.toFixed(0)}/s`,
      };
    });
    writeReport({
      name: 'keypull',
      description: `Key pulls (GET /v1/key, ${LABEL}, current, JSON) from the local agent (iolus agent, a joined member) over its Unix socket and over 127.0.0.1 with a bearer token, 1/8/32 keep-alive connections from a separate process (raw HTTP/1.1, one request in flight each), ${MEASURE_MS / 1000} s per case after ${WARMUP_MS} ms warm-up; baseline: a trivial node:http server answering a constant body of the same size, in its own process, on a Unix socket and on 127.0.0.1 (same run, interleaved).`,
      rows,
      targets: targets2,
      notes: [
        'The agent and the load generator are one process each on a 2-core machine: at 8 and 32 connections both are CPU-bound, so pulls/s measure the per-request cost on one core; the baseline row shows the ceiling node:http itself sets on that core.',
        'The agent answers keep-alive key pulls on its own fast path (src/client/localAgent/fastKeyPath.ts: the request head read off the socket, the cached answer written back) and hands every other request to node:http; so it can beat the node:http baseline, whose cost is mostly building request and response objects.',
        '"server CPU µs/pull" is the answering process\'s user+system time (/proc, 10 ms resolution) over the case (warm-up included) divided by the pulls answered in the measured window.',
        `Machine load average before: ${load0}; after: ${loadAverage()} (1, 5, 15 min), 2 CPUs shared with other work.`,
      ],
    });
  } finally {
    for (const c of children) c.kill('SIGKILL');
    if (agent) {
      const child = agent.child;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      child.kill('SIGKILL');
    }
    await ctl?.stop();
  }
}
