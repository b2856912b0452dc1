/**
 * A whole key service on this host, as real processes: a group PKI, a controller (and
 * intermediaries below it) running `iolus keyd`, and one local agent (`iolus agent`) per
 * participant, each serving keys on its own Unix socket. What the vic-like sample runs on, and
 * what the media integration tests use (integration/lib/keyService.ts).
 *
 *   const ks = await LocalKeyService.start({ dir, cli: 'dist/src/cli/main.js', periodMs: 2000 });
 *   const alice = await ks.agent('alice');          // joins at the controller
 *   const bob = await ks.agent('bob', 'gsi-1');     // joins at an intermediary
 *   await ks.expel('bob');                          // admin expel where bob is a member
 *   await ks.stop();
 *
 * Every process is the leader of its own process group, registered with the pipeline
 * watchdog (src/adapters/pipeline/watchdog.ts): none outlives the process that started it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ControlClient } from '../../src/client/controlClient.js';
import { initCa } from '../../src/pki/ca.js';
import { tlsFiles, type TlsFiles } from '../../src/pki/files.js';
import { issue } from '../../src/pki/issue.js';
import { loadTlsMaterial } from '../../src/pki/tlsOptions.js';
import { guardGroup, releaseGroup } from '../../src/adapters/pipeline/watchdog.js';

export interface KeyServiceOptions {
  /** Work directory: PKI, configs, state, agent sockets. */
  readonly dir: string;
  /** The CLI entry point (dist/src/cli/main.js or a test build of it). */
  readonly cli: string;
  readonly group?: string;
  /** KGRP2 period, lead and grace (ms). Defaults 2000, 1000, 1000. */
  readonly periodMs?: number;
  readonly leadMs?: number;
  readonly graceMs?: number;
  /** Intermediaries below the controller, named gsi-1, gsi-2, … */
  readonly intermediaries?: number;
  /** Each output line of each process (for logs and tests). */
  readonly onLine?: (proc: string, stream: 'stdout' | 'stderr', line: string) => void;
  /** IOLUS_LOG_LEVEL for the agents (keyds log at info: their start line is one). Default warn. */
  readonly logLevel?: string;
}

/** One process we started. */
export class ServiceProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private readonly waiters = new Set<{ test: (l: string) => boolean; resolve: (l: string) => void }>();
  private ended = false;

  constructor(readonly name: string, private readonly proc: ResultPromise, onLine?: KeyServiceOptions['onLine']) {
    const pgid = proc.pid;
    if (pgid !== undefined) guardGroup(pgid);
    const split = (stream: 'stdout' | 'stderr') => {
      let rest = '';
      return (chunk: Buffer) => {
        rest += chunk.toString('utf8');
        let nl: number;
        while ((nl = rest.indexOf('\n')) >= 0) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          onLine?.(name, stream, line);
          if (stream === 'stdout') {
            if (this.lines.length < 20_000) this.lines.push(line);
            for (const w of this.waiters) if (w.test(line)) {
              this.waiters.delete(w);
              w.resolve(line);
            }
          } else if (this.lines.length < 20_000) this.lines.push(`[stderr] ${line}`);
        }
      };
    };
    proc.stdout?.on('data', split('stdout'));
    proc.stderr?.on('data', split('stderr'));
    this.exited = proc.then((r) => {
      this.ended = true;
      if (pgid !== undefined) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          /* gone */
        }
        releaseGroup(pgid);
      }
      return { code: r.exitCode ?? null, signal: r.signal ?? null };
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return !this.ended;
  }

  /** Resolves with the first stdout line (already printed or to come) that passes `test`. */
  waitLine(test: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const seen = this.lines.find((l) => !l.startsWith('[stderr] ') && test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { test, resolve: (l: string) => {
        clearTimeout(timer);
        resolve(l);
      } };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms; output:\n${this.lines.slice(-30).join('\n')}`));
      }, timeoutMs);
      this.waiters.add(w);
      void this.exited.then((e) => {
        if (!this.waiters.has(w)) return;
        this.waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${e.code ?? e.signal}) before ${what}; output:\n${this.lines.slice(-30).join('\n')}`));
      });
    });
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.ended || this.proc.pid === undefined) return;
    const pgid = this.proc.pid;
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-pgid, sig);
      } catch {
        /* gone */
      }
    };
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts `node <script> …args` as a ServiceProcess (own process group, watched). */
export function spawnNode(name: string, script: string, args: readonly string[], opts: { env?: Record<string, string>; onLine?: KeyServiceOptions['onLine'] } = {}): ServiceProcess {
  const p = execa(process.execPath, [script, ...args], {
    detached: true, cleanup: false, reject: false, stdin: 'ignore', buffer: false, ...(opts.env ? { env: opts.env } : {}),
  });
  return new ServiceProcess(name, p, opts.onLine);
}

export interface AgentHandle {
  readonly name: string;
  readonly socket: string;
  readonly proc: ServiceProcess;
  /** The member id the agent joined with. */
  readonly memberId: number;
  /** keyd URL it joined. */
  readonly at: string;
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export class LocalKeyService {
  readonly group: string;
  readonly periodMs: number;
  readonly leadMs: number;
  readonly graceMs: number;
  readonly keyds = new Map<string, { proc: ServiceProcess; url: string }>();
  readonly agents = new Map<string, AgentHandle>();
  private readonly admins = new Map<string, ControlClient>();
  private readonly pki: string;
  private stopped = false;

  private constructor(readonly opts: KeyServiceOptions) {
    this.group = opts.group ?? 'media.example';
    this.periodMs = opts.periodMs ?? 2000;
    this.leadMs = opts.leadMs ?? 1000;
    this.graceMs = opts.graceMs ?? 1000;
    this.pki = join(opts.dir, 'pki');
  }

  /** Makes the PKI and starts the controller (and intermediaries); resolves when all serve. */
  static async start(opts: KeyServiceOptions): Promise<LocalKeyService> {
    const ks = new LocalKeyService(opts);
    try {
      mkdirSync(join(opts.dir, 'run'), { recursive: true, mode: 0o700 });
      await initCa(ks.pki, { group: ks.group, validityDays: 30 });
      await issue(ks.pki, { name: 'admin', role: 'admin', validityDays: 30 });
      await ks.keyd('controller', 'controller');
      for (let i = 1; i <= (opts.intermediaries ?? 0); i++) await ks.keyd(`gsi-${i}`, 'intermediary', ks.url('controller'));
    } catch (err) {
      await ks.stop();
      throw err;
    }
    return ks;
  }

  /** The URL of a keyd by name (controller, gsi-1, …). */
  url(name: string): string {
    const k = this.keyds.get(name);
    if (!k) throw new Error(`no keyd named ${name}`);
    return k.url;
  }

  tls(name: string): TlsFiles {
    return tlsFiles(this.pki, name);
  }

  /** The socket a participant's agent serves on. */
  socketPath(name: string): string {
    return join(this.opts.dir, 'run', `${name}.sock`);
  }

  private spawn(name: string, args: string[], logLevel = this.opts.logLevel ?? 'warn'): ServiceProcess {
    return spawnNode(name, this.opts.cli, args, {
      env: { IOLUS_LOG_LEVEL: logLevel, IOLUS_RUN_DIR: join(this.opts.dir, 'run') },
      ...(this.opts.onLine ? { onLine: this.opts.onLine } : {}),
    });
  }

  private async keyd(name: string, role: 'controller' | 'intermediary', parent?: string): Promise<void> {
    await issue(this.pki, { name, role, validityDays: 30 });
    const tls = this.tls(name);
    const s = (ms: number) => `${ms}ms`;
    const config = [
      `group: ${this.group}`,
      `agent: { name: ${name}, role: ${role} }`,
      ...(parent ? [`parent: { url: "${parent}", rejoinMin: 100ms, rejoinMax: 1s }`] : []),
      `tls: { ca: "${tls.ca}", cert: "${tls.cert}", key: "${tls.key}" }`,
      'listen: { host: 127.0.0.1, port: 0, datagramPort: 0 }',
      'subgroup: { transport: { kind: unicast }, heartbeat: 300ms, membershipTtl: 3s }',
      `groupKey: { period: ${s(this.periodMs)}, lead: ${s(this.leadMs)}, grace: ${s(this.graceMs)} }`,
      `state: { dir: "${join(this.opts.dir, 'state', name)}" }`,
      'acl:',
      '  - { principal: "gsi-*", roles: [intermediary] }',
      '  - { principal: admin, roles: [admin] }',
      '  - { principal: "*", roles: [member] }',
      'limits: { joinsPerMinute: 600, joinBurst: 100 }',
      'log: { level: info }',
    ].join('\n');
    const path = join(this.opts.dir, `${name}.yaml`);
    writeFileSync(path, `${config}\n`);
    // keyd's 'start' line (its URL) is an info log.
    const proc = this.spawn(name, ['keyd', '--config', path], 'info');
    const line = await proc.waitLine((l) => parseJson(l)?.event === 'start', 20_000, 'start line');
    this.keyds.set(name, { proc, url: String(parseJson(line)!.url) });
  }

  /** Starts the local agent of participant `name` at keyd `at` (default the controller); resolves once it has joined. */
  async agent(name: string, at = 'controller'): Promise<AgentHandle> {
    await issue(this.pki, { name, role: 'member', validityDays: 30 });
    const tls = this.tls(name);
    const socket = this.socketPath(name);
    const url = this.url(at);
    const proc = this.spawn(`agent-${name}`, ['agent', '--group', this.group, '--agent', url, '--cert', tls.cert, '--key', tls.key, '--ca', tls.ca, '--socket', socket]);
    const ready = parseJson(await proc.waitLine((l) => parseJson(l)?.event === 'ready', 20_000, 'ready line'))!;
    const h: AgentHandle = { name, socket, proc, memberId: Number(ready.memberId), at };
    this.agents.set(name, h);
    return h;
  }

  /** Stops an agent (it leaves the group). */
  async stopAgent(name: string): Promise<void> {
    await this.agents.get(name)?.proc.stop();
  }

  private async admin(at: string): Promise<ControlClient> {
    let c = this.admins.get(at);
    if (!c) {
      c = new ControlClient({ url: this.url(at), group: this.group, tls: await loadTlsMaterial(this.tls('admin')) });
      this.admins.set(at, c);
    }
    return c;
  }

  /** Admin expel of participant `name` at the keyd its agent joined; returns when the keyd accepted it. */
  async expel(name: string): Promise<{ memberId: number; at: string; t: number }> {
    const h = this.agents.get(name);
    if (!h) throw new Error(`no agent named ${name}`);
    const admin = await this.admin(h.at);
    const list = await admin.call<{ members: { id: number; principal: string }[] }>('GET', '/v1/admin/members');
    const m = list.members.find((x) => x.principal === name);
    if (!m) throw new Error(`${name} is not a member at ${h.at}`);
    await admin.call('POST', `/v1/admin/members/${m.id}/expel`, {});
    return { memberId: m.id, at: h.at, t: Date.now() };
  }

  /** Forces a roll of the group key at the controller; returns the new epoch. */
  async roll(): Promise<number> {
    const admin = await this.admin('controller');
    const r = await admin.call<{ epoch: number }>('POST', '/v1/admin/roll', {});
    return r.epoch;
  }

  /** Every process we started that is still running. */
  live(): ServiceProcess[] {
    return [...[...this.agents.values()].map((a) => a.proc), ...[...this.keyds.values()].map((k) => k.proc)].filter((p) => p.running);
  }

  /** Stops the agents, then the keyds (children first, the controller last). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const c of this.admins.values()) c.close();
    await Promise.all([...this.agents.values()].map((a) => a.proc.stop()));
    const keyds = [...this.keyds.values()].reverse();
    for (const k of keyds) await k.proc.stop();
  }
}
