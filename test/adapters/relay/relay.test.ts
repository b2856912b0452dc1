/**
 * The relay in-process, on loopback sockets, with a fake clock driving rollovers: plain RTP
 * in → encrypting relay → decrypting relay → plain RTP out, byte for byte, no packet lost
 * to keying; and refusals counted by cause.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SrtpRelay, type RelayInit } from '../../../src/adapters/relay/relay.js';
import { SrtpKeyRing } from '../../../src/adapters/srtp/keyRing.js';
import { UsageError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';
import { UdpCollector } from '../../../integration/lib/media.js';
import { FakeClock, sourceOf, threeEpochs } from '../support/ring.js';
import { rtcpRr, rtp } from '../support/rtp.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function collector(): Promise<UdpCollector> {
  const c = await UdpCollector.open();
  cleanups.push(() => c.close());
  return c;
}

async function relay(init: Partial<RelayInit> & Pick<RelayInit, 'mode' | 'to'>, source: ReturnType<typeof sourceOf>, clock: FakeClock): Promise<SrtpRelay> {
  const r = new SrtpRelay(
    { listen: { host: '127.0.0.1', port: 0 }, profile: 'AES_CM_128_HMAC_SHA1_80', mki: false, ...init },
    { keySource: source, clock: clock.now, logger: silentLogger() },
  );
  await r.start();
  cleanups.push(() => r.stop());
  return r;
}

describe('SrtpRelay', () => {
  for (const mki of [false, true]) {
    it(`encrypt → decrypt across two rollovers: every packet arrives, byte for byte (mki ${mki})`, async () => {
      const epochs = threeEpochs();
      const clock = new FakeClock(0);
      const sink = await collector();
      const rtcpSink = await collector();
      const dec = await relay({ mode: 'decrypt', to: { host: '127.0.0.1', port: sink.port }, rtcpTo: { host: '127.0.0.1', port: rtcpSink.port }, mki }, sourceOf(epochs), clock);
      const enc = await relay({ mode: 'encrypt', to: dec.address!, mki }, sourceOf(epochs), clock);
      const app = await collector();
      const sent: Buffer[] = [];
      for (let i = 0; i < 300; i++) {
        clock.t = i * 10; // epochs 1, 2, 3 in turn
        const p = rtp({ ssrc: 0xabc, seq: 65400 + i, payload: Buffer.alloc(1188, i & 0xff) });
        sent.push(p);
        await app.send(p, enc.address!.port);
        if (i % 50 === 0) await app.send(rtcpRr(0xabc, 12), enc.address!.port);
        await sink.waitFor(i + 1, 1000); // lock-step so the fake clock is read per packet
      }
      await rtcpSink.waitFor(6, 1000);
      expect(sink.packets.map((d) => d.data.toString('hex'))).toEqual(sent.map((p) => p.toString('hex')));
      expect(rtcpSink.packets.every((d) => d.data.equals(rtcpRr(0xabc, 12)))).toBe(true);
      expect(rtcpSink.packets.length).toBe(6);
      const e = enc.counters();
      const d = dec.counters();
      expect([e.packetsIn, e.packetsOut, e.rtcpIn]).toEqual([306, 306, 6]);
      expect([d.packetsIn, d.packetsOut]).toEqual([306, 306]);
      expect(Object.values(e.dropped).concat(Object.values(d.dropped)).every((n) => n === 0)).toBe(true);
      expect(d.perEpoch.map((x) => [x.epoch, x.rtpUnprotected])).toEqual([[1, 100], [2, 100], [3, 100]]);
      expect(e.perEpoch.map((x) => x.epoch)).toEqual([1, 2, 3]);
    });
  }

  it('the decrypting relay refuses and counts replayed, tampered, wrong-epoch and garbage packets', async () => {
    const epochs = threeEpochs();
    const clock = new FakeClock(1500); // epoch 2 current; epoch 1 past its grace (1200) but still held
    const sink = await collector();
    const dec = await relay({ mode: 'decrypt', to: { host: '127.0.0.1', port: sink.port } }, sourceOf(epochs), clock);
    const oldClock = new FakeClock(900);
    const oldSender = new SrtpKeyRing(sourceOf(epochs), { profile: 'AES_CM_128_HMAC_SHA1_80', clock: oldClock.now, logger: silentLogger() });
    const sender = new SrtpKeyRing(sourceOf(epochs), { profile: 'AES_CM_128_HMAC_SHA1_80', clock: clock.now, logger: silentLogger() });
    const wire = await collector();
    const good = sender.protectRtp(rtp({ ssrc: 5, seq: 1 }));
    const next = sender.protectRtp(rtp({ ssrc: 5, seq: 2 }));
    const stale = oldSender.protectRtp(rtp({ ssrc: 6, seq: 1 })); // under epoch 1, out of its grace now
    if (!good.ok || !next.ok || !stale.ok) throw new Error('setup');
    const tampered = Buffer.from(next.packet);
    tampered[20]! ^= 0x40; // one payload bit
    for (const p of [good.packet, good.packet, tampered, stale.packet, Buffer.from('not rtp at all')]) await wire.send(p, dec.address!.port);
    const deadline = Date.now() + 2000;
    while (dec.counters().packetsIn < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const c = dec.counters();
    expect([c.packetsIn, c.packetsOut]).toEqual([5, 1]);
    expect(c.dropped).toMatchObject({ replay: 1, auth: 1, expiredEpoch: 1, malformed: 1 });
    expect(sink.packets.length).toBe(1);
  });

  it('counts send errors instead of failing when nobody listens downstream', async () => {
    const clock = new FakeClock(500);
    const gone = await UdpCollector.open();
    const port = gone.port;
    await gone.close();
    const enc = await relay({ mode: 'encrypt', to: { host: '127.0.0.1', port } }, sourceOf(threeEpochs()), clock);
    const app = await collector();
    for (let i = 0; i < 5; i++) {
      await app.send(rtp({ ssrc: 1, seq: i }), enc.address!.port);
      await new Promise((r) => setTimeout(r, 20));
    }
    const c = enc.counters();
    expect(c.packetsIn).toBe(5);
    expect(c.packetsOut + c.dropped.sendError).toBe(5);
    expect(c.dropped.sendError + c.downstreamErrors).toBeGreaterThan(0); // ICMP port unreachable on a connected socket
  });

  it('refuses a second start and reports a port it cannot bind', async () => {
    const clock = new FakeClock(500);
    const taken = await collector();
    const r = await relay({ mode: 'encrypt', to: { host: '127.0.0.1', port: taken.port } }, sourceOf(threeEpochs()), clock);
    await expect(r.start()).rejects.toBeInstanceOf(UsageError);
    const clash = new SrtpRelay(
      { mode: 'encrypt', listen: { host: '127.0.0.1', port: taken.port }, to: { host: '127.0.0.1', port: taken.port }, profile: 'AES_CM_128_HMAC_SHA1_80', mki: false },
      { keySource: sourceOf(threeEpochs()), clock: clock.now, logger: silentLogger() },
    );
    await expect(clash.start()).rejects.toThrow(/cannot open sockets/);
  });
});
