/**
 * Network input is untrusted: garbage, truncations and bit flips must each yield a counted
 * drop, never an exception and never an internal error, and the ring must keep working.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RX_DROP_CAUSES, TX_DROP_CAUSES } from '../../../src/adapters/srtp/counters.js';
import { SRTP_PROFILE_NAMES } from '../../../src/adapters/srtp/profile.js';
import { SrtpKeyRing } from '../../../src/adapters/srtp/keyRing.js';
import { FakeClock, sourceOf, threeEpochs } from '../support/ring.js';
import { rtcpRr, rtp } from '../support/rtp.js';

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sum(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

describe('garbage input', () => {
  for (const profile of SRTP_PROFILE_NAMES) {
    for (const mki of [false, true]) {
      it(`never throws, counts every drop, keeps working (${profile}, mki ${mki})`, () => {
        const errors: string[] = [];
        const logger = pino({ level: 'warn' }, new Writable({ write(chunk, _e, cb) { errors.push(String(chunk)); cb(); } }));
        const epochs = threeEpochs();
        const clock = new FakeClock(500);
        const sender = new SrtpKeyRing(sourceOf(epochs), { profile, mki, clock: clock.now, logger });
        const receiver = new SrtpKeyRing(sourceOf(epochs), { profile, mki, clock: clock.now, logger });
        const rand = prng(profile.length * 31 + (mki ? 1 : 0));
        const byte = (): number => Math.floor(rand() * 256);
        const valid = [
          ...Array.from({ length: 20 }, (_, i) => sender.protectRtp(rtp({ ssrc: 9, seq: i, csrcs: i % 2 ? [1] : [] }))),
          ...Array.from({ length: 5 }, () => sender.protectRtcp(rtcpRr(9, 8))),
        ].map((r) => (r.ok ? r.packet : Buffer.alloc(0)));

        const N = 3000;
        let delivered = 0;
        for (let i = 0; i < N; i++) {
          let p: Buffer;
          const kind = i % 4;
          if (kind === 0) {
            p = Buffer.from(Array.from({ length: Math.floor(rand() * 80) }, byte));
          } else if (kind === 1) {
            const v = valid[Math.floor(rand() * valid.length)]!;
            p = v.subarray(0, Math.floor(rand() * v.length)); // truncated
          } else if (kind === 2) {
            p = Buffer.from(valid[Math.floor(rand() * valid.length)]!);
            p[Math.floor(rand() * p.length)]! ^= 1 << Math.floor(rand() * 8); // one bit flipped
          } else {
            // Plausible headers (version 2, random CC/X/lengths) with random bodies.
            p = Buffer.from(Array.from({ length: 12 + Math.floor(rand() * 60) }, byte));
            p[0] = 0x80 | (p[0]! & 0x3f);
          }
          expect(() => receiver.unprotect(p, 'x:1')).not.toThrow();
          const r = receiver.unprotect(p);
          if (r.ok) delivered++;
          expect(() => sender.protect(p)).not.toThrow();
        }
        const c = receiver.counters();
        // Each garbage packet went in twice: every one a delivery or a counted drop.
        expect(c.rtpUnprotected + c.rtcpUnprotected + sum(c.rxDropped)).toBe(2 * N);
        expect(delivered).toBeLessThanOrEqual(c.rtpUnprotected + c.rtcpUnprotected);
        const t = sender.counters();
        expect(t.rtpProtected + t.rtcpProtected + sum(t.txDropped)).toBe(N + valid.length);
        expect(errors.filter((l) => l.includes('unexpected error'))).toEqual([]);
        expect(Object.keys(c.rxDropped).sort()).toEqual([...RX_DROP_CAUSES].sort());
        expect(Object.keys(t.txDropped).sort()).toEqual([...TX_DROP_CAUSES].sort());

        const fresh = sender.protectRtp(rtp({ ssrc: 10, seq: 1 }));
        expect(fresh.ok && receiver.unprotectRtp(fresh.packet).ok).toBe(true);
      });
    }
  }

  it('non-Buffer Uint8Arrays and empty input are fine too', () => {
    const clock = new FakeClock(500);
    const ring = new SrtpKeyRing(sourceOf(threeEpochs()), { profile: 'AES_CM_128_HMAC_SHA1_80', clock: clock.now, logger: pino({ level: 'silent' }) });
    expect(ring.unprotect(new Uint8Array(0))).toEqual({ ok: false, cause: 'malformed' });
    expect(ring.protect(new Uint8Array(0))).toEqual({ ok: false, cause: 'malformed' });
    const p = ring.protectRtp(new Uint8Array(rtp({ ssrc: 1, seq: 1 })));
    expect(p.ok).toBe(true);
  });

  it('a KeySource that throws or returns junk does not break the ring', () => {
    const clock = new FakeClock(500);
    const epochs = threeEpochs();
    let broken = false;
    const good = sourceOf(epochs);
    const source = {
      keys: (label: string) => {
        if (broken) throw new Error('agent went away');
        return [...good.keys(label), { label, epoch: -1 } as never, { ...good.keys(label)[0]!, label: 'srtp/other' }];
      },
      onChange: (l: () => void) => good.onChange(l),
    };
    const ring = new SrtpKeyRing(source, { profile: 'AES_CM_128_HMAC_SHA1_80', clock: clock.now, logger: pino({ level: 'silent' }) });
    expect(ring.epochs().map((e) => e.epoch)).toEqual([1, 2, 3]);
    broken = true;
    good.set(epochs); // triggers a refresh that throws: keys held stay
    expect(ring.protectRtp(rtp({ ssrc: 1, seq: 1 })).ok).toBe(true);
  });
});
