/**
 * `rollover`: how long after the originator announces KGRP2(n+1) the last of 10,000 members of
 * a 3-level tree holds it, and how far ahead of activation that is (issue 4; target: every
 * member holds it at least lead/2 before activation, default lead 10 s).
 *
 * Tree (as bench/propagation.ts): a controller (level 0, the originator), two intermediaries
 * (level 1), four (level 2), each an `iolus keyd` process with a UDP multicast subgroup on
 * 127.0.0.1; 2,500 members under each level-2 agent, held by one harness process per leaf
 * (bench/lib/rolloverHarness.ts): each member joins over its own mutual-TLS connection
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
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { ControlClient } from '../src/client/controlClient.js';
import { AGENT_NAMES, BENCH_GROUP, benchPki, memberName } from './lib/benchPki.js';
import { loadAverage, procCpuMs, runDir, startKeyd, type KeydProcess } from './lib/keydHarness.js';
import { median, percentile, writeReport, type BenchRow } from './lib/report.js';
import { RolloverHarness as HarnessProcess, wallMs, type HeldReport } from './lib/rolloverHarness.js';

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
