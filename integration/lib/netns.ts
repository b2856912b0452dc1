/**
 * Several hosts on one machine, for integration tests: network namespaces joined by a bridge on a
 * private subnet (root and iproute2 required; see ../shared/notes/mdns.md).
 *
 *   <id>-sw : br0 (multicast snooping off: every multicast group floods, like a dumb hub)
 *              ├─ p0 ══ veth ══ eth0 @ <id>-hC  10.X.Y.1/24  fe80::…
 *              ├─ p1 ══ veth ══ eth0 @ <id>-hA  10.X.Y.2/24
 *              └─ p2 ══ veth ══ eth0 @ <id>-hB  10.X.Y.3/24
 *
 * Every host has loopback up, the IPv4 multicast route 224.0.0.0/4 on eth0 and IPv6 link-local
 * multicast (DAD off, so its fe80:: address is usable at once). There is no route out: traffic
 * stays inside the site. Names are `<prefix>-<pid>-<random>-<host>`, so parallel runs never
 * collide, and a later run removes the namespaces of runs whose process died (reapStaleSites).
 *
 * Every process started through a Site (exec, spawn) runs in its own process group and is killed
 * by teardown(), which then kills whatever else still runs in the namespaces and deletes them. An
 * exit hook does the same synchronously if the test process exits without tearing down.
 *
 *   const site = await createSite({ hosts: ['hC', 'hA', 'hB'] });
 *   try {
 *     const p = site.spawn('hA', 'node', ['agent.js']);
 *     await p.waitForLine(/ready/);
 *     await site.exec('hB', 'ip', ['addr']);
 *   } finally {
 *     await site.teardown();
 *   }
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve as resolvePath } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { execa, type Options as ExecaOptions, type Result } from 'execa';

export interface SiteOptions {
  /** Host names (letters and digits, ≤8 characters); default ['hA', 'hB']. */
  hosts?: readonly string[];
  /** Namespace name prefix (lower-case letters and digits, ≤10); default 'iolus'. */
  prefix?: string;
  /** IPv6 link-local on the segment (default true). */
  ipv6?: boolean;
}

export interface NetnsHost {
  /** Name given by the test, e.g. 'hA'. */
  readonly name: string;
  /** Network namespace name (for `ip netns exec`). */
  readonly ns: string;
  /** Interface on the segment (always 'eth0' inside the namespace). */
  readonly ifname: string;
  readonly ipv4: string;
  readonly prefixLength: number;
  /** fe80:: address of eth0, without zone (undefined with ipv6: false). */
  readonly ipv6LinkLocal: string | undefined;
  readonly mac: string;
}

export interface ExecOptions {
  /** Kill after this long (default 30 s). */
  timeoutMs?: number;
  /** Throw on a non-zero exit (default true). */
  reject?: boolean;
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** Keep at most this many stdout lines (default 20,000). */
  maxLines?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
}

export interface ExitStatus {
  exitCode: number | undefined;
  signal: string | undefined;
}

const IFNAME = 'eth0';
const PREFIX_LENGTH = 24;
const HOST_NAME = /^[A-Za-z][A-Za-z0-9]{0,7}$/;
const PREFIX = /^[a-z][a-z0-9]{0,9}$/;

/** Throws unless we can create namespaces (tests must not silently skip). */
export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('netns: integration tests with network namespaces must run as root (ip netns add)');
  }
}

async function ip(args: string[]): Promise<string> {
  const r = await execa('ip', args, { timeout: 15_000 });
  return r.stdout;
}

/** A process started in a namespace: output capture, line waits, JSON-line requests, stop. */
export class NsProcess {
  readonly pid: number;
  readonly exited: Promise<ExitStatus>;
  private stdoutText = '';
  private stderrText = '';
  private readonly lineList: string[] = [];
  private dropped = 0;
  private readonly lineWaiters = new Set<() => void>();
  private done: ExitStatus | undefined;
  private nextId = 1;

  constructor(
    readonly host: NetnsHost,
    readonly command: string,
    private readonly child: ReturnType<typeof execa>,
    private readonly maxLines: number,
  ) {
    if (child.pid === undefined) throw new Error(`netns: could not start ${command} in ${host.name}`);
    this.pid = child.pid;
    const outDecoder = new StringDecoder('utf8');
    let partial = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = outDecoder.write(chunk);
      this.stdoutText = tail(this.stdoutText + text, 1 << 20);
      partial += text;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) this.pushLine(l);
    });
    const errDecoder = new StringDecoder('utf8');
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderrText = tail(this.stderrText + errDecoder.write(chunk), 1 << 20);
    });
    this.exited = Promise.resolve(child).then(
      (r: Result) => this.finish({ exitCode: r.exitCode, signal: r.signal }),
      (err: { exitCode?: number; signal?: string }) => this.finish({ exitCode: err.exitCode, signal: err.signal }),
    );
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Complete stdout lines so far (the oldest dropped beyond maxLines). */
  get lines(): readonly string[] {
    return this.lineList;
  }

  get running(): boolean {
    return this.done === undefined;
  }

  /**
   * The first stdout line at index ≥ `from` (counting every line ever received) that matches;
   * rejects on timeout or when the process exits first, with the output tails in the message.
   */
  waitForLine(match: RegExp | ((line: string) => boolean), options: { timeoutMs?: number; from?: number } = {}): Promise<string> {
    const test = typeof match === 'function' ? match : (l: string) => match.test(l);
    const timeoutMs = options.timeoutMs ?? 15_000;
    let index = options.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = () => {
        for (; index < this.dropped + this.lineList.length; index++) {
          const line = this.lineList[index - this.dropped];
          if (line !== undefined && test(line)) {
            cleanup();
            resolve(line);
            index++;
            return;
          }
        }
        if (this.done) {
          cleanup();
          reject(new Error(`netns: ${this.describe()} exited (${JSON.stringify(this.done)}) before printing ${String(match)}${this.tails()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`netns: ${this.describe()} printed no line matching ${String(match)} within ${timeoutMs} ms${this.tails()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.lineWaiters.delete(check);
      };
      this.lineWaiters.add(check);
      check();
    });
  }

  /** Total stdout lines received so far (a `from` for waitForLine). */
  get lineCount(): number {
    return this.dropped + this.lineList.length;
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  /**
   * JSON-lines request/response: writes `{id, ...command}` and resolves with the first JSON line
   * carrying the same id.
   */
  async request<T = Record<string, unknown>>(command: Record<string, unknown>, timeoutMs = 15_000): Promise<T> {
    const id = this.nextId++;
    const from = this.lineCount;
    this.write(`${JSON.stringify({ id, ...command })}\n`);
    const line = await this.waitForLine((l) => parseJson(l)?.id === id, { timeoutMs, from });
    return JSON.parse(line) as T;
  }

  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void {
    killGroup(this.pid, sig);
  }

  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(options: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<ExitStatus> {
    if (this.done) return this.done;
    killGroup(this.pid, options.signal ?? 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), options.graceMs ?? 3_000);
    const status = await this.exited;
    clearTimeout(timer);
    killGroup(this.pid, 'SIGKILL'); // anything left in its group
    return status;
  }

  private pushLine(line: string): void {
    this.lineList.push(line);
    if (this.lineList.length > this.maxLines) {
      this.lineList.shift();
      this.dropped++;
    }
    for (const w of [...this.lineWaiters]) w();
  }

  private finish(status: ExitStatus): ExitStatus {
    this.done = status;
    for (const w of [...this.lineWaiters]) w();
    return status;
  }

  private describe(): string {
    return `'${this.command}' in ${this.host.name}`;
  }

  private tails(): string {
    return `\n--- stdout (tail) ---\n${tail(this.stdoutText, 2000)}\n--- stderr (tail) ---\n${tail(this.stderrText, 2000)}`;
  }
}

/** A set of hosts (namespaces) on one bridged segment. */
export class Site {
  private hostList: readonly NetnsHost[];
  private readonly processes = new Set<NsProcess>();
  private readonly running = new Set<ReturnType<typeof execa>>();
  private torndown: Promise<void> | undefined;

  constructor(
    /** `<prefix>-<pid>-<random>`: the namespaces are `<id>-<host>` and `<id>-sw`. */
    readonly id: string,
    /** e.g. `10.213.7.0/24`. */
    readonly subnet: string,
    readonly switchNs: string,
    hosts: NetnsHost[],
  ) {
    this.hostList = hosts;
  }

  /** The hosts, in the order given; each with its namespace, addresses and MAC. */
  get hosts(): readonly NetnsHost[] {
    return this.hostList;
  }

  /** Every namespace of the site, hosts first. */
  get namespaces(): string[] {
    return [...this.hosts.map((h) => h.ns), this.switchNs];
  }

  host(name: string | NetnsHost): NetnsHost {
    if (typeof name !== 'string') return name;
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`netns: no host '${name}' in site ${this.id} (hosts: ${this.hosts.map((x) => x.name).join(', ')})`);
    return h;
  }

  /** Runs a command to completion in a host's namespace. */
  async exec(host: string | NetnsHost, cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    this.assertLive();
    const h = this.host(host);
    const child = execa('ip', ['netns', 'exec', h.ns, cmd, ...args], {
      timeout: options.timeoutMs ?? 30_000,
      reject: options.reject ?? true,
      detached: true,
      ...(options.input !== undefined ? { input: options.input } : {}),
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    } satisfies ExecaOptions);
    this.running.add(child);
    try {
      const r = await child;
      return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut };
    } finally {
      this.running.delete(child);
    }
  }

  /** Starts a long-running command in a host's namespace (in its own process group). */
  spawn(host: string | NetnsHost, cmd: string, args: readonly string[] = [], options: SpawnOptions = {}): NsProcess {
    this.assertLive();
    const h = this.host(host);
    const child = execa('ip', ['netns', 'exec', h.ns, cmd, ...args], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      reject: false,
      detached: true,
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    const p = new NsProcess(h, [cmd, ...args].join(' ').slice(0, 120), child, options.maxLines ?? 20_000);
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  /** Processes started with spawn() and still running. */
  get live(): NsProcess[] {
    return [...this.processes].filter((p) => p.running);
  }

  /**
   * Stops every process (SIGTERM, then SIGKILL), kills anything else inside the namespaces and
   * deletes them. Idempotent; throws if a namespace survives.
   */
  teardown(): Promise<void> {
    this.torndown ??= (async () => {
      await Promise.all([...this.processes].map((p) => p.stop({ graceMs: 2_000 })));
      for (const c of this.running) killGroup(c.pid, 'SIGKILL');
      const left: string[] = [];
      for (const ns of this.namespaces) {
        await killInside(ns);
        await execa('ip', ['netns', 'del', ns], { reject: false });
      }
      const remaining = await listNamespaces();
      for (const ns of this.namespaces) if (remaining.includes(ns)) left.push(ns);
      liveSites.delete(this);
      if (left.length > 0) throw new Error(`netns: namespaces not deleted: ${left.join(', ')}`);
    })();
    return this.torndown;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.teardown();
  }

  /** Exit hook: the same as teardown, synchronously and without waiting for graceful exits. */
  teardownSync(): void {
    for (const p of this.processes) killGroup(p.pid, 'SIGKILL');
    for (const c of this.running) killGroup(c.pid, 'SIGKILL');
    for (const ns of this.namespaces) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
        for (const pid of pids.split(/\s+/).filter(Boolean)) killPid(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
    liveSites.delete(this);
  }

  private assertLive(): void {
    if (this.torndown) throw new Error(`netns: site ${this.id} is torn down`);
  }
}

const liveSites = new Set<Site>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const s of [...liveSites]) s.teardownSync();
  });
}

/**
 * Creates the namespaces, the bridge and one veth per host; hosts get .1, .2, … of a random
 * 10.X.Y.0/24 (X in 200-249) that no local interface uses. On failure, removes what it made.
 */
export async function createSite(options: SiteOptions = {}): Promise<Site> {
  requireRoot();
  const prefix = options.prefix ?? 'iolus';
  if (!PREFIX.test(prefix)) throw new Error(`netns: prefix '${prefix}' must match ${PREFIX}`);
  const names = options.hosts ?? ['hA', 'hB'];
  if (names.length === 0 || names.length > 200) throw new Error('netns: 1 to 200 hosts');
  for (const n of names) if (!HOST_NAME.test(n)) throw new Error(`netns: host name '${n}' must match ${HOST_NAME}`);
  if (new Set(names).size !== names.length) throw new Error('netns: host names must be unique');
  const ipv6 = options.ipv6 ?? true;
  await reapStaleSites(prefix);
  installExitHook();

  const id = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const base = pickSubnet();
  const switchNs = `${id}-sw`;
  const planned: NetnsHost[] = names.map((name, i) => ({
    name,
    ns: `${id}-${name}`,
    ifname: IFNAME,
    ipv4: `${base}.${i + 1}`,
    prefixLength: PREFIX_LENGTH,
    ipv6LinkLocal: undefined,
    mac: '',
  }));
  const site = new Site(id, `${base}.0/${PREFIX_LENGTH}`, switchNs, planned);
  liveSites.add(site);
  try {
    await ip(['netns', 'add', switchNs]);
    for (const h of planned) await ip(['netns', 'add', h.ns]);
    await ip(['-n', switchNs, 'link', 'set', 'lo', 'up']);
    // A plain hub for multicast: without snooping (and without an IGMP querier) a bridge may
    // stop forwarding a group once its membership times out.
    await ip(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
    await ip(['-n', switchNs, 'link', 'set', 'br0', 'up']);
    const hosts: NetnsHost[] = [];
    for (const [i, h] of planned.entries()) {
      const port = `p${i}`;
      await ip(['-n', switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', IFNAME, 'netns', h.ns]);
      await ip(['-n', switchNs, 'link', 'set', port, 'master', 'br0']);
      await ip(['-n', switchNs, 'link', 'set', port, 'up']);
      const v6 = ipv6 ? ['accept_dad', '0'] : ['disable_ipv6', '1'];
      await execa('ip', ['netns', 'exec', h.ns, 'sh', '-c', `echo ${v6[1]} > /proc/sys/net/ipv6/conf/${IFNAME}/${v6[0]}`]);
      await ip(['-n', h.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', h.ns, 'addr', 'add', `${h.ipv4}/${PREFIX_LENGTH}`, 'dev', IFNAME]);
      await ip(['-n', h.ns, 'link', 'set', IFNAME, 'up']);
      await ip(['-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', IFNAME]);
      hosts.push(h);
    }
    const done = await Promise.all(hosts.map(async (h) => ({ ...h, ...(await readLink(h.ns, ipv6)) })));
    site['hostList'] = done; // now with MAC and IPv6 address (module-private access)
    return site;
  } catch (err) {
    await site.teardown().catch(() => undefined);
    throw err;
  }
}

/** Two hosts on one segment: the common case. */
export function createPair(options: Omit<SiteOptions, 'hosts'> & { hosts?: [string, string] } = {}): Promise<Site> {
  return createSite({ ...options, hosts: options.hosts ?? ['hA', 'hB'] });
}

async function readLink(ns: string, ipv6: boolean): Promise<{ mac: string; ipv6LinkLocal: string | undefined }> {
  for (let attempt = 0; ; attempt++) {
    const [info] = JSON.parse(await ip(['-j', '-n', ns, 'addr', 'show', 'dev', IFNAME])) as {
      address: string;
      addr_info: { family: string; local: string; scope: string; tentative?: boolean }[];
    }[];
    const ll = info?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'link' && !a.tentative)?.local;
    if (info && (!ipv6 || ll)) return { mac: info.address, ipv6LinkLocal: ll };
    if (attempt >= 50) throw new Error(`netns: no usable IPv6 link-local address on ${ns}/${IFNAME}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function pickSubnet(): string {
  const used = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') used.add(a.address.split('.').slice(0, 3).join('.'));
  }
  for (const s of liveSites) used.add(s.subnet.split('.').slice(0, 3).join('.'));
  for (;;) {
    const [x = 0, y = 0] = randomBytes(2);
    const base = `10.${200 + (x % 50)}.${y}`;
    if (!used.has(base)) return base;
  }
}

async function listNamespaces(): Promise<string[]> {
  const out = await execa('ip', ['netns', 'list'], { reject: false });
  return out.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

async function killInside(ns: string): Promise<void> {
  const r = await execa('ip', ['netns', 'pids', ns], { reject: false });
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) killPid(Number(pid), 'SIGKILL');
  // Wait briefly for them to die so the namespace can go.
  for (let i = 0; i < 40; i++) {
    const again = await execa('ip', ['netns', 'pids', ns], { reject: false });
    if (again.stdout.trim() === '') return;
    await new Promise((r2) => setTimeout(r2, 50));
  }
}

/**
 * Deletes namespaces left by earlier runs with this prefix whose process is gone (a crashed or
 * killed test run), with whatever still runs in them. Returns the names removed.
 */
export async function reapStaleSites(prefix = 'iolus'): Promise<string[]> {
  const pattern = new RegExp(`^${prefix}-(\\d+)-[0-9a-f]{6}-[A-Za-z0-9]+$`);
  const removed: string[] = [];
  for (const ns of await listNamespaces()) {
    const m = pattern.exec(ns);
    if (!m || pidAlive(Number(m[1]))) continue;
    await killInside(ns);
    await execa('ip', ['netns', 'del', ns], { reject: false });
    removed.push(ns);
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    killPid(pid, sig);
  }
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

function tail(s: string, n: number): string {
  return s.length > n ? s.slice(s.length - n) : s;
}

function parseJson(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Running our TypeScript inside a namespace: `ip netns exec` can only start a program, and the
// test process (vitest) cannot enter a namespace, so an entry point must exist as JavaScript.

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root (the directory of package.json "iolus"), from source or from dist. */
export function repoRoot(): string {
  for (let d = here; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'iolus') return d;
    if (dirname(d) === d) throw new Error('netns: repository root not found');
  }
}

const compiled = new Map<string, Promise<string>>();

/**
 * Path of a runnable .js for a TypeScript entry (path relative to the repository root, e.g.
 * 'src/discovery/mdns/driver.ts'). Running from dist/ (npm run bench), the build's own output.
 * From source (vitest), a private tsc build of just that entry and its imports, so a concurrent
 * `tsc -p .` by someone else cannot race with it; kept in node_modules/.cache/iolus-entries/
 * under a hash of every source file, so an unchanged tree is not compiled twice.
 */
export function nodeEntry(entry: string): Promise<string> {
  const root = repoRoot();
  // From dist/ (npm run bench), or when the test command has just built everything into dist/
  // and nothing else is building (IOLUS_USE_DIST=1, set by scripts/test.sh): the build's output.
  const fromDist = relative(root, here).split(/[\\/]/)[0] === 'dist' || process.env.IOLUS_USE_DIST === '1';
  if (fromDist) {
    const js = join(root, 'dist', entry.replace(/\.ts$/, '.js'));
    if (!existsSync(js)) return Promise.reject(new Error(`netns: ${js} is not built`));
    return Promise.resolve(js);
  }
  let p = compiled.get(entry);
  if (!p) {
    p = compileEntry(root, entry);
    compiled.set(entry, p);
  }
  return p;
}

function sourceHash(root: string, entry: string): string {
  const h = createHash('sha256').update(entry).update(readFileSync(join(root, 'tsconfig.json')));
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, d.name);
      if (d.isDirectory()) walk(path);
      else if (d.name.endsWith('.ts')) h.update(relative(root, path)).update(readFileSync(path));
    }
  };
  for (const dir of ['src', 'integration/lib', 'bench']) walk(join(root, dir));
  return h.digest('hex').slice(0, 16);
}

async function compileEntry(root: string, entry: string): Promise<string> {
  const cache = join(root, 'node_modules', '.cache', 'iolus-entries');
  const final = join(cache, sourceHash(root, entry));
  const js = (dir: string) => join(dir, entry.replace(/\.ts$/, '.js'));
  if (existsSync(js(final))) return js(final);
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, 'tmp-'));
  try {
    const typeDecls = join(root, 'src', 'types');
    const files = [resolvePath(root, entry), ...(existsSync(typeDecls) ? readdirSync(typeDecls).filter((f) => f.endsWith('.d.ts')).map((f) => join(typeDecls, f)) : [])];
    writeFileSync(
      join(work, 'tsconfig.json'),
      JSON.stringify({
        extends: join(root, 'tsconfig.json'),
        compilerOptions: { outDir: work, rootDir: root, sourceMap: false, noEmitOnError: true, typeRoots: [join(root, 'node_modules', '@types')], incremental: false },
        files,
        include: [],
      }),
    );
    const r = await execa(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(work, 'tsconfig.json')], { reject: false, timeout: 300_000 });
    if (r.exitCode !== 0) throw new Error(`netns: compiling ${entry} failed:\n${r.stdout}\n${r.stderr}`);
    // Inside node_modules/ the package scope stops: say ESM, like the repository.
    writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
    try {
      renameSync(work, final); // atomic: a concurrent compile of the same tree may have won
    } catch {
      rmSync(work, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  pruneCache(cache, final);
  return js(final);
}

/** Keeps the five most recent builds. */
function pruneCache(cache: string, keep: string): void {
  const builds = readdirSync(cache, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('tmp-'))
    .map((d) => ({ path: join(cache, d.name), at: statSync(join(cache, d.name)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const b of builds.slice(5)) if (b.path !== keep) rmSync(b.path, { recursive: true, force: true });
}
