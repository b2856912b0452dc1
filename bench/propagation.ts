/**
 * `propagation`: how long a subgroup key update and a data message take to reach every member
 * of a 3-level tree of 10,000 members spread over processes (issue 3; target p99 < 250 ms),
 * and the daemon's memory per member (target < 2 KiB).
 *
 * Tree: a controller (level 0), two intermediaries (level 1), four intermediaries (level 2),
 * each a separate `iolus keyd` process with a UDP multicast subgroup on 127.0.0.1; 2,500
 * members under each level-2 agent, held by one member-harness process per leaf subgroup
 * (memberHarness.ts: real ControlClient joins, one certificate each; real Member state
 * machines; completion times modelled as if each member had its own CPU). Baselines in the
 * same run: the same datagrams as plain multicast to the same sockets, and plain UDP unicast
 * fan-out from one sender to as many receivers.
 */
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { ControlClient } from '../src/client/controlClient.js';
import { AGENT_NAMES, BENCH_GROUP, benchPki, memberName, type BenchPki } from './lib/benchPki.js';
import { loadAverage, removeRunDir, revision, runDir, settledMem, startKeyd, type KeydProcess, type MemSample } from './lib/keydHarness.js';
import { hangUp, loadMembers, request } from './lib/mtlsLoad.js';
import { HarnessProcess, nowMs, type JoinReport, type ProcessReport } from './lib/memberHarness.js';
import { median, percentile, writeReport, type BenchRow } from './lib/report.js';

const PER_LEAF = Number(process.env.IOLUS_BENCH_PROPAGATION_PER_LEAF ?? 2500);
const LEAVES = AGENT_NAMES.level2.length;
const MEMBERS = PER_LEAF * LEAVES;
const TARGET_MS = 250;
/** Setup bound: members not joined this long after the join phase began stay out (and are reported). */
const JOIN_BUDGET_MS = 140_000;
const TARGET_BYTES = 2048;
/** How long a trial listens after its trigger (well above the target, so slow deliveries are seen). */
const WINDOW_MS = 600;
const DATA_PAYLOAD = 100;
const TRIALS = { oneLeaf: 8, allLeaves: 3, data: 10 };
/** Key trials feed every SAMPLE-th member (a different quarter each trial); the warm-up and data trials feed all. */
const SAMPLE = 8;

const Health = z.object({ members: z.number(), parent: z.object({ state: z.string() }).optional() });
const RekeyAnswer = z.object({ epoch: z.number() });

let started = Date.now();

function log(line: string): void {
  process.stdout.write(`propagation [${((Date.now() - started) / 1000).toFixed(0)} s]: ${line}\n`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Tree {
  all: KeydProcess[];
  leaves: KeydProcess[];
  groups: { address: string; port: number }[];
  admin: Map<KeydProcess, ControlClient>;
}

async function warmUp(pki: BenchPki, d: KeydProcess, from: number, n: number): Promise<void> {
  const url = new URL(d.url);
  const ms = loadMembers(pki.ca.cert, pki.members.slice(from, from + n), Array.from({ length: n }, (_, k) => memberName(from + k)));
  await Promise.all(ms.map(async (m) => {
    const o = await request(m, url, BENCH_GROUP, 'full', 'POST', `/v1/groups/${BENCH_GROUP}/join`, { group: BENCH_GROUP, role: 'member' });
    if (o.status !== 200) return;
    const { memberId } = JSON.parse(o.body) as { memberId: number };
    await request(m, url, BENCH_GROUP, 'keep-alive', 'POST', `/v1/groups/${BENCH_GROUP}/leave`, { memberId });
  }));
  for (const m of ms) hangUp(m);
}

/** Starts the tree's daemons into `tree` (so a failure half-way still leaves them to stop). */
async function startTree(pki: BenchPki, dir: string, tree: Tree): Promise<void> {
  const b = randomInt(1, 250);
  const portBase = 41_000 + randomInt(0, 18_000);
  const start = async (name: string, role: 'controller' | 'intermediary', level: number, i: number, parent?: string) => {
    const group = { address: `239.78.${b}.${i + 1}`, port: portBase + i };
    const d = await startKeyd({
      dir, name, ca: pki.ca.cert, pair: pki.principals[name]!,
      config: {
        group: BENCH_GROUP,
        agent: { name, role, level },
        ...(parent ? { parent: { url: parent } } : {}),
        listen: { host: '127.0.0.1', port: 0 },
        subgroup: { transport: { kind: 'multicast', address: group.address, port: group.port, interface: '127.0.0.1' }, membershipTtl: '10m' },
        acl: [{ principal: 'i*', roles: ['intermediary'] }, { principal: 'm*', roles: ['member'] }],
        log: { level: 'info' },
      },
    });
    tree.all.push(d);
    tree.admin.set(d, new ControlClient({ url: d.url, group: BENCH_GROUP, tls: { ca: pki.ca.cert, ...pki.principals.admin! } }));
    return { d, group };
  };
  const ctl = await start(AGENT_NAMES.controller, 'controller', 0, 0);
  const l1 = await Promise.all(AGENT_NAMES.level1.map((name, i) => start(name, 'intermediary', 1, 1 + i, ctl.d.url)));
  const l2 = await Promise.all(AGENT_NAMES.level2.map((name, i) => start(name, 'intermediary', 2, 3 + i, l1[i >> 1]!.d.url)));
  for (const leaf of l2) {
    tree.leaves.push(leaf.d);
    tree.groups.push(leaf.group);
  }
}

/** Waits until every intermediary is attached to its parent. */
async function waitAttached(tree: Tree, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const states = await Promise.all(tree.all.map((d) => tree.admin.get(d)!.call('GET', '/healthz', undefined, Health).catch(() => undefined)));
    if (states.every((s) => s && (s.parent === undefined || s.parent.state === 'attached'))) return true;
    await sleep(200);
  }
  return false;
}

interface Trial {
  latencies: number[];
  arrivedAt: number[];
  /** Sizes of the datagrams the first harness processed (the rekey's parts, heartbeats). */
  sizes: number[];
  toAll: number;
  missing: number;
  proc: number[];
  dropped: Record<string, number>;
  /** Members whose completion was computed. */
  checked: number;
  /** CPU time of the rekeying daemons during the trial (ms, 10 ms resolution). */
  daemonCpuMs?: number;
}

/** Runs `process` on every harness in `which`, two at a time (two cores), and merges the answers. */
async function processAll(hs: HarnessProcess[], which: number[], req: (i: number) => Parameters<HarnessProcess['call']>[0]): Promise<Trial> {
  const reports: ProcessReport[] = [];
  for (let k = 0; k < which.length; k += 2) {
    reports.push(...await Promise.all(which.slice(k, k + 2).map((i) => hs[i]!.call<ProcessReport>(req(i)))));
  }
  const latencies = reports.flatMap((r) => r.latencies);
  const dropped: Record<string, number> = {};
  for (const r of reports) for (const [c, n] of Object.entries(r.dropped)) dropped[c] = (dropped[c] ?? 0) + n;
  const missing = reports.reduce((n, r) => n + r.missing, 0);
  return {
    latencies, arrivedAt: reports.flatMap((r) => r.arrivedAt), sizes: reports[0]?.sizes ?? [],
    toAll: missing > 0 ? Infinity : Math.max(...latencies), missing, proc: reports.map((r) => r.procMedianUs), dropped,
    checked: latencies.length + missing,
  };
}

async function keyTrial(tree: Tree, hs: HarnessProcess[], leaves: number[], sample?: { stride: number; offset: number }): Promise<Trial> {
  await Promise.all(hs.map((h) => h.call({ op: 'arm' })));
  const cpu0 = leaves.map((i) => tree.leaves[i]!.cpuMs());
  const t0 = nowMs();
  const epochs = await Promise.all(leaves.map((i) => tree.admin.get(tree.leaves[i]!)!.call('POST', '/v1/admin/rekey', undefined, RekeyAnswer)));
  await sleep(WINDOW_MS);
  const daemonCpuMs = leaves.reduce((n, i, k) => n + tree.leaves[i]!.cpuMs() - cpu0[k]!, 0);
  await Promise.all(hs.map((h) => h.call({ op: 'disarm' })));
  const t = await processAll(hs, leaves, (i) => ({ op: 'process', want: { kind: 'key', epoch: epochs[leaves.indexOf(i)]!.epoch }, t0, ...sample }));
  return { ...t, daemonCpuMs };
}

async function dataTrial(hs: HarnessProcess[], sender: number, member: number, n: number): Promise<Trial> {
  await Promise.all(hs.map((h) => h.call({ op: 'arm' })));
  const tag = `bench-data-${n}-${randomInt(1e9)}`;
  const sent = await hs[sender]!.call<{ t0: number; member: number }>({ op: 'send', member, tag, size: DATA_PAYLOAD });
  await sleep(WINDOW_MS);
  await Promise.all(hs.map((h) => h.call({ op: 'disarm' })));
  return processAll(hs, hs.map((_, i) => i), (i) => ({ op: 'process', want: { kind: 'data', tag }, t0: sent.t0, ...(i === sender ? { except: sent.member } : {}) }));
}

/** Plain multicast of `sizes` to every leaf group, timestamped by the same harness sockets. */
async function rawMulticast(tree: Tree, hs: HarnessProcess[], sizes: number[]): Promise<number> {
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  tx.setMulticastInterface('127.0.0.1');
  await Promise.all(hs.map((h) => h.call({ op: 'arm' })));
  const t0 = nowMs();
  for (const g of tree.groups) for (const s of sizes) tx.send(Buffer.alloc(s, 1), g.port, g.address);
  await sleep(300);
  await Promise.all(hs.map((h) => h.call({ op: 'disarm' })));
  const arrivals = await Promise.all(hs.map((h) => h.call<number[]>({ op: 'arrivals', t0 })));
  tx.close();
  if (arrivals.some((a) => a.length < sizes.length)) return Infinity;
  return Math.max(...arrivals.flat());
}

/** Plain UDP unicast fan-out: one sender, `sizes` to each of `perHarness` sockets in each harness of `which`, `reps` times. */
async function rawFanout(hs: HarnessProcess[], which: number[], perHarness: number, sizes: number[], reps: number): Promise<number[]> {
  const ports = await Promise.all(which.map((i) => hs[i]!.call<number[]>({ op: 'raw-open', sockets: perHarness })));
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  tx.setSendBufferSize(8 * 1024 * 1024);
  const bufs = sizes.map((n) => Buffer.alloc(n, 2));
  const expected = perHarness * which.length * sizes.length;
  const out: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      await sleep(100);
      const t0 = nowMs();
      for (const list of ports) for (const p of list) for (const b of bufs) tx.send(b, p, '127.0.0.1');
      await sleep(Math.max(500, expected * 0.1));
      const arrivals = (await Promise.all(which.map((i) => hs[i]!.call<number[]>({ op: 'raw-arrivals', t0 })))).flat();
      out.push(arrivals.length < expected ? Infinity : Math.max(...arrivals)); // ∞: datagrams lost
    }
  } finally {
    await Promise.all(which.map((i) => hs[i]!.call({ op: 'raw-close' })));
    tx.close();
  }
  return out;
}

function latencyRow(label: string, trials: Trial[], members: number): BenchRow {
  const lat = trials.flatMap((t) => t.latencies);
  const toAll = trials.map((t) => t.toAll);
  return {
    case: label,
    figures: {
      members,
      trials: trials.length,
      'member p50 ms': percentile(lat, 50),
      'member p99 ms': percentile(lat, 99),
      'arrival p99 ms': percentile(trials.flatMap((t) => t.arrivedAt), 99),
      'to-all p50 ms': median(toAll),
      'to-all p99 ms': percentile(toAll, 99),
      'members checked/trial': median(trials.map((t) => t.checked)),
      missing: trials.reduce((n, t) => n + t.missing, 0),
      'member µs/datagram': median(trials.flatMap((t) => t.proc)),
      ...(trials[0]?.daemonCpuMs !== undefined ? { 'rekeying daemons CPU ms': median(trials.map((t) => t.daemonCpuMs!)) } : {}),
    },
  };
}

/** Growth of the leaf daemons from 0 members to `members` (connections closed), per member. */
function memRow(base: MemSample[], after: MemSample[], members: number, fds: string): BenchRow {
  const per = (k: keyof MemSample) => after.reduce((n, m, i) => n + (m[k] - base[i]![k]), 0) / members;
  return {
    case: `daemon memory per member: ${LEAVES} leaf daemons from 0 to ${members} members, after the members closed their connections (open fds ${fds})`,
    figures: { members, 'RSS B/member': per('rss'), 'heapUsed B/member': per('heapUsed'), 'of which code B/member': per('code'), 'external B/member': per('external') },
  };
}

export async function run(): Promise<void> {
  started = Date.now();
  const pki = await benchPki(MEMBERS, log);
  const dir = runDir('propagation');
  const load0 = loadAverage();
  const notes: string[] = [];
  const tree: Tree = { all: [], leaves: [], groups: [], admin: new Map() };
  const hs: HarnessProcess[] = [];
  try {
    await startTree(pki, dir, tree);
    log(`tree of ${tree.all.length} keyd processes up (logs in ${dir}, kept if the run fails or IOLUS_BENCH_KEEP=1)`);
    // Warm each leaf's TLS, HTTP, join and leave paths with 100 principals of another leaf that join
    // and leave: one-time allocations (compiled code, pools) belong to the baseline, not to members.
    await Promise.all(tree.leaves.map((d, i) => warmUp(pki, d, ((i + 1) % LEAVES) * PER_LEAF, 100)));
    await sleep(1000);
    const base = await Promise.all(tree.leaves.map((d) => settledMem(d)));
    const snapshots = process.env.IOLUS_BENCH_HEAP_SNAPSHOTS; // a directory: heap snapshots of the first leaf, for investigating
    if (snapshots) await tree.leaves[0]!.snapshot(`${snapshots}/leaf-base.heapsnapshot`);
    const fdsBase = tree.leaves.map((d) => d.fds());
    for (let i = 0; i < LEAVES; i++) hs.push(await HarnessProcess.start());
    await Promise.all(hs.map((h, i) => h.call({
      op: 'init', group: BENCH_GROUP, url: tree.leaves[i]!.url, ca: pki.ca.cert,
      names: Array.from({ length: PER_LEAF }, (_, k) => memberName(i * PER_LEAF + k)),
      pairs: pki.members.slice(i * PER_LEAF, (i + 1) * PER_LEAF),
    })));
    const tj = nowMs();
    const joins = await Promise.all(hs.map((h) => h.call<JoinReport>({ op: 'join', concurrency: 16, deadline: tj + JOIN_BUDGET_MS })));
    const joinWall = nowMs() - tj;
    const joined = joins.reduce((n, j) => n + j.joined, 0);
    log(`${joined} members joined in ${(joinWall / 1000).toFixed(1)} s`);
    for (const j of joins) if (j.failed.length) notes.push(`join failures: ${j.failed.join('; ')}`);
    const skipped = joins.reduce((n, j) => n + j.skipped, 0);
    if (skipped > 0) notes.push(`${skipped} members were not joined: the join phase ran past its ${JOIN_BUDGET_MS / 1000} s budget; trials use the ${joined} that joined.`);
    if (!(await waitAttached(tree, 15_000))) notes.push('not every intermediary was attached to its parent 15 s after the joins');
    const fdsOpen = tree.leaves.map((d) => d.fds());
    await Promise.all(hs.map((h) => h.call({ op: 'hang-up' })));
    await sleep(3000);
    const closed = await Promise.all(tree.leaves.map((d) => settledMem(d)));
    if (snapshots) await tree.leaves[0]!.snapshot(`${snapshots}/leaf-members.heapsnapshot`);
    const fdsNote = `${fdsBase.join('/')} with 0 members, ${fdsOpen.join('/')} after the joins, ${tree.leaves.map((d) => d.fds()).join('/')} when measured`;

    // Warm-up: the members ignored the join rekeys; one leave-scheme rekey brings every one to the current key.
    log('warm-up rekey');
    const warm = await keyTrial(tree, hs, [0, 1, 2, 3]);
    notes.push(`Warm-up rekey of all ${LEAVES} leaves, every member fed: ${warm.checked - warm.missing} of ${warm.checked} members got the key, the last after ${warm.toAll.toFixed(0)} ms${warm.missing > 0 ? ` (dropped: ${JSON.stringify(warm.dropped)})` : ''}.`);
    // Data first, while every member holds the current key (sampled key trials leave some behind).
    const data: Trial[] = [];
    for (let k = 0; k < TRIALS.data; k++) data.push(await dataTrial(hs, k % LEAVES, (k * 389) % PER_LEAF, k));
    log(`data: to-all ${data.map((t) => t.toAll.toFixed(0)).join(', ')} ms`);
    const oneLeaf: Trial[] = [];
    for (let k = 0; k < TRIALS.oneLeaf; k++) oneLeaf.push(await keyTrial(tree, hs, [k % LEAVES], { stride: SAMPLE, offset: Math.floor(k / LEAVES) % SAMPLE }));
    log(`one-leaf rekeys: to-all ${oneLeaf.map((t) => t.toAll.toFixed(0)).join(', ')} ms`);
    const allLeaves: Trial[] = [];
    for (let k = 0; k < TRIALS.allLeaves; k++) allLeaves.push(await keyTrial(tree, hs, [0, 1, 2, 3], { stride: SAMPLE, offset: (k + 2) % SAMPLE }));
    log(`all-leaf rekeys: to-all ${allLeaves.map((t) => t.toAll.toFixed(0)).join(', ')} ms`);

    log('baselines');
    // The baselines send datagrams of the sizes the trials carried: the rekey's parts and the data message.
    const rekeySizes = oneLeaf[0]!.sizes.filter((n) => n > 1000);
    const dataSize = Math.max(...data[0]!.sizes);
    const repeat = async (n: number, f: () => Promise<number>) => {
      const out: number[] = [];
      for (let k = 0; k < n; k++) out.push(await f());
      return out;
    };
    const rawMcKey = await repeat(5, () => rawMulticast(tree, hs, rekeySizes));
    const rawMcData = await repeat(5, () => rawMulticast(tree, hs, [dataSize]));
    const rawFanData = await rawFanout(hs, [0, 1, 2, 3], PER_LEAF, [dataSize], 3);
    const rawFanKey = await rawFanout(hs, [0], PER_LEAF, rekeySizes, 2);
    const rawRow = (label: string, sockets: number | undefined, v: number[]): BenchRow => ({ case: label, figures: { ...(sockets ? { members: sockets } : {}), trials: v.length, 'to-all p50 ms': median(v), 'to-all p99 ms': percentile(v, 99) } });

    const joinLat = joins.flatMap((j) => j.latenciesMs);
    log('done');
    const rows: BenchRow[] = [
      latencyRow(`subgroup key update (admin rekey, leave scheme), one leaf subgroup`, oneLeaf, Math.round(joined / LEAVES)),
      latencyRow(`subgroup key update, all ${LEAVES} leaf subgroups at once`, allLeaves, joined),
      latencyRow('data message (method 1, 100 B) from a leaf member to every other member (5 agents on the path)', data, joined - 1),
      rawRow(`baseline: raw multicast of the rekey's datagrams (${rekeySizes.join(' + ')} B) to the ${LEAVES} leaf groups (the harnesses' sockets)`, undefined, rawMcKey),
      rawRow(`baseline: raw multicast of one ${dataSize} B datagram (the data message's size) to the ${LEAVES} leaf groups`, undefined, rawMcData),
      rawRow(`baseline: raw UDP unicast fan-out from one socket, one ${dataSize} B datagram to each of ${MEMBERS} sockets`, MEMBERS, rawFanData),
      rawRow(`baseline: raw UDP unicast fan-out from one socket, the rekey's datagrams to each of ${PER_LEAF} sockets`, PER_LEAF, rawFanKey),
      { case: `setup: ${joined} of ${MEMBERS} joins over mTLS (full handshakes, one connection and certificate each) to ${LEAVES} leaf daemons, 16 in flight per daemon`, figures: { members: joined, 'joins/s': (joined / joinWall) * 1000, 'join p50 ms': percentile(joinLat, 50), 'join p99 ms': percentile(joinLat, 99) } },
    ];
    const mem = memRow(base, closed, joined, fdsNote);
    const perLeaf = closed.map((m, i) => ((m.heapUsed - m.code + m.external - (base[i]!.heapUsed - base[i]!.code + base[i]!.external)) / (joins[i]!.joined || 1)).toFixed(0));
    notes.push(`Member state by leaf (heapUsed without code, plus external, per member): ${perLeaf.join(', ')} B.`);
    rows.push(mem);

    const worst = (ts: Trial[]) => percentile(ts.map((t) => t.toAll), 99);
    const w1 = worst(oneLeaf);
    const w4 = worst(allLeaves);
    const wd = worst(data);
    const f = mem.figures as Record<string, number>;
    const stateBytes = f['heapUsed B/member']! - f['of which code B/member']! + f['external B/member']!;
    // A target is about the full tree: with fewer members joined (setup budget) it is not met, whatever the figures.
    const full = joined === MEMBERS;
    const partial = full ? '' : ` — only ${joined} of ${MEMBERS} members joined within the setup budget, so not measured at full size`;
    notes.push(
      `Timing model: each harness process timestamps datagrams on arrival at its multicast socket (CLOCK_MONOTONIC, shared by all processes; t0 is taken just before the admin rekey request or the send), then feeds them in order to each of its ${PER_LEAF} Member state machines, timing each receive(); a member's completion = arrival + its own processing, chained as on its own CPU. "to-all" is, per trial, the time until the last member had the new key (or the data); its p99 over few trials is the worst trial. A trial listens for ${WINDOW_MS} ms; a member still without the key or data then counts as missing (and the trial as ∞).`,
      `Key trials feed every ${SAMPLE}th member (a different ${SAMPLE}th each trial, so member ids across all parts of the update are covered; "members checked/trial"): one member's completion depends only on the shared arrival times, the part holding its entry and its own processing, and feeding all ${PER_LEAF} members of a harness costs ~3 s of CPU per trial here. The warm-up rekey (every member of every leaf) and the data trials feed every member; a member that had missed a key could not open the data and would count as missing.`,
      `Member processing of one datagram (median, "member µs/datagram") is dominated by Ed25519 verification of the whole signed datagram (a leave-scheme part is ≤64 KB: ${PER_LEAF} members need ${rekeySizes.length} parts); a member processes every part before the one with its entry.`,
      `Setup (not timed in the latency rows): ${MEMBERS} member certificates from the cache in the OS temp directory (iolus-bench-cache; issuing them takes ~1–2 min the first time); joins have a ${JOIN_BUDGET_MS / 1000} s budget so the run stays bounded on a loaded machine; the members ignore the join rekeys during setup and are brought to the current key by one rekey of every leaf (warm-up, not counted). membershipTtl is 10 min so no member refreshes during the run; intermediaries refresh with their parents as usual. Log level info everywhere.`,
      `Memory: each leaf daemon's memory (after two GCs, read by a preloaded probe over IPC; the least of 3 readings 0.7 s apart, as a reading can catch a rekey or a group key roll in flight) with 0 members (after 100 principals of another leaf joined and left, so compiled code and pools are in the baseline), and once its members had joined and closed their connections (a connection idle for 65 s is closed by the daemon anyway, so with joins taking minutes "connections open" is not a state that can be measured here); deltas summed over the ${LEAVES} leaves and divided by the members that joined. Compiled code (V8 code spaces) grows by whatever got optimized meanwhile, from a few hundred KB to several MB per daemon between runs, so it is shown apart and left out of the member state. A heap-snapshot diff of a leaf (IOLUS_BENCH_HEAP_SNAPSHOTS=<dir>) shows what a member costs: its record and rate-limit bucket (2 objects), its 32-byte member key (Uint8Array + ArrayBuffer), map entries and boxed numbers; and a pool of freed HTTP parsers that stops growing at 1,000. RSS is not given back by the allocator, so the RSS figure includes the connections' freed memory.`,
      `Code: ${revision()}. The daemons run with their defaults otherwise, including the group key service (KGRP2 rolls every 60 s through the tree, the usage ledger in SQLite with synchronous=FULL).`,
      `Machine load average before: ${load0}; after: ${loadAverage()} (1, 5, 15 min) on 2 CPUs shared with other work; ${tree.all.length} keyd processes, ${LEAVES} harness processes and this one share them.`,
    );
    writeReport({
      name: 'propagation',
      description: `A subgroup key update and a data message reaching every member of a 3-level keyd tree (controller, 2 + 4 intermediaries, ${PER_LEAF} members under each leaf: ${MEMBERS}), multicast on loopback, every agent and each leaf's members in their own process; vs raw multicast and raw unicast fan-out of the same datagrams (same run); and the leaf daemons' memory per member.`,
      rows,
      targets: [
        { target: `p99 < ${TARGET_MS} ms for a subgroup key update to reach every member of its subgroup (one leaf of ${PER_LEAF} members, tree of ${MEMBERS})`, met: full && w1 < TARGET_MS, detail: `worst of ${oneLeaf.length} trials ${w1.toFixed(0)} ms, median ${median(oneLeaf.map((t) => t.toAll)).toFixed(0)} ms; per-member p99 ${(rows[0]!.figures['member p99 ms'] as number).toFixed(0)} ms${partial}` },
        { target: `p99 < ${TARGET_MS} ms for key updates of all ${LEAVES} leaf subgroups at once to reach all ${MEMBERS} members (stress case)`, met: full && w4 < TARGET_MS, detail: `worst of ${allLeaves.length} trials ${w4.toFixed(0)} ms; per-member p99 ${(rows[1]!.figures['member p99 ms'] as number).toFixed(0)} ms; the ${LEAVES} rekeying daemons used ${(rows[1]!.figures['rekeying daemons CPU ms'] as number).toFixed(0)} ms of CPU per trial on 2 shared cores${partial}` },
        { target: `p99 < ${TARGET_MS} ms for a data message to reach every member of the ${MEMBERS}`, met: full && wd < TARGET_MS, detail: `worst of ${data.length} trials ${wd.toFixed(0)} ms; per-member p99 ${(rows[2]!.figures['member p99 ms'] as number).toFixed(0)} ms${partial}` },
        { target: `daemon memory < ${TARGET_BYTES} B per member (member state: heapUsed without compiled code, plus external; connections closed)`, met: stateBytes < TARGET_BYTES, detail: `${stateBytes.toFixed(0)} B over ${joined} members (${(f['heapUsed B/member']! + f['external B/member']!).toFixed(0)} B counting the code V8 compiled meanwhile); RSS grew ${(mem.figures['RSS B/member'] as number).toFixed(0)} B per member, most of it the members' TLS connections (RSS is not given back); with its keep-alive connection open a member costs far more: see the joins benchmark` },
      ],
      notes,
    });
  } finally {
    await Promise.all(hs.map((h) => h.stop()));
    for (const c of tree.admin.values()) c.close();
    // Leaves first: an intermediary leaves its parent on SIGTERM.
    for (const d of [...tree.all].reverse()) await d.stop();
  }
  removeRunDir(dir); // only after a run that did not throw
}
