/**
 * `rekey`: the cost of one leave (paper §3, §5): a flat group of N under one agent against an
 * Iolus tree of the same N in subgroups of ~1,000, for N = 10^4, 10^5, 10^6, in one run.
 * Measured: CPU time of the agent(s) that rekey, key wraps, messages and bytes on the wire.
 * Target: at N = 10^6 the tree's leave costs ≥100× less CPU than the flat group's.
 */
import { generateSigningKey } from '../src/crypto/sign.js';
import { Agent } from '../src/keyd/agent.js';
import { admitAll } from '../src/keyd/admission.js';
import { systemClock } from '../src/util/clock.js';
import { median, writeReport, type BenchRow } from './lib/report.js';

const SUBGROUP = 1000;
const SIZES = (process.env.IOLUS_BENCH_REKEY_SIZES ?? '10000,100000,1000000').split(',').map(Number);

function makeAgent(name: string): Agent {
  return new Agent({
    group: 'bench.rekey', name, signing: generateSigningKey(), transport: { kind: 'memory', channel: name },
    admit: admitAll, batchWindowMs: 1e12, heartbeatMs: 1e12, membershipTtlMs: 1e12, maxMembers: 10_000_000,
  }, systemClock);
}

/** An agent with `n` members, keyed once (setup, not measured), then rekeying per event. */
function populated(name: string, n: number, prefix: string): Agent {
  const a = makeAgent(name);
  for (let i = 0; i < n; i++) a.join(`${prefix}${i}`, 'member');
  a.rekeyNow();
  a.batchWindowMs = 0;
  return a;
}

interface LeaveCost {
  cpuMs: number;
  wallMs: number;
  wraps: number;
  messages: number;
  bytes: number;
}

function measureLeave(a: Agent, memberId: number, principal: string): LeaveCost {
  const wraps0 = a.stats.wraps;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const step = a.leave(memberId, principal);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return {
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    wraps: a.stats.wraps - wraps0,
    messages: step.out.length,
    bytes: step.out.reduce((n, o) => n + ('bytes' in o ? o.bytes.length : 0), 0),
  };
}

function summarize(costs: LeaveCost[]): LeaveCost {
  return {
    cpuMs: median(costs.map((c) => c.cpuMs)),
    wallMs: median(costs.map((c) => c.wallMs)),
    wraps: median(costs.map((c) => c.wraps)),
    messages: median(costs.map((c) => c.messages)),
    bytes: median(costs.map((c) => c.bytes)),
  };
}

function flat(n: number, reps: number): LeaveCost {
  const a = populated('flat', n, 'm');
  const costs: LeaveCost[] = [];
  for (let r = 0; r < reps; r++) {
    const id = 1 + Math.floor(Math.random() * n);
    const rec = a.members.get(id);
    if (!rec) {
      r--;
      continue;
    }
    costs.push(measureLeave(a, id, rec.principal));
  }
  return summarize(costs);
}

function tree(n: number, reps: number): { cost: LeaveCost; others: number; leaves: number } {
  const leaves = Math.ceil(n / SUBGROUP);
  const controller = populated('controller', leaves, 'gsi-');
  const agents: Agent[] = [];
  for (let l = 0; l < leaves; l++) agents.push(populated(`gsi-${l}`, Math.min(SUBGROUP, n - l * SUBGROUP), `l${l}-m`));
  const othersBefore = controller.stats.wraps + agents.slice(1).reduce((s, a) => s + a.stats.wraps, 0);
  const costs: LeaveCost[] = [];
  const target = agents[0]!;
  for (let r = 0; r < reps; r++) {
    const id = 1 + Math.floor(Math.random() * target.members.size * 2);
    const rec = target.members.get(id);
    if (!rec) {
      r--;
      continue;
    }
    costs.push(measureLeave(target, id, rec.principal));
  }
  const othersAfter = controller.stats.wraps + agents.slice(1).reduce((s, a) => s + a.stats.wraps, 0);
  return { cost: summarize(costs), others: othersAfter - othersBefore, leaves };
}

export async function run(): Promise<void> {
  const rows: BenchRow[] = [];
  let ratioAtMillion = NaN;
  let ratioLargest = NaN;
  for (const n of SIZES) {
    const reps = n >= 1_000_000 ? 3 : n >= 100_000 ? 5 : 15;
    process.stdout.write(`rekey: N=${n} flat…\n`);
    const f = flat(n, reps);
    process.stdout.write(`rekey: N=${n} tree…\n`);
    const t = tree(n, Math.max(reps, 15));
    const ratio = f.cpuMs / Math.max(t.cost.cpuMs, 0.001);
    if (n === 1_000_000) ratioAtMillion = ratio;
    ratioLargest = ratio;
    rows.push({ case: `N=${n.toLocaleString('en-US')}, flat (1 agent)`, figures: { 'CPU ms': f.cpuMs, 'wall ms': f.wallMs, wraps: f.wraps, messages: f.messages, 'bytes on wire': f.bytes, 'flat/tree CPU': '' } });
    rows.push({
      case: `N=${n.toLocaleString('en-US')}, tree (${t.leaves} subgroups of ≤${SUBGROUP})`,
      figures: { 'CPU ms': t.cost.cpuMs, 'wall ms': t.cost.wallMs, wraps: t.cost.wraps, messages: t.cost.messages, 'bytes on wire': t.cost.bytes, 'flat/tree CPU': ratio, 'wraps elsewhere': t.others },
    });
    if (t.others !== 0) throw new Error(`containment broken: ${t.others} wraps outside the leaving member's subgroup`);
  }
  const met = Number.isFinite(ratioAtMillion) ? ratioAtMillion >= 100 : false;
  writeReport({
    name: 'rekey',
    description: 'One leave: CPU time, key wraps, messages and bytes, a flat group of N under one agent vs an Iolus tree of the same N in subgroups of ~1,000 (medians of repeated leaves; same run).',
    rows,
    targets: [{
      target: 'at N = 10^6 the tree\'s leave costs ≥100× less CPU than the flat group\'s',
      met,
      detail: Number.isFinite(ratioAtMillion) ? `${ratioAtMillion.toFixed(0)}× less` : `N = 10^6 not run (largest ratio ${ratioLargest.toFixed(0)}×)`,
    }],
    notes: ['"wraps elsewhere" counts wraps by every other agent of the tree during the leaves: 0 is the containment Iolus is for.'],
  });
}
