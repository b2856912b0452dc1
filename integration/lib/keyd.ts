/**
 * Helpers for the keyd integration tests (integration/keyd-*.test.ts): a group PKI in a temp
 * directory, keyd configs as YAML, and daemons, members and a probe as real processes inside
 * the namespaces of a Site (integration/lib/netns.ts), so every process is torn down with it
 * and every address used is the site's own or its namespaces' loopback.
 *
 *   const bed = await KeydTestbed.create(site, { group: 'g', principals: [...] });
 *   const ctl = await bed.daemon('hC', controllerConfig(...));
 *   const m = await bed.member('hA', 'm-a1', ctl.url);
 *   m.send('hello');
 *   await other.waitData('hello');
 *   const probe = await bed.probe('hC');
 *   const metrics = await probe.metrics(ctl.url, bed.pki.tls('admin'));
 *
 * Processes: `iolus keyd` and `iolus member` (src/cli) from a private build of this file and
 * the CLI it names (nodeEntry), and integration/fixtures/keyd/probe.mjs, which does the HTTPS
 * and UDP the test process cannot do from outside the namespaces. Every wait is bounded.
 * Members log at warn to stderr (shown when a wait fails); KEYD_TEST_MEMBER_LOG=debug says more.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { initCa } from '../../src/pki/ca.js';
import { tlsFiles, type TlsFiles } from '../../src/pki/files.js';
import { issue } from '../../src/pki/issue.js';
import type { Role } from '../../src/pki/roles.js';
import { nodeEntry, repoRoot, type ExitStatus, type NetnsHost, type NsProcess, type Site } from './netns.js';
// Type-only: erased at run time, but they put the CLI and its commands into nodeEntry's build of
// this file (main.ts loads its commands with a dynamic import tsc cannot follow).
import type { main as _cliMain } from '../../src/cli/main.js';
import type { run as _keydCommand } from '../../src/cli/commands/keyd.js';
import type { run as _memberCommand } from '../../src/cli/commands/member.js';

// ---------------------------------------------------------------------------------------------
// PKI

export interface PrincipalSpec {
  name: string;
  role: Role;
  /** Extra IP addresses for an agent's server certificate (the address members dial). */
  ip?: string[];
}

export class KeydPki {
  constructor(readonly dir: string, readonly group: string) {}

  get ca(): string {
    return join(this.dir, 'ca.crt');
  }

  tls(name: string): TlsFiles {
    return tlsFiles(this.dir, name);
  }
}

/** A group CA in `dir` and a certificate for each principal. */
export async function makePki(dir: string, group: string, principals: readonly PrincipalSpec[]): Promise<KeydPki> {
  await initCa(dir, { group, validityDays: 30 });
  for (const p of principals) await issue(dir, { name: p.name, role: p.role, validityDays: 30, ...(p.ip ? { ip: p.ip } : {}) });
  return new KeydPki(dir, group);
}

// ---------------------------------------------------------------------------------------------
// Configs

export type TransportSpec =
  | { kind: 'multicast'; address: string; port: number; interface?: string; ttl?: number }
  | { kind: 'unicast' }
  | { kind: 'sse' };

export interface AgentSpec {
  name: string;
  role: 'controller' | 'intermediary';
  /** listen.host: the address members and children dial (and the unicast datagram address). */
  host: string;
  port: number;
  datagramPort?: number;
  parentUrl?: string;
  transport: TransportSpec;
  acl: { principal: string; roles: string[] }[];
  subgroup?: Record<string, unknown>;
  limits?: Record<string, unknown>;
  /** The controller's group key service (KGRP2); default: the daemon's (a roll a minute). */
  groupKey?: Record<string, unknown>;
}

/** Timers short enough for tests: heartbeats every 300 ms, memberships of 3 s refreshed every second. */
export const FAST_SUBGROUP = { membershipTtl: '3s', heartbeat: '300ms' } as const;

/** A keyd config object (written as YAML by KeydTestbed.daemon). */
export function keydConfig(pki: KeydPki, s: AgentSpec): Record<string, unknown> {
  return {
    group: pki.group,
    agent: { name: s.name, role: s.role },
    ...(s.parentUrl ? { parent: { url: s.parentUrl, rejoinMin: '100ms', rejoinMax: '1s' } } : {}),
    tls: pki.tls(s.name),
    listen: { host: s.host, port: s.port, datagramPort: s.datagramPort ?? 0 },
    subgroup: { transport: s.transport, ...FAST_SUBGROUP, ...s.subgroup },
    acl: s.acl,
    ...(s.limits ? { limits: s.limits } : {}),
    ...(s.groupKey ? { groupKey: s.groupKey } : {}),
    log: { level: 'info' },
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

/** The JSON lines a process printed (anything else skipped). */
export function jsonLines(p: NsProcess, from = 0): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const lines = p.lines;
  const dropped = p.lineCount - lines.length;
  for (let i = Math.max(0, from - dropped); i < lines.length; i++) {
    const l = lines[i]!;
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* partial or not JSON */
    }
  }
  return out;
}

/** The first JSON line of `p` from stdout line `from` on whose fields include `fields`. */
export async function waitJsonLine(p: NsProcess, fields: Record<string, unknown>, options: { from?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
  const line = await p.waitForLine((l) => {
    const o = parseJsonLine(l);
    return o !== undefined && Object.entries(fields).every(([k, v]) => o[k] === v);
  }, { timeoutMs: options.timeoutMs ?? 10_000, from: options.from ?? 0 });
  return JSON.parse(line) as Record<string, unknown>;
}

/** A stdout line as a JSON object, or undefined if it is not one. */
export function parseJsonLine(l: string): Record<string, unknown> | undefined {
  if (!l.startsWith('{')) return undefined;
  try {
    return JSON.parse(l) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Resolves with the exit status, or rejects after `timeoutMs`. */
export async function exitWithin(p: NsProcess, timeoutMs: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${p.command}: still running ${timeoutMs} ms later\n--- stderr (tail) ---\n${p.stderr.slice(-2000)}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value other than undefined/false, for at most `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** One `iolus keyd` process. */
export class DaemonProc {
  constructor(
    readonly name: string,
    readonly host: NetnsHost,
    readonly proc: NsProcess,
    readonly url: string,
    readonly configPath: string,
  ) {}

  /** Log lines (pino JSON) from `from` on. */
  logs(from = 0): Record<string, unknown>[] {
    return jsonLines(this.proc, from);
  }

  /** The first log line from `from` on whose fields include `fields`. */
  waitLog(fields: Record<string, unknown>, options: { from?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    return waitJsonLine(this.proc, fields, options);
  }

  get lineCount(): number {
    return this.proc.lineCount;
  }
}

export interface MemberOptions {
  method?: 1 | 2;
  listenOnly?: boolean;
  /** Wait for the 'joined' line (default true). */
  waitJoined?: boolean;
}

/** One `iolus member` process: its stdout events, data to send on stdin. */
export class MemberProc {
  constructor(readonly name: string, readonly host: NetnsHost, readonly proc: NsProcess) {}

  events(from = 0): Record<string, unknown>[] {
    return jsonLines(this.proc, from);
  }

  /** Texts received as data, in order. */
  received(): { text: string; method: number; from: string }[] {
    return this.events().filter((e) => e.event === 'data').map((e) => ({ text: String(e.text), method: Number(e.method), from: String(e.from) }));
  }

  async waitEvent(match: (e: Record<string, unknown>) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    const line = await this.proc.waitForLine((l) => {
      const o = parseJsonLine(l);
      return o !== undefined && match(o);
    }, { timeoutMs: options.timeoutMs ?? 10_000, from: options.from ?? 0 });
    return JSON.parse(line) as Record<string, unknown>;
  }

  waitData(text: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return this.waitEvent((e) => e.event === 'data' && e.text === text, { timeoutMs });
  }

  /** The newest 'joined' event's member id. */
  get memberId(): number {
    const j = this.events().filter((e) => e.event === 'joined').pop();
    return Number(j?.memberId ?? 0);
  }

  /** The newest subgroup epoch this member reported. */
  get epoch(): number {
    const e = this.events().filter((x) => x.event === 'joined' || x.event === 'subgroup-key').pop();
    return Number(e?.epoch ?? 0);
  }

  /** Sends one line of data (the CLI's method: --method) and waits for its 'sent' line. */
  async send(text: string): Promise<void> {
    const from = this.proc.lineCount;
    this.proc.write(`${text}\n`);
    const r = await this.waitEvent((e) => (e.event === 'sent' && e.text === text) || e.event === 'send-failed', { from, timeoutMs: 5_000 });
    if (r.event !== 'sent') throw new Error(`${this.name}: send of ${text} failed: ${String(r.reason)}`);
  }

  get lineCount(): number {
    return this.proc.lineCount;
  }
}

export interface HttpsResult {
  ok: boolean;
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  error?: string;
  code?: string;
}

export interface HttpsRequest {
  method?: 'GET' | 'POST';
  body?: string;
  bodyBase64?: string;
  contentType?: string;
  headers?: Record<string, string>;
  /** Client TLS files; omit cert/key for a client without a certificate. */
  tls: Partial<TlsFiles>;
}

/** integration/fixtures/keyd/probe.mjs in one namespace. */
export class Probe {
  constructor(readonly host: NetnsHost, readonly proc: NsProcess) {}

  async https(url: string, req: HttpsRequest): Promise<HttpsResult> {
    return this.proc.request<HttpsResult>({ op: 'https', url, ...req }, 20_000);
  }

  async httpsMany(url: string, req: HttpsRequest, count: number): Promise<HttpsResult[]> {
    const r = await this.proc.request<{ results: HttpsResult[] }>({ op: 'https-many', url, count, ...req }, 60_000);
    return r.results;
  }

  /** GET and parse JSON; throws unless 2xx. */
  async json<T = Record<string, unknown>>(url: string, tls: Partial<TlsFiles>, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<T> {
    const r = await this.https(url, { method, tls, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    if (!r.ok || r.status === undefined || r.status >= 300) throw new Error(`${method} ${url}: ${r.ok ? `${r.status} ${r.body}` : r.error}`);
    return JSON.parse(r.body ?? 'null') as T;
  }

  async metrics(agentUrl: string, tls: Partial<TlsFiles>): Promise<MetricSamples> {
    const r = await this.https(`${agentUrl}/metrics`, { tls });
    if (!r.ok || r.status !== 200) throw new Error(`GET ${agentUrl}/metrics: ${r.ok ? `${r.status} ${r.body}` : r.error}`);
    return new MetricSamples(r.body ?? '');
  }

  /** Sends the datagrams of `file` (see writeDatagrams) to host:port, paced. */
  async udp(file: string, host: string, port: number, options: { interface?: string; batch?: number; pauseMs?: number } = {}): Promise<{ sent: number; errors: number }> {
    return this.proc.request<{ sent: number; errors: number }>({ op: 'udp', file, host, port, ...options }, 120_000);
  }
}

/** Datagrams in the probe's file format: u32 big-endian length, then the bytes. */
export function writeDatagrams(path: string, datagrams: readonly Uint8Array[]): void {
  const total = datagrams.reduce((n, d) => n + 4 + d.length, 0);
  const buf = Buffer.alloc(total);
  let off = 0;
  for (const d of datagrams) {
    buf.writeUInt32BE(d.length, off);
    buf.set(d, off + 4);
    off += 4 + d.length;
  }
  writeFileSync(path, buf);
}

/** Prometheus text, parsed. */
export class MetricSamples {
  readonly samples: { name: string; labels: Record<string, string>; value: number }[] = [];

  constructor(readonly text: string) {
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
      if (!m) continue;
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
      this.samples.push({ name: m[1]!, labels, value: Number(m[3]) });
    }
  }

  /** Sum of the samples of `name` whose labels include `labels`. */
  get(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((n, s) => n + s.value, 0);
  }

  /** name{label} → value, for one label of one metric (e.g. dropped messages by cause). */
  by(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) if (s.name === name && s.labels[label] !== undefined) out[s.labels[label]] = (out[s.labels[label]] ?? 0) + s.value;
    return out;
  }
}

/** `after - before` per key (keys of either). */
export function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(after), ...Object.keys(before)])) {
    const d = (after[k] ?? 0) - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

export function sum(r: Record<string, number>): number {
  return Object.values(r).reduce((n, v) => n + v, 0);
}

/** Datagrams the kernel dropped in a namespace for full receive buffers (UDP and UDPv6). */
export async function kernelUdpDrops(site: Site, host: NetnsHost): Promise<number> {
  const snmp = (await site.exec(host, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = snmp.map((l) => l.split(/\s+/).slice(1));
  const get = (k: string) => Number(values?.[names?.indexOf(k) ?? -1] ?? 0);
  const snmp6 = (await site.exec(host, 'cat', ['/proc/net/snmp6'])).stdout;
  const v6 = Number(/Udp6RcvbufErrors\s+(\d+)/.exec(snmp6)?.[1] ?? 0);
  return get('RcvbufErrors') + v6;
}

// ---------------------------------------------------------------------------------------------
// The testbed

export interface TestbedOptions {
  group: string;
  principals: readonly PrincipalSpec[];
}

/**
 * A PKI, a work directory and the processes of one test file, all inside `site`. teardown()
 * stops them (SIGTERM, then SIGKILL) and removes the directory; the site's own teardown kills
 * whatever is left in the namespaces.
 */
export class KeydTestbed {
  private readonly spawned: NsProcess[] = [];
  private probes = new Map<string, Probe>();

  private constructor(readonly site: Site, readonly dir: string, readonly pki: KeydPki, readonly cli: string) {}

  static async create(site: Site, options: TestbedOptions): Promise<KeydTestbed> {
    const dir = mkdtempSync(join(os.tmpdir(), 'iolus-keyd-'));
    try {
      const [pki, cli] = await Promise.all([makePki(join(dir, 'pki'), options.group, options.principals), cliPath()]);
      return new KeydTestbed(site, dir, pki, cli);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Processes started here and still running. */
  get live(): NsProcess[] {
    return this.spawned.filter((p) => p.running);
  }

  /** Writes the config and starts `iolus keyd`; resolves once it logged 'agent started'. */
  async daemon(host: string | NetnsHost, config: Record<string, unknown>): Promise<DaemonProc> {
    const name = String((config.agent as { name: string }).name);
    const path = join(this.dir, `${name}.yaml`);
    writeFileSync(path, toYaml(config));
    return this.startDaemon(host, name, path);
  }

  /** Starts `iolus keyd` again with the config of an earlier one (after it was killed). */
  restart(d: DaemonProc): Promise<DaemonProc> {
    return this.startDaemon(d.host, d.name, d.configPath);
  }

  private async startDaemon(host: string | NetnsHost, name: string, path: string): Promise<DaemonProc> {
    const p = this.site.spawn(host, process.execPath, [this.cli, 'keyd', '--config', path]);
    this.spawned.push(p);
    const line = await p.waitForLine(/"event":"start"/, { timeoutMs: 20_000 });
    const url = String((JSON.parse(line) as { url: string }).url);
    return new DaemonProc(name, p.host, p, url, path);
  }

  /** Starts `iolus member` as `name` against `agentUrl`; by default waits for its 'joined' line. */
  async member(host: string | NetnsHost, name: string, agentUrl: string, options: MemberOptions = {}): Promise<MemberProc> {
    const tls = this.pki.tls(name);
    const args = [this.cli, 'member', '--group', this.pki.group, '--agent', agentUrl, '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca, '--method', String(options.method ?? 1)];
    if (options.listenOnly) args.push('--listen-only');
    const p = this.site.spawn(host, process.execPath, args, { env: { IOLUS_LOG_LEVEL: process.env.KEYD_TEST_MEMBER_LOG ?? 'warn' } });
    this.spawned.push(p);
    const m = new MemberProc(name, p.host, p);
    if (options.waitJoined ?? true) await m.waitEvent((e) => e.event === 'joined', { timeoutMs: 20_000 });
    return m;
  }

  /** The probe of a namespace (one per host, started on first use). */
  async probe(host: string | NetnsHost): Promise<Probe> {
    const h = this.site.host(host);
    let pr = this.probes.get(h.name);
    if (!pr) {
      const p = this.site.spawn(h, process.execPath, [join(repoRoot(), 'integration', 'fixtures', 'keyd', 'probe.mjs')]);
      this.spawned.push(p);
      await p.waitForLine(/"event":"ready"/, { timeoutMs: 10_000 });
      pr = new Probe(h, p);
      this.probes.set(h.name, pr);
    }
    return pr;
  }

  /** A file in the work directory. */
  file(name: string): string {
    return join(this.dir, name);
  }

  async teardown(): Promise<void> {
    await Promise.all(this.spawned.map((p) => p.stop({ graceMs: 2_000 })));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The runnable CLI (src/cli/main.js) of a private build that includes the keyd and member commands. */
export async function cliPath(): Promise<string> {
  const js = await nodeEntry('integration/lib/keyd.ts');
  return join(dirname(dirname(dirname(js))), 'src', 'cli', 'main.js');
}
