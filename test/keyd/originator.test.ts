/**
 * The originator state machine (src/keyd/groupKey/originator.ts; paper §7) with a fake clock:
 * epoch numbers (max(last + 1, ⌊notBefore / period⌋, persisted floor): never back), the schedule
 * (made `lead` before activation, repeated over the first half of the lead), voids, forced rolls,
 * taking over after another originator, and signatures a ring accepts from it alone.
 */
import { describe, expect, it } from 'vitest';
import { GroupKeyRing } from '../../src/client/groupKeyRing.js';
import { generateSigningKey } from '../../src/crypto/sign.js';
import { Originator, type GroupKeyPolicy } from '../../src/keyd/groupKey/originator.js';
import { decodeKgrp2Announcement } from '../../src/wire/kgrp2Announcement.js';

const GROUP = 'orig-unit';
const POLICY: GroupKeyPolicy = { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 };
/** A minute boundary: ⌊T0 / period⌋ is a whole epoch number. */
const T0 = 1_800_000_000_000;
const E0 = T0 / POLICY.periodMs;

/** Ticks every `step` ms from `from` to `to`; the announcements with the time each went out. */
function run(o: Originator, from: number, to: number, step = 250) {
  const out: { at: number; a: ReturnType<typeof decodeKgrp2Announcement> }[] = [];
  for (let t = from; t <= to; t += step) for (const b of o.tick(t)) out.push({ at: t, a: decodeKgrp2Announcement(b) });
  return out;
}

describe('originator', () => {
  it('rolls one epoch per period, made `lead` before activation and announced `repeats` times over half the lead', () => {
    const o = new Originator(GROUP, generateSigningKey(), POLICY);
    const sent = run(o, T0, T0 + 3 * POLICY.periodMs);
    const epochs = [...new Set(sent.map((s) => s.a.epoch))];
    expect(epochs).toEqual([E0, E0 + 1, E0 + 2, E0 + 3]);
    for (const e of epochs.slice(1)) {
      const times = sent.filter((s) => s.a.epoch === e).map((s) => s.at);
      const a = sent.find((s) => s.a.epoch === e)!.a;
      expect(a.notBefore).toBe(T0 + (e - E0) * POLICY.periodMs);
      expect(a.notAfter - a.notBefore).toBe(POLICY.periodMs);
      expect(a.graceMs).toBe(POLICY.graceMs);
      expect(a.voids).toBe(0);
      // Three announcements: at notBefore − lead, then spread over the first half of the lead.
      expect(times).toEqual([a.notBefore - 10_000, a.notBefore - 7_500, a.notBefore - 5_000]);
    }
    expect(o.created.map((c) => c.reason)).toEqual(['start', 'period', 'period', 'period']);
    expect(o.epoch).toBe(E0 + 3);
    expect(o.nextActivation).toBe(T0 + 4 * POLICY.periodMs); // E0 + 3 came into force at the last tick
  });

  it('never goes back: a persisted floor ahead of the time term wins; a floor behind it does not hold time back', () => {
    const ahead = new Originator(GROUP, generateSigningKey(), POLICY, E0 + 100);
    expect(decodeKgrp2Announcement(ahead.tick(T0)[0]!).epoch).toBe(E0 + 101);
    const behind = new Originator(GROUP, generateSigningKey(), POLICY, 5);
    expect(decodeKgrp2Announcement(behind.tick(T0)[0]!).epoch).toBe(E0);
    // After a stop of ten periods, the time term jumps ahead: still increasing.
    const o = new Originator(GROUP, generateSigningKey(), POLICY, 0);
    run(o, T0, T0 + 1_000);
    const later = new Originator(GROUP, generateSigningKey(), POLICY, o.epoch);
    expect(decodeKgrp2Announcement(later.tick(T0 + 10 * POLICY.periodMs)[0]!).epoch).toBe(E0 + 10);
  });

  it('voids the pending key: a new epoch, same activation, carrying the void', () => {
    const o = new Originator(GROUP, generateSigningKey(), POLICY);
    run(o, T0, T0 + 52_000);
    const pending = E0 + 1;
    const [b] = o.voidPending(T0 + 52_000);
    const a = decodeKgrp2Announcement(b!);
    expect(a).toMatchObject({ epoch: E0 + 2, voids: pending, notBefore: T0 + POLICY.periodMs });
    expect(o.created.at(-1)).toMatchObject({ epoch: E0 + 2, voids: pending, reason: 'void' });
    // Its repeats follow; the next roll continues above it.
    const more = run(o, T0 + 52_250, T0 + 2 * POLICY.periodMs);
    expect(more.filter((s) => s.a.epoch === E0 + 2)).toHaveLength(POLICY.repeats - 1);
    expect(more.some((s) => s.a.epoch === pending)).toBe(false);
    expect(more.at(-1)!.a.epoch).toBe(E0 + 3);
    // Nothing pending: nothing to void.
    const fresh = new Originator(GROUP, generateSigningKey(), POLICY);
    run(fresh, T0, T0 + 1_000);
    expect(fresh.voidPending(T0 + 1_000)).toEqual([]);
  });

  it('a forced roll puts a new key in force now and voids the pending one', () => {
    const o = new Originator(GROUP, generateSigningKey(), POLICY);
    run(o, T0, T0 + 55_000);
    const [b] = o.rollNow(T0 + 55_000);
    const a = decodeKgrp2Announcement(b!);
    expect(a).toMatchObject({ epoch: E0 + 2, voids: E0 + 1, notBefore: T0 + 55_000, notAfter: T0 + 55_000 + POLICY.periodMs });
    expect(o.announcements().map((x) => decodeKgrp2Announcement(x).epoch)).toEqual([E0 + 2]);
    const [c] = o.rollNow(T0 + 56_000);
    expect(decodeKgrp2Announcement(c!)).toMatchObject({ epoch: E0 + 3, voids: 0 });
  });

  it('taking over after another originator: its first epoch starts where the other\'s ends, above it', () => {
    const o = new Originator(GROUP, generateSigningKey(), POLICY, 0);
    o.resumeAfter(E0 + 40, T0 + 30_000);
    const first = run(o, T0, T0 + 30_000);
    const a = first[0]!;
    expect(a.a).toMatchObject({ epoch: E0 + 41, notBefore: T0 + 30_000 });
    expect(a.at).toBe(T0 + 20_000);
    expect(first.some((s) => s.a.notBefore < T0 + 30_000)).toBe(false);
  });

  it('signs what a ring accepts from it, and from no other key', () => {
    const key = generateSigningKey();
    const o = new Originator(GROUP, key, POLICY);
    const [b] = o.tick(T0);
    const ring = new GroupKeyRing(GROUP);
    expect(ring.accept(b!)).toMatchObject({ ok: false, cause: 'unknown-originator' });
    ring.setOriginators([generateSigningKey().publicKey]);
    expect(ring.accept(b!)).toMatchObject({ ok: false, cause: 'unknown-originator' });
    ring.setOriginators([key.publicKey]);
    expect(ring.accept(b!)).toMatchObject({ ok: true, epoch: E0, fresh: true });
    const other = new GroupKeyRing('another-group');
    other.setOriginators([key.publicKey]);
    expect(other.accept(b!)).toMatchObject({ ok: false, cause: 'bad-signature' });
    const tampered = new Uint8Array(b!);
    tampered[10]! ^= 1;
    expect(ring.accept(tampered).ok).toBe(false);
  });

  it('refuses a lead not shorter than the period', () => {
    expect(() => new Originator(GROUP, generateSigningKey(), { ...POLICY, leadMs: POLICY.periodMs })).toThrow(RangeError);
  });
});

describe('controller: a void that arrives after the key came into force', () => {
  it('rolls at once, so the key the expelled member holds is never the one in force', async () => {
    const { Tree } = await import('../support/tree.js');
    const t = new Tree({ agent: { heartbeatMs: 2_000, membershipTtlMs: 3_600_000 } });
    t.controller.enableGroupKeys({ policy: POLICY, method: 1, originator: 'controller', floor: 0 });
    t.addIntermediary('a', 'controller');
    t.tick(100);
    for (const n of ['m0', 'm1', 'victim']) t.join(n, 'a');
    t.settle();
    let next = t.controller.keys.ring.next(t.clock.now());
    for (let i = 0; i < 70 && !next; i++) {
      t.tick(1_000);
      next = t.controller.keys.ring.next(t.clock.now());
    }
    expect(next).toBeDefined();
    const victim = t.mustMember('victim');
    expect(victim.keys.ring.byEpoch(next!.epoch), 'the victim holds the pending key').toBeDefined();
    // Expelled 100 ms before activation at its intermediary; the void request reaches the
    // controller over the control plane only after the key came into force.
    t.clock.advance(next!.notBefore - 100 - t.clock.now());
    t.expel('victim');
    t.tick(200);
    const now = t.clock.now();
    for (const n of ['m0', 'm1']) {
      const cur = t.mustMember(n).keys.ring.current(now)!;
      expect(cur.epoch, `${n}: key in force`).toBeGreaterThan(next!.epoch);
      expect(victim.keys.ring.byEpoch(cur.epoch), 'the victim never gets it').toBeUndefined();
    }
    expect(t.controller.keys.ring.current(now)!.epoch).toBeGreaterThan(next!.epoch);
  });
});
