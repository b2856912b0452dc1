/**
 * Runs keyd daemons as separate processes for the benchmarks, exactly as deployed
 * (`node dist/src/cli/main.js keyd --config f.yaml`), plus a preloaded probe (keydProbe.ts)
 * that reports the process's heap on request. Each daemon gets its own directory with its
 * config, certificate and log; its URL is read from its "agent started" log line. CPU time and
 * RSS come from /proc/<pid>.
 */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import type { Pair } from './benchPki.js';
import { benchDir } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/bench/lib → dist/src/cli/main.js */
export const MAIN_JS = join(here, '..', '..', 'src', 'cli', 'main.js');
const PROBE_JS = join(here, 'keydProbe.js');
const CLK_TCK = 100;

export interface MemSample {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** V8 code spaces in use (compiled code; part of heapUsed). */
  code: number;
}

export interface KeydProcess {
  readonly name: string;
  readonly pid: number;
  readonly url: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  /** Memory after two full GCs, from inside the process. */
  mem(): Promise<MemSample>;
  /** User + system CPU time so far (ms, 10 ms resolution). */
  cpuMs(): number;
  /** VmRSS from /proc (bytes). */
  rss(): number;
  /** Open file descriptors (sockets included). */
  fds(): number;
  /** Writes a V8 heap snapshot of the process to `path`. */
  snapshot(path: string): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartKeydOptions {
  /** Directory for config, certificate, key and log (created). */
  dir: string;
  name: string;
  ca: string;
  pair: Pair;
  /** The config, except `tls` (filled in here). */
  config: Record<string, unknown>;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeFlags?: string[];
  timeoutMs?: number;
}

export async function startKeyd(o: StartKeydOptions): Promise<KeydProcess> {
  mkdirSync(o.dir, { recursive: true });
  writeFileSync(join(o.dir, 'ca.crt'), o.ca);
  writeFileSync(join(o.dir, `${o.name}.crt`), o.pair.cert);
  writeFileSync(join(o.dir, `${o.name}.key`), o.pair.key, { mode: 0o600 });
  const configPath = join(o.dir, `${o.name}.yaml`);
  writeFileSync(configPath, stringify({ ...o.config, tls: { ca: 'ca.crt', cert: `${o.name}.crt`, key: `${o.name}.key` } }));
  const logPath = join(o.dir, `${o.name}.log`);
  const fd = openSync(logPath, 'w');
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), '--expose-gc', '--import', PROBE_JS, MAIN_JS, 'keyd', '--config', configPath], {
    cwd: o.dir,
    stdio: ['ignore', fd, fd, 'ipc'],
    env: { ...process.env, IOLUS_LOG_STDERR: '0' },
  });
  closeSync(fd);
  let exited: number | string | undefined;
  const exit = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
    exited = code ?? signal ?? 'unknown';
    resolve();
  }));
  let url: string;
  try {
    url = await waitForUrl(logPath, () => exited, o.timeoutMs ?? 15_000);
  } catch (err) {
    if (exited === undefined) child.kill('SIGKILL');
    throw err;
  }
  const pid = child.pid!;
  let seq = 0;
  const pending = new Map<number, (m: MemSample) => void>();
  const snapshots = new Map<number, () => void>();
  child.on('message', (m: MemSample & { op?: string; id?: number }) => {
    if (m.op === 'mem' && m.id !== undefined) pending.get(m.id)?.(m);
    if (m.op === 'snapshot' && m.id !== undefined) snapshots.get(m.id)?.();
  });
  return {
    name: o.name,
    pid,
    url,
    logPath,
    child,
    mem: () => new Promise<MemSample>((resolve, reject) => {
      const id = ++seq;
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${o.name}: no memory answer`));
      }, 10_000);
      pending.set(id, (m) => {
        clearTimeout(t);
        pending.delete(id);
        resolve({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, code: m.code });
      });
      child.send({ op: 'mem', id });
    }),
    cpuMs: () => procCpuMs(pid),
    rss: () => procRss(pid),
    fds: () => readdirSync(`/proc/${pid}/fd`).length,
    snapshot: (path) => new Promise<void>((resolve) => {
      const id = ++seq;
      const t = setTimeout(() => resolve(), 60_000);
      snapshots.set(id, () => {
        clearTimeout(t);
        snapshots.delete(id);
        resolve();
      });
      child.send({ op: 'snapshot', id, path });
    }),
    stop: async (graceMs = 3000) => {
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(t);
    },
  };
}

async function waitForUrl(logPath: string, exited: () => number | string | undefined, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = readFileSync(logPath, 'utf8');
    const m = /"msg":"agent started"/.test(text) ? /"url":"(https:\/\/[^"]+)"/.exec(text) : null;
    if (m?.[1]) return m[1];
    if (exited() !== undefined) throw new Error(`keyd exited (${String(exited())}) before starting; log ${logPath}:\n${text.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`keyd did not start within ${timeoutMs} ms; log ${logPath}:\n${text.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The quietest of `n` memory readings `gapMs` apart (least heapUsed): a reading can catch the
 * daemon holding transient state (a rekey or a group key roll in flight, sockets still closing).
 */
export async function settledMem(d: KeydProcess, n = 3, gapMs = 700): Promise<MemSample> {
  let best: MemSample | undefined;
  for (let i = 0; i < n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    const m = await d.mem();
    if (!best || m.heapUsed + m.external < best.heapUsed + best.external) best = m;
  }
  return best!;
}

/** utime + stime of a process (ms). */
export function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at index 2 (state).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return ((utime + stime) * 1000) / CLK_TCK;
}

export function procRss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m?.[1] ? Number(m[1]) * 1024 : NaN;
}

export function loadAverage(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(', ');
}

/** Removes a run directory unless IOLUS_BENCH_KEEP=1 (its logs and ledgers are for looking into a failed run). */
export function removeRunDir(dir: string): void {
  if (process.env.IOLUS_BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
}

/** A fresh directory under the OS temp dir for one benchmark run. */
export function runDir(name: string): string {
  const d = join(os.tmpdir(), `iolus-bench-${name}-${process.pid}-${Date.now()}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** A free TCP/UDP port number hint for multicast groups: distinct per run, in 40000–59999. */
export function portBase(): number {
  return 40_000 + ((process.pid * 37) % 20_000);
}

/** The commit the benchmark ran on, and whether src/ had uncommitted changes. */
export function revision(): string {
  try {
    const head = execSync('git rev-parse --short HEAD', { cwd: benchDir, encoding: 'utf8' }).trim();
    const dirty = execSync('git status --porcelain -- src', { cwd: benchDir, encoding: 'utf8' }).trim();
    return `commit ${head}${dirty ? ' with uncommitted changes in src/ (other engineers at work)' : ''}`;
  } catch {
    return 'commit unknown';
  }
}
