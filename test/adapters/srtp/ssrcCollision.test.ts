import { describe, expect, it } from 'vitest';
import type { ProtectResult } from '../../../src/adapters/srtp/counters.js';
import type { SrtpRingEvent } from '../../../src/adapters/srtp/keyRing.js';
import { SsrcCollisionDetector } from '../../../src/adapters/srtp/ssrcCollision.js';
import { FakeClock, makeRing, sourceOf, threeEpochs } from '../support/ring.js';
import { rtp } from '../support/rtp.js';

function okPacket(r: ProtectResult): Buffer {
  if (!r.ok) throw new Error(JSON.stringify(r));
  return r.packet;
}

describe('SSRC collision among senders sharing a group key (RFC 3711 §9.1)', () => {
  it('a sender notices another member protecting with its SSRC, and reports it once per interval', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(100);
    const alice = makeRing(sourceOf(epochs), clock);
    const bob = makeRing(sourceOf(epochs), clock);
    const events: SrtpRingEvent[] = [];
    alice.onEvent((e) => events.push(e));
    okPacket(alice.protectRtp(rtp({ ssrc: 42, seq: 100 })));
    // Bob picked the same SSRC: same key, same SSRC, so the same keystream for equal indices.
    for (let seq = 5000; seq < 5003; seq++) {
      const r = alice.unprotectRtp(okPacket(bob.protectRtp(rtp({ ssrc: 42, seq }))), '10.0.0.2:5004');
      expect(r.ok).toBe(true); // authentic: delivered, and reported
    }
    const collisions = events.filter((e) => e.type === 'ssrcCollision');
    expect(collisions).toEqual([{ type: 'ssrcCollision', epoch: 1, collision: { ssrc: 42, kind: 'local', source: '10.0.0.2:5004' } }]);
    const c = alice.counters();
    expect([c.ssrcCollisions, c.ssrcCollisionPackets]).toEqual([1, 3]);
  });

  it('our own packets looping back are not a collision: dropped as loop', () => {
    const clock = new FakeClock(100);
    const alice = makeRing(sourceOf(threeEpochs()), clock);
    const events: SrtpRingEvent[] = [];
    alice.onEvent((e) => events.push(e));
    const mine = okPacket(alice.protectRtp(rtp({ ssrc: 42, seq: 1 })));
    expect(alice.unprotectRtp(mine)).toEqual({ ok: false, cause: 'loop' });
    expect(events.some((e) => e.type === 'ssrcCollision')).toBe(false);
    expect(alice.counters().rxDropped.loop).toBe(1);
  });

  it('a receiver notices one SSRC arriving from two transport addresses (RFC 3550 §8.2)', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(100);
    const carol = makeRing(sourceOf(epochs), clock);
    const s1 = makeRing(sourceOf(epochs), clock);
    const s2 = makeRing(sourceOf(epochs), clock);
    const events: SrtpRingEvent[] = [];
    carol.onEvent((e) => events.push(e));
    expect(carol.unprotectRtp(okPacket(s1.protectRtp(rtp({ ssrc: 7, seq: 1 }))), 'a:1').ok).toBe(true);
    expect(carol.unprotectRtp(okPacket(s2.protectRtp(rtp({ ssrc: 7, seq: 900 }))), 'b:2').ok).toBe(true);
    expect(events.filter((e) => e.type === 'ssrcCollision')).toEqual([
      { type: 'ssrcCollision', epoch: 1, collision: { ssrc: 7, kind: 'remote', source: 'b:2', firstSource: 'a:1' } },
    ]);
    expect(carol.counters().ssrcCollisions).toBe(1);
  });

  it('detector: a source silent past the timeout may be replaced; reports are rate-limited', () => {
    const d = new SsrcCollisionDetector({ sourceTimeoutMs: 1000, reportIntervalMs: 500 });
    expect(d.observe(1, 'a', false, 0)).toBeUndefined();
    expect(d.observe(1, 'b', false, 100)).toMatchObject({ report: true, collision: { kind: 'remote' } });
    expect(d.observe(1, 'b', false, 200)).toMatchObject({ report: false });
    expect(d.observe(1, 'b', false, 700)).toMatchObject({ report: true });
    expect(d.observe(1, 'b', false, 2000)).toBeUndefined(); // 'a' silent since 0: 'b' takes over
    expect(d.observe(1, 'b', false, 2100)).toBeUndefined();
    expect(d.observe(2, undefined, false, 0)).toBeUndefined();
    expect(d.observe(3, undefined, true, 0)).toMatchObject({ collision: { ssrc: 3, kind: 'local' } });
  });
});
