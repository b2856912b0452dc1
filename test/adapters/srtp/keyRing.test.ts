import { describe, expect, it } from 'vitest';
import { RtpHeader, SrtcpSession, SrtpSession } from 'werift-rtp';
import { SRTP_PROFILE_NAMES, srtpProfile, splitMasterKey, type SrtpProfileName } from '../../../src/adapters/srtp/profile.js';
import type { SrtpRingEvent } from '../../../src/adapters/srtp/keyRing.js';
import { deriveKey } from '../../../src/client/keyMaterial.js';
import { groupKeyEpoch } from '../support/keys.js';
import { FakeClock, makeRing, sourceOf, threeEpochs } from '../support/ring.js';
import { rtcpRr, rtp } from '../support/rtp.js';

const SSRC = 0x11223344;

function ok<T extends { ok: boolean }>(r: T): Extract<T, { ok: true }> {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r as Extract<T, { ok: true }>;
}

describe('SrtpKeyRing: switching by time', () => {
  it('sends under the key whose [notBefore, notAfter) holds now, switching at activation', () => {
    const clock = new FakeClock(500);
    const ring = makeRing(sourceOf(threeEpochs()), clock);
    const events: SrtpRingEvent[] = [];
    ring.onEvent((e) => events.push(e));
    expect(ok(ring.protectRtp(rtp({ ssrc: SSRC, seq: 1 }))).epoch).toBe(1);
    clock.t = 999;
    expect(ok(ring.protectRtp(rtp({ ssrc: SSRC, seq: 2 }))).epoch).toBe(1);
    clock.t = 1000;
    expect(ok(ring.protectRtp(rtp({ ssrc: SSRC, seq: 3 }))).epoch).toBe(2);
    expect(events).toContainEqual({ type: 'activated', epoch: 2, previous: 1 });
    expect(ring.epochs().map((e) => [e.epoch, e.state])).toEqual([[1, 'previous'], [2, 'current'], [3, 'next']]);
    clock.t = 1200;
    expect(ring.epochs()[0]!.state).toBe('expired');
    const c = ring.counters();
    expect(c.perEpoch.map((e) => [e.epoch, e.rtpProtected])).toEqual([[1, 2], [2, 1]]);
  });

  it('refuses to send when the current key ended and no next key came (goes dark)', () => {
    const clock = new FakeClock(900);
    const source = sourceOf(threeEpochs().slice(0, 1));
    const ring = makeRing(source, clock);
    expect(ring.protectRtp(rtp({ ssrc: SSRC, seq: 1 })).ok).toBe(true);
    clock.t = 1000;
    expect(ring.protectRtp(rtp({ ssrc: SSRC, seq: 2 }))).toEqual({ ok: false, cause: 'noKey' });
    expect(ring.currentEpoch()).toBeUndefined();
    expect(ring.counters().txDropped.noKey).toBe(1);
  });

  it('holds nothing: sends nothing and receives nothing', () => {
    const clock = new FakeClock(0);
    const ring = makeRing(sourceOf([]), clock);
    expect(ring.protectRtp(rtp({ ssrc: SSRC, seq: 1 }))).toEqual({ ok: false, cause: 'noKey' });
    expect(ring.unprotectRtp(rtp({ ssrc: SSRC, seq: 1 }))).toEqual({ ok: false, cause: 'noKey' });
  });
});

describe('SrtpKeyRing: receivers accept previous through grace and next early', () => {
  for (const mki of [false, true]) {
    it(`previous key until notAfter + grace, then expiredEpoch (mki ${mki})`, () => {
      const epochs = threeEpochs();
      const sendClock = new FakeClock(990);
      const recvClock = new FakeClock(1100);
      const sender = makeRing(sourceOf(epochs), sendClock, { mki });
      const receiver = makeRing(sourceOf(epochs), recvClock, { mki });
      const late = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: 10 })));
      const later = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: 11 })));
      expect(late.epoch).toBe(1);
      expect(ok(receiver.unprotectRtp(late.packet)).epoch).toBe(1); // 100 ms into grace
      recvClock.t = 1200; // notAfter + grace: over
      expect(receiver.unprotectRtp(later.packet)).toEqual({ ok: false, cause: 'expiredEpoch' });
      expect(receiver.counters().rxDropped.expiredEpoch).toBe(1);
    });

    it(`next key before its activation, when a sender's clock runs ahead (mki ${mki})`, () => {
      const epochs = threeEpochs();
      const sender = makeRing(sourceOf(epochs), new FakeClock(1000), { mki });
      const receiver = makeRing(sourceOf(epochs), new FakeClock(900), { mki });
      const early = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: 1 })));
      expect(early.epoch).toBe(2);
      expect(ok(receiver.unprotectRtp(early.packet)).epoch).toBe(2);
    });
  }

  it('loses no packet across a rollover, with senders and receivers at the same clock', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(0);
    const sender = makeRing(sourceOf(epochs), clock);
    const receiver = makeRing(sourceOf(epochs), clock);
    const seen = new Set<number>();
    for (let seq = 0; seq < 3000; seq++) {
      clock.t = seq; // one packet per ms, through epochs 1, 2, 3
      const p = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq })));
      const r = ok(receiver.unprotectRtp(p.packet));
      expect(r.packet.equals(rtp({ ssrc: SSRC, seq }))).toBe(true);
      seen.add(r.epoch);
    }
    expect([...seen]).toEqual([1, 2, 3]);
    const c = receiver.counters();
    expect(c.rtpUnprotected).toBe(3000);
    expect(Object.values(c.rxDropped).every((n) => n === 0)).toBe(true);
  });

  it('a key the receiver never held fails authentication', () => {
    const clock = new FakeClock(500);
    const sender = makeRing(sourceOf(threeEpochs()), clock);
    const receiver = makeRing(sourceOf(threeEpochs()), clock); // other random KGRP2s
    const p = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: 1 })));
    expect(receiver.unprotectRtp(p.packet)).toEqual({ ok: false, cause: 'auth' });
  });

  it('a voided next key is replaced: packets under the void key fail, the fresh one works', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(1500);
    const source = sourceOf(epochs);
    const receiver = makeRing(source, clock);
    const oldSender = makeRing(sourceOf(epochs), new FakeClock(2000));
    const voided = ok(oldSender.protectRtp(rtp({ ssrc: SSRC, seq: 1 })));
    const fresh = groupKeyEpoch(3, { notBefore: 2000, notAfter: 3000, graceMs: 200 });
    source.set([epochs[0]!, epochs[1]!, fresh]);
    const newSender = makeRing(sourceOf([fresh]), new FakeClock(2000));
    expect(receiver.unprotectRtp(voided.packet)).toEqual({ ok: false, cause: 'auth' });
    expect(ok(receiver.unprotectRtp(ok(newSender.protectRtp(rtp({ ssrc: SSRC, seq: 2 }))).packet)).epoch).toBe(3);
  });
});

describe('SrtpKeyRing: MKI', () => {
  for (const profile of SRTP_PROFILE_NAMES) {
    it(`puts the epoch as MKI where libsrtp does, and picks the key by it (${profile})`, () => {
      const epochs = threeEpochs();
      const clock = new FakeClock(1500);
      const sender = makeRing(sourceOf(epochs), clock, { mki: true, profile });
      const receiver = makeRing(sourceOf(epochs), clock, { mki: true, profile });
      const plain = rtp({ ssrc: SSRC, seq: 7 });
      const p = ok(sender.protectRtp(plain)).packet;
      const prof = srtpProfile(profile);
      expect(p.length).toBe(plain.length + prof.tagLength + 4);
      const at = p.length - prof.mkiOffsetFromEnd - 4;
      expect(p.readUInt32BE(at)).toBe(2);
      expect(ok(receiver.unprotectRtp(p)).packet.equals(plain)).toBe(true);

      const unknown = Buffer.from(p);
      unknown.writeUInt32BE(9, at);
      expect(receiver.unprotectRtp(unknown)).toEqual({ ok: false, cause: 'unknownMki' });
      const wrongKey = Buffer.from(ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: 8 }))).packet);
      wrongKey.writeUInt32BE(3, at); // names the next key, which did not protect it
      expect(receiver.unprotectRtp(wrongKey)).toEqual({ ok: false, cause: 'auth' });
    });
  }

  it('a ring without MKI cannot read packets with one, and vice versa', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(500);
    const withMki = makeRing(sourceOf(epochs), clock, { mki: true });
    const without = makeRing(sourceOf(epochs), clock);
    expect(without.unprotectRtp(ok(withMki.protectRtp(rtp({ ssrc: SSRC, seq: 1 }))).packet).ok).toBe(false);
    expect(withMki.unprotectRtp(ok(without.protectRtp(rtp({ ssrc: SSRC, seq: 2 }))).packet).ok).toBe(false);
  });
});

describe('SrtpKeyRing: replay (RFC 3711 §3.3.2) and sequence wrap', () => {
  it('refuses replays and packets behind the window; accepts reordering inside it', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(100);
    const sender = makeRing(sourceOf(epochs), clock);
    const receiver = makeRing(sourceOf(epochs), clock, { replayWindowSize: 64 });
    const packets = Array.from({ length: 200 }, (_, seq) => ok(sender.protectRtp(rtp({ ssrc: SSRC, seq }))).packet);
    expect(receiver.unprotectRtp(packets[0]!).ok).toBe(true);
    expect(receiver.unprotectRtp(packets[0]!)).toEqual({ ok: false, cause: 'replay' });
    expect(receiver.unprotectRtp(packets[150]!).ok).toBe(true);
    expect(receiver.unprotectRtp(packets[87]!).ok).toBe(true); // 150 - 87 = 63: inside
    expect(receiver.unprotectRtp(packets[86]!)).toEqual({ ok: false, cause: 'replay' }); // 64: behind
    expect(receiver.unprotectRtp(packets[87]!)).toEqual({ ok: false, cause: 'replay' });
    expect(receiver.counters().rxDropped.replay).toBe(3);
  });

  it('the sender refuses to protect one index twice under a key (keystream reuse)', () => {
    const clock = new FakeClock(100);
    const sender = makeRing(sourceOf(threeEpochs()), clock);
    expect(sender.protectRtp(rtp({ ssrc: SSRC, seq: 5 })).ok).toBe(true);
    expect(sender.protectRtp(rtp({ ssrc: SSRC, seq: 5, payload: Buffer.alloc(160, 1) }))).toEqual({ ok: false, cause: 'replay' });
    clock.t = 1000; // a new key: the same sequence number is a new index
    expect(sender.protectRtp(rtp({ ssrc: SSRC, seq: 5 })).ok).toBe(true);
  });

  it('crosses a sequence wrap (ROC 0 → 1), in order and with reordering, and bare werift agrees', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(100);
    const sender = makeRing(sourceOf(epochs), clock);
    const receiver = makeRing(sourceOf(epochs), clock);
    const { masterKey, masterSalt } = splitMasterKey(srtpProfile('AES_CM_128_HMAC_SHA1_80'), deriveKey(epochs[0]!, 'srtp/AES_CM_128_HMAC_SHA1_80').key);
    const bare = new SrtpSession({ keys: { localMasterKey: masterKey, localMasterSalt: masterSalt, remoteMasterKey: masterKey, remoteMasterSalt: masterSalt }, profile: 1 });
    const seqs = Array.from({ length: 300 }, (_, i) => (65400 + i) & 0xffff);
    const wire = seqs.map((seq) => ok(sender.protectRtp(rtp({ ssrc: SSRC, seq }))).packet);
    for (const w of wire) expect(bare.decrypt(w).length).toBeGreaterThan(12); // werift, in order
    // Swap pairs around the wrap point: 65535 arrives after 0.
    const order = wire.map((_, i) => i);
    const wrapAt = seqs.indexOf(0);
    [order[wrapAt - 1], order[wrapAt]] = [order[wrapAt]!, order[wrapAt - 1]!];
    for (const i of order) expect(ok(receiver.unprotectRtp(wire[i]!)).packet.readUInt16BE(2)).toBe(seqs[i]);
  });

  it('a receiver joining after the sender wrapped once under a key still decodes (ROC 1 probe)', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(100);
    const sender = makeRing(sourceOf(epochs), clock);
    const receiver = makeRing(sourceOf(epochs), clock);
    let last!: Buffer;
    for (let i = 0; i < 70000; i += 1000) last = ok(sender.protectRtp(rtp({ ssrc: SSRC, seq: (30000 + i) & 0xffff }))).packet;
    expect(ok(receiver.unprotectRtp(last)).packet.readUInt16BE(2)).toBe((30000 + 69000) & 0xffff);
  });
});

describe('SrtpKeyRing: interop with bare werift-rtp and byte-exact headers', () => {
  for (const profile of SRTP_PROFILE_NAMES) {
    it(`werift SrtpSession ⇄ ring, RTP and RTCP (${profile})`, () => {
      const epochs = threeEpochs();
      const prof = srtpProfile(profile as SrtpProfileName);
      const { masterKey, masterSalt } = splitMasterKey(prof, deriveKey(epochs[0]!, prof.label).key);
      const keys = { localMasterKey: masterKey, localMasterSalt: masterSalt, remoteMasterKey: masterKey, remoteMasterSalt: masterSalt };
      const bare = new SrtpSession({ keys, profile: prof.weriftProfile });
      const bareRtcp = new SrtcpSession({ keys, profile: prof.weriftProfile });
      const clock = new FakeClock(10);
      const ring = makeRing(sourceOf(epochs), clock, { profile });
      const payload = Buffer.alloc(1188, 7);
      const fromWerift = bare.encrypt(payload, new RtpHeader({ ssrc: SSRC, sequenceNumber: 1000, timestamp: 1, payloadType: 96 }));
      const r = ok(ring.unprotectRtp(fromWerift));
      expect(r.packet.subarray(12).equals(payload)).toBe(true);
      const fromRing = ok(ring.protectRtp(rtp({ ssrc: 0x55, seq: 9, payload }))).packet;
      expect(bare.decrypt(fromRing).subarray(12).equals(payload)).toBe(true);

      const rr = rtcpRr(0x77, 16);
      expect(ok(ring.unprotectRtcp(bareRtcp.encrypt(rr))).packet.equals(rr)).toBe(true);
      expect(bareRtcp.decrypt(ok(ring.protectRtcp(rr)).packet).equals(rr)).toBe(true);
    });
  }

  it('keeps CSRCs and header extensions byte for byte', () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(10);
    const a = makeRing(sourceOf(epochs), clock);
    const b = makeRing(sourceOf(epochs), clock);
    // A one-byte extension with an id-15 element werift's own parser would stop at (RFC 8285 §4.2).
    const ext = { profile: 0xbede, body: Buffer.from('10aaf0001ccccccc', 'hex') };
    const plain = rtp({ ssrc: SSRC, seq: 3, csrcs: [1, 2], extension: ext, payload: Buffer.from('hello') });
    const p = ok(a.protectRtp(plain)).packet;
    expect(p.subarray(0, 12 + 8 + 12).equals(plain.subarray(0, 32))).toBe(true);
    expect(ok(b.unprotectRtp(p)).packet.equals(plain)).toBe(true);
  });
});

describe('SrtpKeyRing: SRTCP', () => {
  for (const profile of SRTP_PROFILE_NAMES) {
    for (const mki of [false, true]) {
      it(`protects and unprotects RTCP across a rollover, refuses replays (${profile}, mki ${mki})`, () => {
        const epochs = threeEpochs();
        const clock = new FakeClock(900);
        const a = makeRing(sourceOf(epochs), clock, { profile, mki });
        const b = makeRing(sourceOf(epochs), clock, { profile, mki });
        const rr = rtcpRr(SSRC, 8);
        const p1 = ok(a.protect(rr));
        expect(p1.epoch).toBe(1);
        clock.t = 1100;
        const p2 = ok(a.protect(rr));
        expect(p2.epoch).toBe(2);
        expect(ok(b.unprotect(p1.packet)).epoch).toBe(1);
        expect(ok(b.unprotect(p2.packet)).packet.equals(rr)).toBe(true);
        expect(b.unprotect(p2.packet)).toEqual({ ok: false, cause: 'replay' });
        const tampered = Buffer.from(ok(a.protect(rr)).packet);
        tampered[9]! ^= 1;
        expect(b.unprotect(tampered)).toEqual({ ok: false, cause: 'auth' });
        const c = b.counters();
        expect([c.rtcpUnprotected, c.rxDropped.replay, c.rxDropped.auth]).toEqual([2, 1, 1]);
      });
    }
  }
});
