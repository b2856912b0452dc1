/**
 * The single secure multicast group image (paper §5): a tree of depth 3 with more than 1,000
 * members, where data from any member reaches every current member exactly once and nobody
 * else; and convergence under 20% loss through gap detection and catch-up.
 */
import { describe, expect, it } from 'vitest';
import { Tree, text, type TreeMember } from '../support/tree.js';

const LEVEL1 = ['east', 'west'];
const LEVEL2 = ['e1', 'e2', 'w1', 'w2'];
const parentOf: Record<string, string> = { east: 'controller', west: 'controller', e1: 'east', e2: 'east', w1: 'west', w2: 'west' };

function buildLarge(perLeaf: number, opts: ConstructorParameters<typeof Tree>[0] = {}) {
  const t = new Tree(opts);
  for (const n of [...LEVEL1, ...LEVEL2]) t.addIntermediary(n, parentOf[n]!);
  const names: string[] = [];
  for (const agent of ['controller', ...LEVEL1, ...LEVEL2]) {
    const count = LEVEL2.includes(agent) ? perLeaf : 10;
    const batch = Array.from({ length: count }, (_, i) => `${agent}-m${i}`);
    t.joinMany(batch, agent);
    names.push(...batch);
  }
  t.settle();
  return { t, names };
}

function current(t: Tree): TreeMember[] {
  return [...t.members.values()].filter((m) => m.member.isJoined);
}

describe('a tree of depth 3 with more than 1,000 members', () => {
  it('delivers data from any member to every current member exactly once, and to nobody else', () => {
    const { t } = buildLarge(250);
    expect(current(t).length).toBeGreaterThanOrEqual(1000);
    // Some members leave or are expelled; they keep listening.
    const gone = ['e1-m3', 'w2-m100', 'east-m1', 'controller-m2'];
    t.leave('e1-m3');
    t.expel('w2-m100');
    t.leave('east-m1');
    t.expel('controller-m2');
    t.settle();
    for (const m of t.members.values()) m.received.length = 0;

    const senders = ['controller-m0', 'east-m0', 'west-m5', 'e1-m0', 'e2-m249', 'w1-m7', 'w2-m42'];
    const sent: string[] = [];
    for (const s of senders) {
      for (const method of [1, 2] as const) {
        const msg = `${s}/${method}`;
        t.send(s, msg, method);
        sent.push(msg);
      }
    }
    t.settle();
    let deliveries = 0;
    for (const m of current(t)) {
      const got = m.received.map((r) => text(r.payload)).sort();
      const want = sent.filter((x) => !x.startsWith(`${m.name}/`)).sort();
      expect(got, m.name).toEqual(want);
      deliveries += got.length;
    }
    for (const g of gone) expect(t.mustMember(g).received, g).toEqual([]);
    expect(deliveries).toBe(current(t).length * sent.length - senders.length * 2);
    // Intermediaries forwarded; nothing looped (every subgroup saw each message once).
    const forwarded = [...LEVEL1, ...LEVEL2].reduce((n, a) => n + t.node(a).agent.stats.forwarded, 0);
    expect(forwarded).toBeGreaterThan(0);
  }, 120_000);

  it('method 1 forwarding rewraps the data key only: the sealed payload crosses the tree unchanged', async () => {
    const { t } = buildLarge(5);
    const { decodeMessage } = await import('../../src/wire/message.js');
    const { MessageType } = await import('../../src/wire/header.js');
    const seen = new Map<string, string[]>();
    for (const sg of ['controller', ...LEVEL1, ...LEVEL2]) {
      t.net.subscribe(`sg:${sg}`, `probe:${sg}`, (b) => {
        const m = decodeMessage(b);
        if (m.type === MessageType.DataMethod1 || m.type === MessageType.DataMethod2) {
          seen.set(sg, [...(seen.get(sg) ?? []), Buffer.from(m.body.sealedPayload).toString('hex')]);
        }
      });
    }
    t.send('e1-m0', 'indirection', 1);
    t.settle();
    const payloads = new Set([...seen.values()].flat());
    expect(seen.size).toBe(7); // every subgroup carried it
    for (const list of seen.values()) expect(list.length).toBe(1); // once per subgroup
    expect(payloads.size).toBe(1); // byte-identical everywhere
  });
});

describe('with 20% loss on the subgroup plane', () => {
  it('every member converges to its current subgroup key through gap detection and catch-up', () => {
    const { t } = buildLarge(60, { seed: 42, agent: { heartbeatMs: 2_000, membershipTtlMs: 600_000 } });
    t.net.faults = { drop: 0.2, duplicate: 0.05, reorder: 0.2 };
    // Churn under loss: joins and leaves in every subgroup, and periodic rekeys.
    for (let round = 0; round < 5; round++) {
      for (const agent of ['controller', ...LEVEL1, ...LEVEL2]) {
        t.join(`${agent}-late${round}`, agent);
        t.leave(`${agent}-m${round}`);
      }
      for (const agent of ['east', 'w2']) t.route(agent, { ...t.node(agent).agent.rekeyNow(), received: [] });
      t.tick(500);
    }
    const stale = () => current(t).filter((m) => m.member.epoch !== t.node(m.agent).agent.epoch);
    expect(stale().length).toBeGreaterThan(0); // loss did bite
    expect(t.net.droppedByFault).toBeGreaterThan(100);
    // Heartbeats (also lossy) reveal the gaps; catch-up over the secure channel closes them.
    for (let i = 0; i < 20 && stale().length > 0; i++) t.tick(2_000);
    expect(stale().map((m) => m.name)).toEqual([]);
    // Intermediaries, as members of their parents, converged too.
    for (const n of [...LEVEL1, ...LEVEL2]) {
      const i = t.intermediary(n);
      expect(i.uplink.epoch, n).toBe(t.node(parentOf[n]!).agent.epoch);
    }
  });
});
