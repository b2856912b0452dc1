/**
 * Helpers for the group key integration tests (integration/groupkey-*.test.ts, issue 4): a group
 * PKI, keyd configs with the group key service, and keyd daemons, local agents (`iolus agent`),
 * `iolus watch`, `iolus usage` and `iolus roll` as real processes inside the namespaces of a Site
 * (integration/lib/netns.ts). The CLI is a private build of this file, which names every command
 * it runs (the type imports below); admin HTTPS goes through integration/fixtures/keyd/probe.mjs.
 *
 *   const bed = await GroupKeyBed.create(site, { group: 'g', principals: [...] });
 *   const ctl = await bed.daemon('hC', keydConfig(bed.pki, { name: 'ctl', role: 'controller', …, groupKey: { period: '2s', lead: '1s' } }));
 *   const a = await bed.agent('hM', 'm-1', ctl.url);
 *   await a.key('current');                       // GET /v1/key over its Unix socket, from here
 *   const w = await bed.watch('hM', a, SRTP_LABEL); // `iolus watch`: one line per rollover
 *
 * The agents' Unix sockets live in the bed's directory on the shared filesystem: the test process
 * reaches them directly (a network namespace does not hide a socket path). Every wait is bounded;
 * teardown() stops every process (SIGTERM, then SIGKILL) and removes the directory.
 */
import http from 'node:http';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import { initCa } from '../../src/pki/ca.js';
import { tlsFiles, type TlsFiles } from '../../src/pki/files.js';
import { issue } from '../../src/pki/issue.js';
import type { Role } from '../../src/pki/roles.js';
import { jsonLines, waitJsonLine } from './keyd.js';
import { nodeEntry, repoRoot, type ExitStatus, type NetnsHost, type NsProcess, type Site } from './netns.js';
// Type-only: erased at run time, but they put the CLI and these commands into nodeEntry's build
// of this file (main.ts loads its commands with a dynamic import tsc cannot follow).
import type { main as _cliMain } from '../../src/cli/main.js';
import type { run as _keydCommand } from '../../src/cli/commands/keyd.js';
import type { run as _agentCommand } from '../../src/cli/commands/agent.js';
import type { run as _watchCommand } from '../../src/cli/commands/watch.js';
import type { run as _getkeyCommand } from '../../src/cli/commands/getkey.js';
import type { run as _usageCommand } from '../../src/cli/commands/usage.js';
import type { run as _rollCommand } from '../../src/cli/commands/roll.js';

export const SRTP_LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns something other than undefined/false, for at most `timeoutMs`. */
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
    await sleep(everyMs);
  }
}

/** The exit status, or a rejection after `timeoutMs` (with the process's stderr tail). */
export async function exitWithin(p: NsProcess, timeoutMs: number): Promise<ExitStatus> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${p.command}: still running ${timeoutMs} ms later\n${p.stderr.slice(-2000)}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// PKI and configs

export interface PrincipalSpec {
  name: string;
  role: Role;
  /** IP addresses for an agent's server certificate (the address members dial). */
  ip?: string[];
}

export class Pki {
  constructor(readonly dir: string, readonly group: string) {}

  tls(name: string): TlsFiles {
    return tlsFiles(this.dir, name);
  }
}

export interface AgentSpec {
  name: string;
  role: 'controller' | 'intermediary';
  host: string;
  port: number;
  parentUrl?: string;
  /** The subgroup's IPv4 multicast group and port (sent from `host`). */
  multicast: { address: string; port: number };
  acl: Record<string, unknown>[];
  /** The group key service (controller only). */
  groupKey?: Record<string, unknown>;
  subgroup?: Record<string, unknown>;
  stateDir: string;
}

/** A keyd config: heartbeats every 300 ms, memberships of 3 s (unless `subgroup` says otherwise). */
export function keydConfig(pki: Pki, s: AgentSpec): Record<string, unknown> {
  return {
    group: pki.group,
    agent: { name: s.name, role: s.role },
    ...(s.parentUrl ? { parent: { url: s.parentUrl, rejoinMin: '100ms', rejoinMax: '1s' } } : {}),
    tls: pki.tls(s.name),
    listen: { host: s.host, port: s.port, datagramPort: s.port + 1 },
    subgroup: { transport: { kind: 'multicast', address: s.multicast.address, port: s.multicast.port, interface: s.host }, membershipTtl: '3s', heartbeat: '300ms', ...s.subgroup },
    acl: s.acl,
    ...(s.groupKey ? { groupKey: s.groupKey } : {}),
    state: { dir: s.stateDir },
    log: { level: 'info' },
  };
}

/** integration/fixtures/keyd/probe.mjs in one namespace: HTTPS from inside it. */
export class Probe {
  constructor(readonly host: NetnsHost, readonly proc: NsProcess) {}

  /** A request with `tls` client files; the parsed JSON body, or a throw unless 2xx. */
  async json<T = Record<string, unknown>>(url: string, tls: TlsFiles, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<T> {
    const r = await this.proc.request<{ ok: boolean; status?: number; body?: string; error?: string }>(
      { op: 'https', url, method, tls, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }, 20_000);
    if (!r.ok || r.status === undefined || r.status >= 300) throw new Error(`${method} ${url}: ${r.ok ? `${r.status} ${r.body}` : r.error}`);
    return JSON.parse(r.body || 'null') as T;
  }
}

export interface KeyEvent {
  /** When the agent printed it (ms, this machine's clock). */
  t: number;
  epoch: number;
  notBefore: number;
  notAfter: number;
}

export interface ApiAnswer {
  /** HTTP status, or 0 when nothing answered (no socket: the agent is gone). */
  status: number;
  body: Record<string, unknown> | string | undefined;
  code?: string;
}

/** GET over a Unix socket; never rejects. */
export function unixGet(socketPath: string, path: string, timeoutMs = 3_000): Promise<ApiAnswer> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: ApiAnswer['body'] = text;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          /* text */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: undefined, code: err.code ?? err.message }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: 0, body: undefined, code: err.code ?? err.message }));
    req.end();
  });
}

/** One `iolus keyd` process (its pino log lines on stdout). */
export class DaemonProc {
  constructor(readonly name: string, readonly host: NetnsHost, readonly proc: NsProcess, readonly url: string, readonly configPath: string) {}

  logs(): Record<string, unknown>[] {
    return jsonLines(this.proc);
  }

  /** The first log line from stdout line `from` on whose fields include `fields`. */
  waitLog(fields: Record<string, unknown>, options: { from?: number; timeoutMs?: number } = {}): Promise<Record<string, unknown>> {
    return waitJsonLine(this.proc, fields, options);
  }

  get lineCount(): number {
    return this.proc.lineCount;
  }
}

/** One `iolus agent` process (a local agent: a member serving keys on its Unix socket). */
export class AgentProc {
  constructor(readonly name: string, readonly host: NetnsHost, readonly proc: NsProcess, readonly socket: string) {}

  /** Its stdout JSON lines (ready, key, state, exit). */
  events(): Record<string, unknown>[] {
    return jsonLines(this.proc);
  }

  /** Every epoch it newly held ('key' lines), in order. */
  keyEvents(): KeyEvent[] {
    return this.events().filter((e) => e.event === 'key').map((e) => ({
      t: Number(e.t), epoch: Number(e.epoch), notBefore: Date.parse(String(e.notBefore)), notAfter: Date.parse(String(e.notAfter)),
    }));
  }

  get memberId(): number {
    return Number(this.events().find((e) => e.event === 'ready')?.memberId ?? 0);
  }

  get(path: string): Promise<ApiAnswer> {
    return unixGet(this.socket, path);
  }

  /** GET /v1/key for `epoch` (JSON); the epoch served, if any. */
  async key(epoch: 'current' | 'next' | 'previous' | number, label = SRTP_LABEL): Promise<ApiAnswer & { epoch?: number; key?: string }> {
    const r = await this.get(`/v1/key?label=${encodeURIComponent(label)}&epoch=${epoch}&format=json`);
    if (r.status === 200 && typeof r.body === 'object' && r.body) return { ...r, epoch: Number(r.body.epoch), key: String(r.body.key) };
    return r;
  }

  async status(): Promise<Record<string, unknown>> {
    const r = await this.get('/v1/status');
    if (r.status !== 200 || typeof r.body !== 'object' || !r.body) throw new Error(`${this.name}: /v1/status ${r.status} ${r.code ?? ''}`);
    return r.body;
  }

  get lineCount(): number {
    return this.proc.lineCount;
  }
}

/** One `iolus watch` process on an agent's socket. */
export class WatchProc {
  constructor(readonly agent: AgentProc, readonly proc: NsProcess) {}

  /** The 'activate' lines: each epoch as it came into force here, with its key (if --label). */
  activations(): { epoch: number; t: number; key?: string }[] {
    return jsonLines(this.proc).filter((e) => e.event === 'activate').map((e) => {
      const k = e.key as { key?: string } | undefined;
      return { epoch: Number(e.epoch), t: Date.parse(String(e.notBefore)), ...(k?.key ? { key: k.key } : {}) };
    });
  }
}

export interface UsageRow {
  principal: string;
  role?: string;
  epochs: number;
  minutes: number;
  memberMinutes?: number;
  firstEpoch: number;
  lastEpoch: number;
}

/** Parses `iolus usage --csv`. */
export function parseUsageCsv(text: string): UsageRow[] {
  const [head, ...rows] = text.trim().split('\n');
  const cols = (head ?? '').split(',');
  return rows.filter(Boolean).map((line) => {
    const cells = line.split(',').map((c) => JSON.parse(c) as string | number);
    const o: Record<string, string | number> = {};
    cols.forEach((c, i) => {
      o[c] = cells[i]!;
    });
    return o as unknown as UsageRow;
  });
}

export interface GroupKeyBedOptions {
  group: string;
  principals: readonly PrincipalSpec[];
}

export class GroupKeyBed {
  private readonly spawned: NsProcess[] = [];
  private readonly probes = new Map<string, Probe>();

  private constructor(readonly site: Site, readonly dir: string, readonly pki: Pki, readonly cli: string) {}

  static async create(site: Site, options: GroupKeyBedOptions): Promise<GroupKeyBed> {
    const dir = mkdtempSync(join(os.tmpdir(), 'iolus-gk-'));
    try {
      const pkiDir = join(dir, 'pki');
      await initCa(pkiDir, { group: options.group, validityDays: 30 });
      for (const p of options.principals) await issue(pkiDir, { name: p.name, role: p.role, validityDays: 30, ...(p.ip ? { ip: p.ip } : {}) });
      const [pki, cli] = [new Pki(pkiDir, options.group), await groupKeyCli()];
      mkdirSync(join(dir, 'run'), { mode: 0o700 });
      return new GroupKeyBed(site, dir, pki, cli);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  get group(): string {
    return this.pki.group;
  }

  stateDir(agentName: string): string {
    return join(this.dir, 'state', agentName);
  }

  socketOf(name: string): string {
    return join(this.dir, 'run', `${name}.sock`);
  }

  /** Writes the config and starts `iolus keyd`; resolves once it logged 'agent started'. */
  async daemon(host: string | NetnsHost, config: Record<string, unknown>): Promise<DaemonProc> {
    const name = String((config.agent as { name: string }).name);
    const path = join(this.dir, `${name}.yaml`);
    writeFileSync(path, toYaml(config));
    return this.startDaemon(host, name, path);
  }

  /** Writes a new config for an existing daemon name (its next restart uses it). */
  rewrite(d: DaemonProc, config: Record<string, unknown>): void {
    writeFileSync(d.configPath, toYaml(config));
  }

  /** Starts `iolus keyd` again with an earlier daemon's config (and so its state directory). */
  restart(d: DaemonProc): Promise<DaemonProc> {
    return this.startDaemon(d.host, d.name, d.configPath);
  }

  private async startDaemon(host: string | NetnsHost, name: string, path: string): Promise<DaemonProc> {
    const p = this.site.spawn(host, process.execPath, [this.cli, 'keyd', '--config', path]);
    this.spawned.push(p);
    const line = await p.waitForLine(/"event":"start"/, { timeoutMs: 20_000 });
    return new DaemonProc(name, p.host, p, String((JSON.parse(line) as { url: string }).url), path);
  }

  /** Starts `iolus agent` as `name` against `agentUrl`; resolves once it printed 'ready'. */
  async agent(host: string | NetnsHost, name: string, agentUrl: string, options: { role?: 'member' | 'originator'; waitReady?: boolean } = {}): Promise<AgentProc> {
    const tls = this.pki.tls(name);
    const socket = this.socketOf(name);
    const p = this.site.spawn(host, process.execPath, [
      this.cli, 'agent', '--group', this.group, '--agent', agentUrl, '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca,
      '--socket', socket, '--role', options.role ?? 'member',
    ], { env: { IOLUS_LOG_LEVEL: process.env.GROUPKEY_TEST_AGENT_LOG ?? 'warn', IOLUS_RUN_DIR: join(this.dir, 'run') } });
    this.spawned.push(p);
    const a = new AgentProc(name, p.host, p, socket);
    if (options.waitReady ?? true) await p.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 });
    return a;
  }

  /** `iolus watch --group g --socket <agent's>` (with `--label`, each activation carries its key). */
  async watch(host: string | NetnsHost, agent: AgentProc, label?: string): Promise<WatchProc> {
    const p = this.site.spawn(host, process.execPath, [this.cli, 'watch', '--group', this.group, '--socket', agent.socket, ...(label ? ['--label', label] : [])]);
    this.spawned.push(p);
    await p.waitForLine(/"event":"status"/, { timeoutMs: 20_000 });
    return new WatchProc(agent, p);
  }

  /** `iolus usage --group g --config <daemon's> --by <by> --csv`, run here (it only reads the ledger file). */
  async usage(d: DaemonProc, by: 'member' | 'intermediary' = 'member'): Promise<{ rows: UsageRow[]; csv: string }> {
    const r = await execa(process.execPath, [this.cli, 'usage', '--group', this.group, '--config', d.configPath, '--by', by, '--csv'], { timeout: 20_000, reject: false });
    if (r.exitCode !== 0) throw new Error(`iolus usage exited ${r.exitCode}: ${r.stderr}`);
    return { rows: parseUsageCsv(r.stdout), csv: r.stdout };
  }

  /** `iolus roll` as admin, from `host`; the epoch now in force. */
  async roll(host: string | NetnsHost, controllerUrl: string): Promise<number> {
    const t = this.pki.tls('admin');
    const r = await this.site.exec(host, process.execPath, [this.cli, 'roll', '--group', this.group, '--agent', controllerUrl, '--cert', t.cert, '--key', t.key, '--ca', t.ca], { timeoutMs: 20_000 });
    return Number((JSON.parse(r.stdout.trim().split('\n').pop()!) as { epoch: number }).epoch);
  }

  /** The probe of a namespace (integration/fixtures/keyd/probe.mjs; one per host). */
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

  /** Admin API: the member id of `principal` at daemon `d`. */
  async memberIdAt(d: DaemonProc, principal: string): Promise<number> {
    const probe = await this.probe(d.host);
    return until(`${principal} listed at ${d.name}`, async () => {
      const list = await probe.json<{ members: { id: number; principal: string }[] }>(`${d.url}/v1/admin/members`, this.pki.tls('admin'));
      return list.members.find((m) => m.principal === principal)?.id;
    }, 10_000, 100);
  }

  /** Admin API: POST /v1/admin/members/:id/expel at `d`. */
  async expel(d: DaemonProc, memberId: number): Promise<void> {
    const probe = await this.probe(d.host);
    await probe.json(`${d.url}/v1/admin/members/${memberId}/expel`, this.pki.tls('admin'), 'POST', {});
  }

  async teardown(): Promise<void> {
    await Promise.all(this.spawned.map((p) => p.stop({ graceMs: 2_000 })));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The runnable CLI (src/cli/main.js) of a private build that includes every command used here. */
export async function groupKeyCli(): Promise<string> {
  const js = await nodeEntry('integration/lib/groupKeyHarness.ts');
  return join(dirname(dirname(dirname(js))), 'src', 'cli', 'main.js');
}

/** Epochs in force one after the other: no number skipped. */
export function gaps(seq: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i < seq.length; i++) if (seq[i] !== seq[i - 1]! + 1) out.push([seq[i - 1]!, seq[i]!]);
  return out;
}
