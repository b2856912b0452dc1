/**
 * `rollover`: how long after the originator announces KGRP2(n+1) the last of 10,000 members of
 * a 3-level tree holds it, and how far ahead of activation that is (issue 4; target: every
 * member holds it at least lead/2 before activation, default lead 10 s).
 *
 * Tree (as bench/propagation.ts): a controller (level 0, the originator), two intermediaries
 * (level 1), four (level 2), each an `iolus keyd` process with a UDP multicast subgroup on
 * 127.0.0.1; 2,500 members under each level-2 agent, held by one harness process per leaf
 * (this file forked with HARNESS_FLAG): each member joins over its own mutual-TLS connection
 * with its own certificate (bench/lib/mtlsLoad.ts) and is a real Member state machine with its
 * own MemberKeys ring; the members of a leaf share one socket on its multicast group, as
 * members on one host would. Around each roll the harness stamps datagrams on arrival, then feeds
 * them to every member, timing each: completion as if each member had its own CPU, and, as an
 * upper bound, with a leaf's members taking the announcement one after the other on one core.
 *
 * t0 is the controller's log line for the epoch (the announcement leaves in the same tick);
 * completion times are wall-clock ms in each process (same machine clock). Baseline in the same
 * run: a datagram of the announcement's size multicast straight to the four leaf groups' sockets.
 */
import dgram, { type Socket } from 'node:dgram';
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ControlClient } from '../src/client/controlClient.js';
import { Member } from '../src/client/member.js';
import { MemberKeys } from '../src/client/memberKeys.js';
import { systemClock } from '../src/util/clock.js';
import { CatchUpResponse, JoinGrant } from '../src/wire/control.js';
import { ContentType } from '../src/wire/data.js';
import { MessageType } from '../src/wire/header.js';
import { findLeaveEntry } from '../src/wire/keyUpdate.js';
import { decodeMessage } from '../src/wire/message.js';
import { AGENT_NAMES, BENCH_GROUP, benchPki, memberName, type Pair } from './lib/benchPki.js';
import { loadAverage, procCpuMs, runDir, startKeyd, type KeydProcess } from './lib/keydHarness.js';
import { hangUp, loadMembers, request, type LoadMember } from './lib/mtlsLoad.js';
import { median, percentile, writeReport, type BenchRow } from './lib/report.js';

const HARNESS_FLAG = '--iolus-rollover-harness';
const PER_LEAF = Number(process.env.IOLUS_BENCH_ROLLOVER_PER_LEAF ?? 2500);
const LEAVES = AGENT_NAMES.level2.length;
const MEMBERS = PER_LEAF * LEAVES;
const PERIOD_MS = 15_000;
/** The default lead (config.ts): the target is lead/2. */
const LEAD_MS = 10_000;
const ROLLS = Number(process.env.IOLUS_BENCH_ROLLOVER_ROLLS ?? 3);

function log(line: string): void {
  process.stdout.write(`rollover: ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock ms with sub-ms resolution (every process of this machine shares the clock). */
const wallMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// Harness (child process): the members of one leaf subgroup.

type HarnessRequest =
  | { op: 'init'; group: string; url: string; ca: string; names: string[]; pairs: Pair[] }
  /** Joins the next `count` members (all that are left by default). */
  | { op: 'join'; concurrency: number; count?: number }
  /** Members whose grant named no originator (they joined before their leaf had one) fetch the state, as a client would. */
  | { op: 'catch-up' }
  /** 'idle': drop; 'warm': every member takes every datagram at once (warm-up); 'record': stamp and keep for 'held'. */
  | { op: 'mode'; mode: Mode }
  | { op: 'subgroup-epochs' }
  /** Feeds what was recorded to every member and reports who holds `epoch`, and when. */
  | { op: 'held'; epoch: number }
  | { op: 'raw'; on: boolean }
  | { op: 'exit' };

type Mode = 'idle' | 'warm' | 'record';

export interface HeldReport {
  /** When each member that holds `epoch` would have had it on its own CPU: arrival + its own processing (wall ms). */
  times: number[];
  /** The same, with this leaf's members taking each datagram one after the other on one core (wall ms). */
  serial: number[];
  missing: number;
  /** When the first datagram carrying it arrived at this leaf's socket (wall ms). */
  arrival: number;
  /** Members' processing of one datagram (µs), median. */
  procMedianUs: number;
  /** What members dropped or refused since the last report, by cause. */
  dropped: Record<string, number>;
}

class Harness {
  private members: { m: Member; keys: MemberKeys; held: Map<number, number> }[] = [];
  private clients: LoadMember[] = [];
  private sock: Socket | undefined;
  private mode: Mode = 'idle';
  private rawMode = false;
  private readonly rawArrivals: number[] = [];
  private recorded: { at: number; bytes: Uint8Array }[] = [];
  private dropped: Record<string, number> = {};

  constructor(private readonly init: Extract<HarnessRequest, { op: 'init' }>) {}

  private cursor = 0;
  private groupAddr: { address: string; port: number } | undefined;

  async join(concurrency: number, count = Infinity): Promise<{ joined: number; failed: string[]; wallMs: number }> {
    const { group, url, ca, pairs, names } = this.init;
    const target = new URL(url);
    const path = `/v1/groups/${encodeURIComponent(group)}/join`;
    const failed: string[] = [];
    if (this.members.length === 0) {
      this.members = pairs.map(() => {
        const m = new Member(group, systemClock);
        return { m, keys: new MemberKeys(m), held: new Map<number, number>() };
      });
      this.clients = pairs.map((p, i) => loadMembers(ca, [p], [names[i]!])[0]!);
    }
    const end = Math.min(pairs.length, this.cursor + count);
    const first = this.cursor;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (this.cursor < end) {
        const i = this.cursor++;
        try {
          const o = await request(this.clients[i]!, target, group, 'full', 'POST', path, { group, role: 'member' });
          if (o.status !== 200) throw new Error(o.error ?? `HTTP ${o.status}: ${o.body.slice(0, 200)}`);
          const grant = JoinGrant.parse(JSON.parse(o.body));
          const x = this.members[i]!;
          x.m.acceptGrant(grant);
          x.keys.onGrant(grant);
          if (grant.transport.kind === 'multicast') this.groupAddr ??= { address: grant.transport.address, port: grant.transport.port };
        } catch (err) {
          failed.push(`${names[i]}: ${(err as Error).message}`);
        } finally {
          hangUp(this.clients[i]!);
        }
      }
    }));
    if (!this.groupAddr) throw new Error('no member joined a multicast subgroup');
    if (!this.sock) await this.open(this.groupAddr);
    return { joined: end - first - failed.length, failed: failed.slice(0, 5), wallMs: performance.now() - t0 };
  }

  async catchUp(): Promise<number> {
    const { group, url } = this.init;
    const target = new URL(url);
    let n = 0;
    for (const [i, x] of this.members.entries()) {
      if (!x.m.isJoined || x.keys.ring.originatorKeys.length > 0) continue;
      const o = await request(this.clients[i]!, target, group, 'full', 'GET', `/v1/groups/${encodeURIComponent(group)}/state?memberId=${x.m.memberId}`);
      hangUp(this.clients[i]!);
      if (o.status !== 200) throw new Error(`catch-up of member ${x.m.memberId}: HTTP ${o.status} ${o.body.slice(0, 200)}`);
      const state = CatchUpResponse.parse(JSON.parse(o.body));
      x.m.applyCatchUp(state);
      x.keys.onCatchUp(state);
      n++;
    }
    return n;
  }

  private async open(g: { address: string; port: number }): Promise<void> {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(g.port, g.address, () => resolve());
    });
    s.addMembership(g.address, '127.0.0.1');
    s.setRecvBufferSize(16 * 1024 * 1024);
    s.on('message', (msg) => this.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length)));
    this.sock = s;
  }

  private onDatagram(bytes: Uint8Array): void {
    const arrived = wallMs();
    if (this.rawMode) this.rawArrivals.push(arrived);
    else if (this.mode === 'record') this.recorded.push({ at: arrived, bytes: new Uint8Array(bytes) });
    else if (this.mode === 'warm') this.warm(bytes);
  }

  /**
   * Warm-up, at once: a part of a leave-scheme update goes only to the members it has an entry
   * for (each would skip the others' parts anyway; 2,500 members × 3 parts of 64 KB is minutes
   * of CPU here), everything else to every member.
   */
  private warm(bytes: Uint8Array): void {
    let only: ((memberId: number) => boolean) | undefined;
    try {
      const m = decodeMessage(bytes);
      if (m.type === MessageType.LeaveKeyUpdate) only = (id) => findLeaveEntry(m.body, id) !== undefined;
    } catch {
      /* the members will drop it */
    }
    for (const x of this.members) if (!only || only(x.m.memberId)) this.take(x, bytes);
  }

  /** One member takes one datagram; true when it newly holds an epoch. */
  private take(x: Harness['members'][number], bytes: Uint8Array, at = wallMs()): number | undefined {
    let fresh: number | undefined;
    for (const e of x.m.receive(bytes)) {
      if (e.type === 'dropped' || e.type === 'catch-up' || e.type === 'removed') {
        const k = e.type === 'dropped' ? e.cause : e.type === 'catch-up' ? `catch-up:${e.why}` : 'removed';
        this.dropped[k] = (this.dropped[k] ?? 0) + 1;
      }
      if (e.type !== 'data' || e.contentType !== ContentType.GroupKey || !e.payload) continue;
      const v = x.keys.onAnnouncement(e.payload);
      if (!v.ok) this.dropped[`ring-${v.cause}`] = (this.dropped[`ring-${v.cause}`] ?? 0) + 1;
      else if (v.fresh) {
        x.held.set(v.epoch, at);
        fresh = v.epoch;
      }
    }
    return fresh;
  }

  setMode(mode: Mode): void {
    this.mode = mode;
    if (mode === 'record') this.recorded = [];
  }

  subgroupEpochs(): number[] {
    return this.members.map((x) => x.m.epoch);
  }

  /**
   * Feeds the recorded datagrams, in arrival order, to every member, timing each one's
   * processing: on its own CPU a member starts a datagram at max(arrival, its previous
   * datagram's end); in series, every member of the leaf waits for the ones before it.
   */
  held(epoch: number): HeldReport {
    const times: number[] = [];
    const serial: number[] = [];
    const procs: number[] = [];
    let missing = 0;
    const busy = new Array<number>(this.recorded.length).fill(0);
    for (const x of this.members) {
      let free = -Infinity;
      let done: number | undefined;
      let doneSerial: number | undefined;
      for (const [k, d] of this.recorded.entries()) {
        const t = performance.now();
        const fresh = this.take(x, d.bytes, d.at);
        const dt = performance.now() - t;
        procs.push(dt * 1000);
        free = Math.max(d.at, free) + dt;
        busy[k]! += dt;
        if (fresh === epoch && done === undefined) {
          done = free;
          doneSerial = d.at + busy[k]!; // after every member before it took this datagram
        }
      }
      if (done === undefined) missing++;
      else {
        times.push(done);
        serial.push(doneSerial!);
      }
    }
    procs.sort((a, b) => a - b);
    const dropped = this.dropped;
    this.dropped = {};
    const first = this.recorded.find((d) => this.members.some((x) => x.held.get(epoch) === d.at));
    this.recorded = [];
    return { times, serial, missing, arrival: first?.at ?? NaN, procMedianUs: procs[Math.floor(procs.length / 2)] ?? NaN, dropped };
  }

  raw(on: boolean): number[] {
    this.rawMode = on;
    return this.rawArrivals.splice(0);
  }

  close(): void {
    this.sock?.close();
  }
}

function harnessMain(): void {
  let h: Harness | undefined;
  process.on('message', (msg: { id: number; req: HarnessRequest }) => {
    const { id, req } = msg;
    (async () => {
      if (req.op === 'init') {
        h = new Harness(req);
        return null;
      }
      if (req.op === 'exit') {
        h?.close();
        setTimeout(() => process.exit(0), 20);
        return null;
      }
      if (!h) throw new Error('not initialized');
      switch (req.op) {
        case 'join': return h.join(req.concurrency, req.count);
        case 'catch-up': return h.catchUp();
        case 'mode': return h.setMode(req.mode);
        case 'subgroup-epochs': return h.subgroupEpochs();
        case 'held': return h.held(req.epoch);
        case 'raw': return h.raw(req.on);
      }
    })().then((result) => process.send!({ id, result }), (err: unknown) => process.send!({ id, error: (err as Error).stack ?? String(err) }));
  });
}

if (process.send && process.argv.includes(HARNESS_FLAG)) harnessMain();

class HarnessProcess {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [HARNESS_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    this.child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`rollover harness exited (${String(code)})`));
      this.pending.clear();
    });
  }

  call<T>(req: HarnessRequest, timeoutMs = 240_000): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`rollover harness: ${req.op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.child.send({ id, req });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call({ op: 'exit' }, 3000).catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

const Health = z.object({ members: z.number(), groupEpoch: z.number(), parent: z.object({ state: z.string() }).optional() });
const RekeyAnswer = z.object({ epoch: z.number() });

interface Tree {
  ctl: KeydProcess;
  all: KeydProcess[];
  leaves: KeydProcess[];
  groups: { address: string; port: number }[];
  admin: Map<KeydProcess, ControlClient>;
}

async function startTree(pki: Awaited<ReturnType<typeof benchPki>>, dir: string): Promise<Tree> {
  const b = randomInt(1, 250);
  const portBase = 41_000 + randomInt(0, 18_000);
  const made: KeydProcess[] = [];
  const leaves: KeydProcess[] = [];
  const groups: { address: string; port: number }[] = [];
  const admin = new Map<KeydProcess, ControlClient>();
  const start = async (name: string, role: 'controller' | 'intermediary', level: number, i: number, parent?: string) => {
    const group = { address: `239.79.${b}.${i + 1}`, port: portBase + i };
    const d = await startKeyd({
      dir, name, ca: pki.ca.cert, pair: pki.principals[name]!,
      config: {
        group: BENCH_GROUP,
        agent: { name, role, level },
        ...(parent ? { parent: { url: parent } } : {}),
        listen: { host: '127.0.0.1', port: 0 },
        subgroup: { transport: { kind: 'multicast', address: group.address, port: group.port, interface: '127.0.0.1' }, membershipTtl: '10m' },
        acl: [{ principal: 'i*', roles: ['intermediary'] }, { principal: 'm*', roles: ['member'] }],
        // The default lead and grace; a short period so that a few rolls fit in the run.
        ...(role === 'controller' ? { groupKey: { period: `${PERIOD_MS}ms` } } : {}),
        state: { dir: `${dir}/state-${name}` },
        log: { level: 'info' },
      },
    });
    made.push(d);
    admin.set(d, new ControlClient({ url: d.url, group: BENCH_GROUP, tls: { ca: pki.ca.cert, ...pki.principals.admin! } }));
    return { d, group };
  };
  const ctl = await start(AGENT_NAMES.controller, 'controller', 0, 0);
  const l1 = [];
  for (const [i, name] of AGENT_NAMES.level1.entries()) l1.push(await start(name, 'intermediary', 1, 1 + i, ctl.d.url));
  for (const [i, name] of AGENT_NAMES.level2.entries()) {
    const leaf = await start(name, 'intermediary', 2, 3 + i, l1[i >> 1]!.d.url);
    leaves.push(leaf.d);
    groups.push(leaf.group);
  }
  return { ctl: ctl.d, all: made, leaves, groups, admin };
}

async function waitAttached(tree: Tree, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const states = await Promise.all(tree.all.map((d) => tree.admin.get(d)!.call('GET', '/healthz', undefined, Health).catch(() => undefined)));
    if (states.every((s) => s && (s.parent === undefined || s.parent.state === 'attached'))) return true;
    await sleep(200);
  }
  return false;
}

interface Created {
  epoch: number;
  notBefore: number;
  notAfter: number;
  reason: string;
  /** When the controller logged it: the first announcement leaves in the same tick. */
  t: number;
}

/** The controller's 'group key created' lines (pino JSON in its log file). */
function created(ctl: KeydProcess): Created[] {
  const out: Created[] = [];
  for (const line of readFileSync(ctl.logPath, 'utf8').split('\n')) {
    if (!line.includes('"event":"group-key"')) continue;
    try {
      const o = JSON.parse(line) as { epoch: number; notBefore: string; notAfter: string; reason: string; time: string | number };
      out.push({ epoch: o.epoch, notBefore: Date.parse(o.notBefore), notAfter: Date.parse(o.notAfter), reason: o.reason, t: typeof o.time === 'number' ? o.time : Date.parse(o.time) });
    } catch {
      /* partial line */
    }
  }
  return out;
}

interface Roll {
  epoch: number;
  t0: number;
  notBefore: number;
  /** ms after t0: first arrival at each leaf; each member's completion on its own CPU, and in series. */
  arrivals: number[];
  completions: number[];
  serial: number[];
  missing: number;
  procUs: number[];
  dropped: Record<string, number>;
  missingByLeaf: number[];
}

/** How long the harnesses record after the announcement (the first repeat comes lead/4 later). */
const RECORD_AFTER_MS = 3_000;

async function measureRoll(tree: Tree, hs: HarnessProcess[]): Promise<Roll> {
  // The schedule: the next epoch is made `lead` before the newest one ends.
  const newest = created(tree.ctl).reduce((a, b) => (b.epoch > a.epoch ? b : a));
  let due = newest.notAfter - LEAD_MS;
  if (due - Date.now() < 1_500) due += PERIOD_MS; // too close to start recording before it: the one after
  await sleep(Math.max(0, due - 1_000 - Date.now()));
  await Promise.all(hs.map((h) => h.call({ op: 'mode', mode: 'record' })));
  const e = await (async () => {
    const deadline = due + 10_000;
    for (;;) {
      const c = created(tree.ctl).find((x) => x.epoch > newest.epoch && x.reason === 'period' && x.t >= due - 1_000);
      if (c) return c;
      if (Date.now() > deadline) throw new Error(`no new epoch from the controller by ${new Date(deadline).toISOString()}`);
      await sleep(100);
    }
  })();
  await sleep(Math.max(0, e.t + RECORD_AFTER_MS - Date.now()));
  await Promise.all(hs.map((h) => h.call({ op: 'mode', mode: 'idle' })));
  const reports = await Promise.all(hs.map((h) => h.call<HeldReport>({ op: 'held', epoch: e.epoch })));
  return {
    epoch: e.epoch, t0: e.t, notBefore: e.notBefore,
    arrivals: reports.map((r) => r.arrival - e.t),
    completions: reports.flatMap((r) => r.times.map((t) => t - e.t)),
    serial: reports.flatMap((r) => r.serial.map((t) => t - e.t)),
    missing: reports.reduce((n, r) => n + r.missing, 0),
    procUs: reports.map((r) => r.procMedianUs),
    dropped: reports.reduce<Record<string, number>>((acc, r) => {
      for (const [k, n] of Object.entries(r.dropped)) acc[k] = (acc[k] ?? 0) + n;
      return acc;
    }, {}),
    missingByLeaf: reports.map((r) => r.missing),
  };
}

/** One datagram of `size` bytes multicast straight to every leaf group; arrival at the harness sockets (ms after sending). */
async function rawMulticast(tree: Tree, hs: HarnessProcess[], size: number): Promise<number> {
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  tx.setMulticastInterface('127.0.0.1');
  await Promise.all(hs.map((h) => h.call({ op: 'raw', on: true })));
  const t0 = wallMs();
  for (const g of tree.groups) tx.send(Buffer.alloc(size, 1), g.port, g.address);
  await sleep(300);
  const arrivals = await Promise.all(hs.map((h) => h.call<number[]>({ op: 'raw', on: false })));
  tx.close();
  if (arrivals.some((a) => a.length < 1)) return Infinity;
  return Math.max(...arrivals.flat().map((a) => a - t0));
}

export async function run(): Promise<void> {
  const pki = await benchPki(MEMBERS, log);
  const dir = runDir('rollover');
  const load0 = loadAverage();
  const notes: string[] = [];
  let tree: Tree | undefined;
  const hs: HarnessProcess[] = [];
  const started = Date.now();
  try {
    tree = await startTree(pki, dir);
    log(`tree of ${tree.all.length} keyd processes up (logs in ${dir})`);
    for (let i = 0; i < LEAVES; i++) hs.push(new HarnessProcess());
    await Promise.all(hs.map((h, i) => h.call({
      op: 'init', group: BENCH_GROUP, url: tree!.leaves[i]!.url, ca: pki.ca.cert,
      names: Array.from({ length: PER_LEAF }, (_, k) => memberName(i * PER_LEAF + k)),
      pairs: pki.members.slice(i * PER_LEAF, (i + 1) * PER_LEAF),
    })));
    // One member per leaf first: an intermediary joins its parent when its first member comes.
    type JoinAnswer = { joined: number; failed: string[]; wallMs: number };
    const firsts = await Promise.all(hs.map((h) => h.call<JoinAnswer>({ op: 'join', concurrency: 1, count: 1 })));
    if (!(await waitAttached(tree, 20_000))) notes.push('not every intermediary was attached to its parent 20 s after the first joins');
    const tj = Date.now();
    const cpu0 = { daemons: tree.all.reduce((n, d) => n + d.cpuMs(), 0), harnesses: hs.reduce((n, h) => n + procCpuMs(h.child.pid!), 0) };
    const joins = await Promise.all(hs.map((h) => h.call<JoinAnswer>({ op: 'join', concurrency: 16 })));
    const joinCpu = { daemons: tree.all.reduce((n, d) => n + d.cpuMs(), 0) - cpu0.daemons, harnesses: hs.reduce((n, h) => n + procCpuMs(h.child.pid!), 0) - cpu0.harnesses };
    const joined = joins.reduce((n, j) => n + j.joined, 0) + firsts.reduce((n, j) => n + j.joined, 0);
    const joinSeconds = (Date.now() - tj) / 1000;
    log(`${joined} members joined in ${joinSeconds.toFixed(1)} s; CPU per join: daemons ${(joinCpu.daemons / joined).toFixed(1)} ms, members ${(joinCpu.harnesses / joined).toFixed(1)} ms`);
    for (const j of [...firsts, ...joins]) if (j.failed.length) notes.push(`join failures: ${j.failed.join('; ')}`);
    const caught = (await Promise.all(hs.map((h) => h.call<number>({ op: 'catch-up' })))).reduce((n, k) => n + k, 0);
    log(`${caught} members that joined before their leaf knew the originator fetched the state`);

    // The members ignored the join rekeys while joining: one leave-scheme rekey of each leaf
    // brings every member to the current subgroup key; from then on they take every datagram.
    await Promise.all(hs.map((h) => h.call({ op: 'mode', mode: 'warm' })));
    const rekeys = await Promise.all(tree.leaves.map((d) => tree!.admin.get(d)!.call('POST', '/v1/admin/rekey', undefined, RekeyAnswer)));
    const ready = await (async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const epochs = await Promise.all(hs.map((h) => h.call<number[]>({ op: 'subgroup-epochs' })));
        const behind = epochs.reduce((n, list, i) => n + list.filter((e) => e < rekeys[i]!.epoch).length, 0);
        if (behind === 0 || Date.now() > deadline) return MEMBERS - behind;
        await sleep(500);
      }
    })();
    log(`warm-up rekey: ${ready} of ${MEMBERS} members hold their leaf's current subgroup key`);
    await Promise.all(hs.map((h) => h.call({ op: 'mode', mode: 'idle' })));

    const rolls: Roll[] = [];
    for (let k = 0; k < ROLLS; k++) {
      const r = await measureRoll(tree, hs);
      rolls.push(r);
      const last = r.missing > 0 ? Infinity : Math.max(...r.completions);
      const lastSerial = r.missing > 0 ? Infinity : Math.max(...r.serial);
      log(`epoch ${r.epoch}: leaves reached after ${r.arrivals.map((a) => a.toFixed(0)).join('/')} ms; last member after ${last.toFixed(0)} ms (in series: ${lastSerial.toFixed(0)} ms); ${((r.notBefore - r.t0 - last) / 1000).toFixed(2)} s before activation; missing ${r.missing} (${r.missingByLeaf.join('/')}); member drops ${JSON.stringify(r.dropped)}`);
    }
    const baseline: number[] = [];
    for (let k = 0; k < 5; k++) baseline.push(await rawMulticast(tree, hs, 260));

    const lastOf = (r: Roll) => (r.missing > 0 ? Infinity : Math.max(...r.completions));
    const lastSerialOf = (r: Roll) => (r.missing > 0 ? Infinity : Math.max(...r.serial));
    const rows: BenchRow[] = rolls.map((r, i) => ({
      case: `roll ${i + 1} (epoch ${r.epoch}): originator's announcement → ${MEMBERS.toLocaleString('en-US')} members`,
      figures: {
        members: r.completions.length + r.missing,
        missing: r.missing,
        'leaves reached (max) ms': Math.max(...r.arrivals),
        'member p50 ms': median(r.completions),
        'member p99 ms': percentile(r.completions, 99),
        'last member ms': lastOf(r),
        'held before activation s': (r.notBefore - r.t0 - lastOf(r)) / 1000,
        'last member, leaf in series ms': lastSerialOf(r),
        'in series: before activation s': (r.notBefore - r.t0 - lastSerialOf(r)) / 1000,
        'member µs/datagram': median(r.procUs),
      },
    }));
    rows.push({ case: 'baseline: one 260 B datagram multicast straight to the 4 leaf groups\' sockets', figures: { trials: baseline.length, 'leaves reached (max) ms': median(baseline), 'p99 ms': percentile(baseline, 99) } });
    rows.push({ case: `setup: ${MEMBERS.toLocaleString('en-US')} joins over mTLS (full handshakes) to ${LEAVES} leaf daemons, 16 in flight per daemon`, figures: { members: joined, 'joins/s': (joined - LEAVES) / joinSeconds } });

    const worstMargin = Math.min(...rolls.map((r) => r.notBefore - r.t0 - lastOf(r)));
    const worstLast = Math.max(...rolls.map(lastOf));
    const worstSerialMargin = Math.min(...rolls.map((r) => r.notBefore - r.t0 - lastSerialOf(r)));
    notes.push(
      `Config: period ${PERIOD_MS / 1000} s (short, so that ${ROLLS} rolls fit in the run), lead and grace at their defaults (10 s), 3 repeats, method 1; membershipTtl 10 min (no refreshes during the run); log level info everywhere; ledgers (SQLite, WAL, synchronous=FULL) in the run directory. Each agent's sweep and ledger write for the fresh epoch happen before it passes the key on, so they are inside these times.`,
      `Timing: t0 is the time of the controller's "group key created" log line (the first announcement leaves in the same tick). Around each roll (from 1 s before the announcement to ${RECORD_AFTER_MS / 1000} s after) each harness only stamps datagrams as they arrive at its leaf's socket (wall clock, shared by all processes); then it feeds them in order to each of its ${PER_LEAF.toLocaleString('en-US')} Member state machines and MemberKeys rings, timing each one. "last member" is computed as if each member had its own CPU (arrival + its own processing, chained over the datagrams); "leaf in series" as if the ${PER_LEAF.toLocaleString('en-US')} members of a leaf took the announcement one after the other on one core (arrival + everyone's processing up to and including theirs): an upper bound.`,
      `Between rolls the members take nothing (as after a loss; the next announcement is all they need). Before the first roll, one leave-scheme rekey of every leaf brings every member to its leaf's current subgroup key; its 64 KB parts go only to the members they have an entry for (each member would skip the others' parts). Members that joined before their leaf knew the originator fetched the state over mTLS, as GroupClient does on an unknown originator.`,
      `Run took ${((Date.now() - started) / 1000).toFixed(0)} s; machine load average before: ${load0}; after: ${loadAverage()} (1, 5, 15 min) on 2 CPUs shared with other work; ${tree.all.length} keyd processes and ${LEAVES} harness processes share them.`,
    );
    writeReport({
      name: 'rollover',
      description: `Time from the originator's KGRP2 announcement (the controller, on its timer, lead 10 s before activation) to the last of ${MEMBERS.toLocaleString('en-US')} members of a 3-level keyd tree (controller, 2 + 4 intermediaries, ${PER_LEAF.toLocaleString('en-US')} members under each leaf) holding the next key, multicast on loopback, every agent and each leaf's members in their own process; vs a datagram multicast straight to the leaves (same run).`,
      rows,
      targets: [{
        target: `every member holds the next key at least lead/2 (${LEAD_MS / 2000} s) before activation, default lead ${LEAD_MS / 1000} s`,
        met: worstMargin >= LEAD_MS / 2 && rolls.every((r) => r.missing === 0),
        detail: `worst of ${ROLLS} rolls: last member after ${worstLast.toFixed(0)} ms, ${(worstMargin / 1000).toFixed(2)} s before activation; ${rolls.reduce((n, r) => n + r.missing, 0)} member-rolls missing`,
      }, {
        target: `the same with each leaf's ${PER_LEAF.toLocaleString('en-US')} members processing in series on one core (upper bound)`,
        met: worstSerialMargin >= LEAD_MS / 2 && rolls.every((r) => r.missing === 0),
        detail: `worst: ${(worstSerialMargin / 1000).toFixed(2)} s before activation`,
      }],
      notes,
    });
  } finally {
    await Promise.all(hs.map((h) => h.stop()));
    if (tree) {
      for (const c of tree.admin.values()) c.close();
      for (const d of [...tree.all].reverse()) await d.stop();
    }
  }
}
