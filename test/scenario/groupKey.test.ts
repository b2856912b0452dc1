/**
 * KGRP2 as a service (paper §7) in a whole in-process tree: the originator rolls the group key
 * on its timer; every member holds previous, current and next; expulsion voids a pending key;
 * entitlements end access before the next epoch; loss is covered by repeats, heartbeats and
 * catch-up; a designated originator member that dies is replaced by the controller.
 */
import { describe, expect, it } from 'vitest';
import { Tree, type TreeMember } from '../support/tree.js';
import type { Admit } from '../../src/keyd/admission.js';

const POLICY = { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 };

function build(opts: ConstructorParameters<typeof Tree>[0] = {}, originator = 'controller') {
  const t = new Tree({ agent: { heartbeatMs: 2_000, membershipTtlMs: 3_600_000 }, ...opts });
  t.controller.enableGroupKeys({ policy: POLICY, method: 1, originator, floor: 0 });
  t.addIntermediary('a', 'controller');
  t.addIntermediary('b', 'controller');
  t.addIntermediary('a1', 'a');
  t.tick(100); // the first epoch exists before anyone joins
  for (const [agent, n] of [['controller', 3], ['a', 3], ['b', 3], ['a1', 5]] as const) {
    for (let i = 0; i < n; i++) t.join(`${agent}-m${i}`, agent);
  }
  t.settle();
  return t;
}

const joined = (t: Tree) => [...t.members.values()].filter((m) => m.member.isJoined);
const epochsHeld = (m: TreeMember) => m.keys.ring.epochs();

/** Runs the clock in small steps for `ms`, recording each member's current epoch as it goes. */
function run(t: Tree, ms: number, step = 1_000, seen = new Map<string, number[]>()) {
  for (let e = 0; e < ms; e += step) {
    t.tick(step);
    for (const m of joined(t)) {
      const cur = m.keys.ring.current(t.clock.now())?.epoch;
      const list = seen.get(m.name) ?? [];
      if (cur !== undefined && list[list.length - 1] !== cur) list.push(cur);
      seen.set(m.name, list);
    }
  }
  return seen;
}

describe('KGRP2 rolling on a timer', () => {
  it('every member sees the same epoch sequence with no gap over ten rolls, and holds each next key ahead of activation', () => {
    const t = build();
    const early: number[] = [];
    const seen = new Map<string, number[]>();
    for (let roll = 0; roll < 10; roll++) {
      run(t, 55_000, 1_000, seen);
      // 5 s before activation (lead 10 s), every member already holds the next key.
      const next = t.controller.keys.ring.next(t.clock.now());
      expect(next, `roll ${roll}`).toBeDefined();
      for (const m of joined(t)) expect(m.keys.ring.byEpoch(next!.epoch), `${m.name} roll ${roll}`).toBeDefined();
      early.push(next!.notBefore - t.clock.now());
      run(t, 5_000, 1_000, seen);
    }
    const sequences = [...seen.values()];
    const reference = sequences[0]!;
    expect(reference.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < reference.length; i++) expect(reference[i]).toBe(reference[i - 1]! + 1);
    for (const s of sequences) expect(s).toEqual(reference);
    expect(Math.min(...early)).toBeGreaterThanOrEqual(POLICY.leadMs / 2 - 1_000);
  });

  it('previous, current and next: the previous key stays usable for the grace window', () => {
    const t = build();
    run(t, 56_000);
    const m = t.mustMember('a1-m0');
    const now = t.clock.now();
    const cur = m.keys.ring.current(now)!;
    expect(m.keys.ring.next(now)!.epoch).toBe(cur.epoch + 1);
    run(t, 5_000);
    const later = t.clock.now();
    expect(m.keys.ring.current(later)!.epoch).toBe(cur.epoch + 1);
    expect(m.keys.ring.previous(later)!.epoch).toBe(cur.epoch);
    run(t, POLICY.graceMs);
    expect(m.keys.ring.previous(t.clock.now())).toBeUndefined();
  });

  it('raw KGRP2 never leaves the ring: applications get keys derived by label', () => {
    const t = build();
    const m = t.mustMember('b-m1');
    const now = t.clock.now();
    const [k] = m.keys.ring.derived('srtp/AES_CM_128_HMAC_SHA1_80', now);
    const raw = m.keys.ring.current(now)!.kgrp2;
    expect(k!.key.length).toBe(30);
    expect(Buffer.from(k!.key).includes(Buffer.from(raw.subarray(0, 8)))).toBe(false);
    expect(m.keys.ring.derived('sframe', now)[0]!.key).not.toEqual(k!.key.subarray(0, 32));
  });
});

describe('expulsion voids the pending next key', () => {
  it('a member expelled during epoch n never obtains a key of any epoch > n, anywhere below', () => {
    const t = build();
    run(t, 55_000); // the next key (n+1) is out
    const victim = t.mustMember('a1-m2');
    const n = victim.keys.ring.current(t.clock.now())!.epoch;
    expect(victim.keys.ring.byEpoch(n + 1)).toBeDefined(); // it had received the pending key…
    t.expel('a1-m2');
    t.settle();
    // …which is void now: a fresh next key under a new epoch went only to the others.
    const next = t.controller.keys.ring.next(t.clock.now())!;
    expect(next.epoch).toBeGreaterThan(n + 1);
    for (const m of joined(t)) if (m.name !== 'a1-m2') expect(m.keys.ring.byEpoch(next.epoch), m.name).toBeDefined();
    for (const m of joined(t)) expect(m.keys.ring.byEpoch(n + 1), m.name).toBeUndefined();
    run(t, 5 * 60_000);
    expect(Math.max(...epochsHeld(victim))).toBe(n + 1); // only the voided one, which nobody uses
    for (const m of joined(t)) if (m.name !== 'a1-m2') expect(m.keys.ring.current(t.clock.now())!.epoch).toBeGreaterThan(n + 4);
  });

  it('a forced roll puts a new key in force at once for everyone', () => {
    const t = build();
    run(t, 20_000);
    const before = t.controller.keys.ring.current(t.clock.now())!.epoch;
    t.route('controller', t.controller.rollNow());
    t.settle();
    for (const m of joined(t)) expect(m.keys.ring.current(t.clock.now())!.epoch, m.name).toBeGreaterThan(before);
  });
});

describe('entitlements (per-period metering)', () => {
  it('a member whose entitlement ends is dropped before the next epoch and never gets its key', () => {
    const start = 1_700_000_000_000;
    const untilOf: Record<string, number> = { 'a1-m1': start + 150_000 };
    const admit: Admit = (principal) => ({ ok: true, until: untilOf[principal] ?? null });
    const t = build({ admit });
    const m = t.mustMember('a1-m1');
    run(t, 5 * 60_000);
    const last = Math.max(...epochsHeld(m));
    const k = t.controller.keys.ring.byEpoch(last) ?? m.keys.ring.byEpoch(last)!;
    expect(k.notBefore).toBeLessThan(untilOf['a1-m1']!);
    expect(t.node('a1').agent.members.byPrincipalName('a1-m1')).toBeUndefined();
    expect(t.events.some((e) => e.event.type === 'remove' && e.event.principal === 'a1-m1' && e.event.cause === 'entitlement')).toBe(true);
    // Everyone else went on.
    expect(t.mustMember('a1-m0').keys.ring.epoch).toBeGreaterThan(last + 1);
  });

  it('an intermediary\'s entitlement bounds its whole subtree', () => {
    const start = 1_700_000_000_000;
    const admit: Admit = (principal, role) => ({ ok: true, until: role === 'intermediary' && principal === 'a' ? start + 130_000 : null });
    const t = build({ admit });
    run(t, 5 * 60_000);
    const inside = ['a-m0', 'a1-m0', 'a1-m4'].map((n) => Math.max(...epochsHeld(t.mustMember(n))));
    const outside = Math.max(...epochsHeld(t.mustMember('b-m0')));
    for (const e of inside) expect(e).toBeLessThan(outside - 1);
  });
});

describe('under loss', () => {
  it('with 30% loss every member still holds each next key before its activation', () => {
    const t = build({ seed: 9 });
    t.net.faults = { drop: 0.3, duplicate: 0.05, reorder: 0.1 };
    let misses = 0;
    let checks = 0;
    for (let roll = 0; roll < 6; roll++) {
      run(t, 59_000, 500);
      const next = t.controller.keys.ring.next(t.clock.now())!;
      for (const m of joined(t)) {
        checks++;
        if (!m.keys.ring.byEpoch(next.epoch)) misses++;
      }
      run(t, 1_000, 500);
    }
    expect(t.net.droppedByFault).toBeGreaterThan(100);
    expect(checks).toBeGreaterThan(50);
    expect(misses).toBe(0);
  });
});

describe('a designated originator member', () => {
  it('its keys reach everyone; when it dies the controller takes over before anyone runs out', async () => {
    const { Originator } = await import('../../src/keyd/groupKey/originator.js');
    const { generateSigningKey } = await import('../../src/crypto/sign.js');
    const { sealDataUnit } = await import('../../src/protocol/dataUnit.js');
    const { ContentType } = await import('../../src/wire/data.js');
    const t = new Tree({ agent: { heartbeatMs: 2_000, membershipTtlMs: 3_600_000 } });
    t.controller.enableGroupKeys({ policy: POLICY, method: 2, originator: 'orig', floor: 0 });
    t.addIntermediary('a', 'controller');
    const signing = generateSigningKey();
    t.controller.addOriginatorKey(signing.publicKey);
    const orig = t.join('orig', 'a', 'originator');
    for (let i = 0; i < 3; i++) t.join(`m${i}`, 'a');
    t.join('c0', 'controller');
    t.settle();
    const o = new Originator(t.group, signing, POLICY, 0);
    const send = () => {
      for (const bytes of o.tick(t.clock.now())) {
        const unit = sealDataUnit(orig.member.groupId, ContentType.GroupKey, { subgroup: orig.member.subgroupId, member: orig.member.memberId, seq: Date.now() * 1000 + Math.floor(Math.random() * 1e6) }, bytes);
        const out = orig.member.forward(unit, 2);
        if (out.kind === 'agent') t.net.unicast('agent:a', out.bytes);
      }
    };
    for (let i = 0; i < 130; i++) {
      send();
      t.tick(1_000);
    }
    expect(t.controller.isOriginator).toBe(false);
    const e1 = t.mustMember('c0').keys.ring.current(t.clock.now())!.epoch;
    expect(t.mustMember('m1').keys.ring.current(t.clock.now())!.epoch).toBe(e1);
    // The originator dies. Nobody may be left without a usable key past the grace window.
    t.silent.add('orig');
    for (let i = 0; i < 200; i++) {
      t.tick(1_000);
      for (const m of ['c0', 'm0', 'm2']) expect(t.mustMember(m).keys.ring.current(t.clock.now()), `${m} at +${i}s`).toBeDefined();
    }
    expect(t.controller.isOriginator).toBe(true);
    expect(t.mustMember('m0').keys.ring.current(t.clock.now())!.epoch).toBeGreaterThan(e1 + 1);
  });
});
