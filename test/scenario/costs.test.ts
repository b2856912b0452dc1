/** The costs the paper argues about (§3, §5), asserted by counting wraps. */
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/wire/header.js';
import { decodeMessage } from '../../src/wire/message.js';
import { RekeyReason } from '../../src/wire/keyUpdate.js';
import { Tree } from '../support/tree.js';

function subgroupOf(n: number) {
  const t = new Tree();
  t.addIntermediary('a', 'controller');
  t.addIntermediary('b', 'controller');
  t.joinMany(Array.from({ length: n }, (_, i) => `a${i}`), 'a');
  t.joinMany(Array.from({ length: 5 }, (_, i) => `b${i}`), 'b');
  t.settle();
  return t;
}

describe('rekey costs', () => {
  it.each([1, 10, 100, 1000])('a join in a subgroup of %i costs one wrap', (n) => {
    const t = subgroupOf(n);
    const a = t.node('a').agent;
    const before = a.stats.wraps;
    t.join('joiner', 'a');
    expect(a.stats.wraps - before).toBe(1);
  });

  it.each([2, 10, 100, 1000, 2500])('a leave in a subgroup of %i costs n−1 wraps', (n) => {
    const t = subgroupOf(n);
    const a = t.node('a').agent;
    const before = a.stats.wraps;
    t.leave('a0');
    expect(a.stats.wraps - before).toBe(n - 1);
  });

  it('a leave in one subgroup changes no other subgroup key (containment)', () => {
    const t = subgroupOf(20);
    const keysBefore = new Map([...t.nodes].map(([name, { node }]) => [name, Buffer.from(node.agent.subgroupKey.key).toString('hex')]));
    t.leave('a3');
    t.expel('a4');
    t.settle();
    for (const [name, { node }] of t.nodes) {
      const now = Buffer.from(node.agent.subgroupKey.key).toString('hex');
      if (name === 'a') expect(now).not.toBe(keysBefore.get(name));
      else expect(now, name).toBe(keysBefore.get(name));
    }
    for (let i = 0; i < 5; i++) expect(t.mustMember(`b${i}`).member.subgroupKey).toEqual(t.node('b').agent.subgroupKey.key);
  });

  it('a large leave is one logical message split into datagram-sized parts', () => {
    const t = subgroupOf(2500);
    const msgs: Uint8Array[] = [];
    t.net.subscribe('sg:a', 'recorder', (b) => msgs.push(b));
    t.leave('a7');
    t.settle();
    const updates = msgs.map((b) => decodeMessage(b)).filter((m) => m.type === MessageType.LeaveKeyUpdate);
    expect(updates.length).toBe(3);
    for (const u of msgs) expect(u.length).toBeLessThanOrEqual(65_000);
    for (let i = 0; i < 2500; i++) if (i !== 7) expect(t.mustMember(`a${i}`).member.epoch).toBe(t.node('a').agent.epoch);
  });
});

describe('periodic rekey uses the leave scheme, never a chain (§6.6)', () => {
  it('sends a LeaveKeyUpdate with one copy per member at each interval', () => {
    const t = new Tree({ agent: { rekeyIntervalMs: 10_000, heartbeatMs: 60_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 5; i++) t.join(`m${i}`, 'a');
    t.settle();
    const msgs: Uint8Array[] = [];
    t.net.subscribe('sg:a', 'recorder', (b) => msgs.push(b));
    const epoch = t.node('a').agent.epoch;
    t.tick(10_000);
    t.tick(10_000);
    const updates = msgs.map((b) => decodeMessage(b)).filter((m) => m.type === MessageType.LeaveKeyUpdate || m.type === MessageType.JoinKeyUpdate);
    expect(updates.length).toBe(2);
    for (const u of updates) {
      expect(u.type).toBe(MessageType.LeaveKeyUpdate);
      if (u.type === MessageType.LeaveKeyUpdate) {
        expect(u.body.reason).toBe(RekeyReason.Periodic);
        expect(u.body.entries.length).toBe(5);
      }
    }
    expect(t.node('a').agent.epoch).toBe(epoch + 2);
    for (let i = 0; i < 5; i++) expect(t.mustMember(`m${i}`).member.epoch).toBe(epoch + 2);
  });
});

describe('batch rekeying', () => {
  it('coalesces changes inside the window into one rekey', () => {
    const t = new Tree({ agent: { batchWindowMs: 1000, heartbeatMs: 60_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 10; i++) t.join(`m${i}`, 'a');
    t.tick(1000);
    const a = t.node('a').agent;
    const rekeysBefore = t.events.filter((e) => e.node === 'a' && e.event.type === 'rekey').length;
    const epoch = a.epoch;
    t.leave('m1');
    t.leave('m2');
    t.join('n1', 'a');
    t.join('n2', 'a');
    t.settle();
    expect(a.epoch).toBe(epoch); // nothing yet: the window is open
    t.tick(1000);
    const rekeys = t.events.filter((e) => e.node === 'a' && e.event.type === 'rekey').length - rekeysBefore;
    expect(rekeys).toBe(1);
    expect(a.epoch).toBe(epoch + 1);
    for (const name of ['m0', 'm3', 'n1', 'n2']) expect(t.mustMember(name).member.epoch, name).toBe(epoch + 1);
  });

  it('a batch of joins only costs {K\'}K plus one wrap per joiner', () => {
    const t = new Tree({ agent: { batchWindowMs: 1000, heartbeatMs: 60_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 50; i++) t.join(`m${i}`, 'a');
    t.tick(1000);
    const a = t.node('a').agent;
    const before = a.stats.wraps;
    for (let i = 0; i < 7; i++) t.join(`n${i}`, 'a');
    t.tick(1000);
    expect(a.stats.wraps - before).toBe(1 + 7);
    for (let i = 0; i < 7; i++) expect(t.mustMember(`n${i}`).member.epoch).toBe(a.epoch);
    for (let i = 0; i < 50; i++) expect(t.mustMember(`m${i}`).member.epoch).toBe(a.epoch);
  });

  it('window 0 rekeys on every event', () => {
    const t = new Tree({ agent: { heartbeatMs: 60_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 5; i++) t.join(`m${i}`, 'a');
    const epoch = t.node('a').agent.epoch;
    t.leave('m1');
    t.leave('m2');
    t.join('n1', 'a');
    expect(t.node('a').agent.epoch).toBe(epoch + 3);
  });

  it('an expulsion is never held back by the window', () => {
    const t = new Tree({ agent: { batchWindowMs: 10_000, heartbeatMs: 60_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 5; i++) t.join(`m${i}`, 'a');
    t.tick(10_000);
    const epoch = t.node('a').agent.epoch;
    t.expel('m3');
    t.settle();
    expect(t.node('a').agent.epoch).toBe(epoch + 1);
    expect(t.mustMember('m3').removed).toBe(true);
  });
});

describe('soft state (§6.3)', () => {
  it('a member that stops refreshing is removed like a leave', () => {
    const t = new Tree({ agent: { membershipTtlMs: 30_000, heartbeatMs: 5_000 } });
    t.addIntermediary('a', 'controller');
    for (let i = 0; i < 4; i++) t.join(`m${i}`, 'a');
    t.settle();
    t.silent.add('m2');
    for (let i = 0; i < 8; i++) t.tick(5_000);
    const a = t.node('a').agent;
    expect(a.members.size).toBe(3);
    expect(t.mustMember('m2').member.epoch).toBeLessThan(a.epoch);
    expect(t.events.some((e) => e.event.type === 'remove' && e.event.principal === 'm2' && e.event.cause === 'expire')).toBe(true);
    for (const m of ['m0', 'm1', 'm3']) expect(t.mustMember(m).member.epoch).toBe(a.epoch);
  });

  it('a partitioned subtree falls out of its parent, and comes back when the partition heals', () => {
    const t = new Tree({ agent: { membershipTtlMs: 30_000, heartbeatMs: 5_000 } });
    t.addIntermediary('a', 'controller');
    t.join('c1', 'controller');
    t.join('x1', 'a');
    t.settle();
    t.silent.add('a');
    for (let i = 0; i < 8; i++) t.tick(5_000);
    expect(t.controller.agent.members.size).toBe(1);
    t.silent.delete('a');
    // The intermediary notices at its next refresh (refused) and rejoins, its members untouched.
    for (let i = 0; i < 4; i++) t.tick(5_000);
    expect(t.intermediary('a').parentState).toBe('attached');
    expect(t.controller.agent.members.size).toBe(2);
    t.send('c1', 'healed');
    t.settle();
    expect(t.mustMember('x1').received.map((r) => new TextDecoder().decode(r.payload))).toContain('healed');
  });
});
