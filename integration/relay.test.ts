/**
 * The hitless relay with real tools, keys rolling every 2 s (lead 1 s, grace 1 s):
 *
 *   ffmpeg ──plain RTP──▶ tap ──▶ relay (encrypt, MKI) ──SRTP──▶ tap ─┬─▶ relay (decrypt) ──plain──▶ gst-launch (PCMU → raw)
 *                                                                  └─▶ gst-launch srtpdec (every epoch's key in caps, by MKI)
 *
 * Neither ffmpeg nor gst-launch can change a key while running; through the relay both ends
 * keep decoding across ≥3 rollovers, and every sample ffmpeg sent is decoded, by both
 * receivers. Replayed, tampered, expired-epoch and unknown-MKI packets injected into the
 * decrypting relay are refused and counted.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SrtpRelay } from '../src/adapters/relay/relay.js';
import { gstSrtpCapsFields } from '../src/adapters/srtp/keyFormats.js';
import { SrtpKeyRing } from '../src/adapters/srtp/keyRing.js';
import { isRtcp } from '../src/adapters/srtp/rtpPacket.js';
import { deriveKey } from '../src/client/keyMaterial.js';
import { silentLogger } from '../src/util/log.js';
import { GroupKeyTable, RollingKeySource } from '../test/adapters/support/keys.js';
import { rtp } from '../test/adapters/support/rtp.js';
import {
  UdpCollector,
  decodeMulaw,
  ffmpeg,
  freeUdpPort,
  gstLaunch,
  readS16le,
  requireGstElements,
  requireTool,
  runningCount,
  scratchDir,
  stopAll,
  waitExit,
  waitUdpBound,
} from './lib/media.js';

const SSRC = 0x11223344;
const PERIOD = 2000;
const LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';
const STREAM_SECONDS = 8;

let dir: { path: string; cleanup(): void };
const sources: RollingKeySource[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(() => {
  requireTool('gst-launch-1.0');
  requireTool('ffmpeg');
  requireGstElements('srtpdec', 'rtppcmudepay', 'mulawdec', 'udpsrc', 'filesink');
  dir = scratchDir();
});
afterEach(async () => {
  await stopAll();
  for (const c of closers.splice(0).reverse()) await c();
  for (const s of sources.splice(0)) s.stop();
});
afterAll(async () => {
  await stopAll();
  expect(runningCount()).toBe(0);
  dir?.cleanup();
});

function pcmuReceiver(port: number, capsHead: string, decoder: string[], out: string) {
  return gstLaunch([
    'udpsrc', 'address=127.0.0.1', `port=${port}`,
    `caps=${capsHead},media=(string)audio,clock-rate=(int)8000,encoding-name=(string)PCMU,payload=(int)0,ssrc=(uint)${SSRC}`,
    '!', ...decoder, 'rtppcmudepay', '!', 'mulawdec', '!', 'audio/x-raw,format=S16LE', '!', 'filesink', `location=${out}`,
  ]);
}

describe('SRTP relay with ffmpeg and GStreamer across key rollovers', () => {
  it('decodes every sample through ≥3 rollovers (2 s period) and refuses bad packets by cause', async () => {
    // Epoch 1 began 1 s ago: rollovers 1, 3, 5 and 7 s into the 8 s stream.
    const table = new GroupKeyTable({ t0: Date.now() - 1000, periodMs: PERIOD, leadMs: 1000, graceMs: 1000, firstEpoch: 1 });
    const epochs = [1, 2, 3, 4, 5, 6, 7].map((n) => deriveKey(table.get(n), LABEL));
    const member = (): RollingKeySource => {
      const s = new RollingKeySource(table);
      sources.push(s);
      return s;
    };

    // Receivers first: plain gst behind the decrypting relay, and gst srtpdec holding every epoch's key.
    const [plainPort, srtpdecPort] = [await freeUdpPort(), await freeUdpPort()];
    const plainOut = join(dir.path, 'relay-plain.raw');
    const srtpOut = join(dir.path, 'relay-srtpdec.raw');
    const gstPlain = pcmuReceiver(plainPort, 'application/x-rtp', [], plainOut);
    const srtpCaps = gstSrtpCapsFields('AES_CM_128_HMAC_SHA1_80', epochs.map((k) => ({ key: k.key, mki: k.mki })));
    const gstSrtp = pcmuReceiver(srtpdecPort, `application/x-srtp,${srtpCaps}`, ['srtpdec', '!'], srtpOut);
    await waitUdpBound(plainPort, gstPlain);
    await waitUdpBound(srtpdecPort, gstSrtp);

    const rtcpSink = await UdpCollector.open();
    closers.push(() => rtcpSink.close());
    const dec = new SrtpRelay(
      { mode: 'decrypt', listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: plainPort }, rtcpTo: { host: '127.0.0.1', port: rtcpSink.port }, profile: 'AES_CM_128_HMAC_SHA1_80', mki: true },
      { keySource: member(), logger: silentLogger() },
    );
    const decAddr = await dec.start();
    closers.push(() => dec.stop());

    // The SRTP wire: forward to the decrypting relay and (RTP only) to srtpdec; keep copies.
    const wireSeen: Buffer[] = [];
    const wire = await UdpCollector.open((d) => {
      wireSeen.push(d.data);
      void wire.send(d.data, decAddr.port);
      if (!isRtcp(d.data)) void wire.send(d.data, srtpdecPort);
    });
    closers.push(() => wire.close());
    const enc = new SrtpRelay(
      { mode: 'encrypt', listen: { host: '127.0.0.1', port: 0 }, to: { host: '127.0.0.1', port: wire.port }, profile: 'AES_CM_128_HMAC_SHA1_80', mki: true },
      { keySource: member(), logger: silentLogger() },
    );
    const encAddr = await enc.start();
    closers.push(() => enc.stop());

    // What ffmpeg sends, recorded on its way into the encrypting relay.
    const sentPayload: Buffer[] = [];
    const plainTap = await UdpCollector.open((d) => {
      if (!isRtcp(d.data)) sentPayload.push(d.data.subarray(12));
      void plainTap.send(d.data, encAddr.port);
    });
    closers.push(() => plainTap.close());

    const ff = ffmpeg([
      '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=8000:samples_per_frame=160', '-t', String(STREAM_SECONDS),
      '-c:a', 'pcm_mulaw', '-f', 'rtp', '-ssrc', String(SSRC), '-seq', '1000', `rtp://127.0.0.1:${plainTap.port}?rtcpport=${plainTap.port}`,
    ]);

    // Meanwhile, inject bad packets into the decrypting relay once the stream has rolled twice.
    const attacker = await UdpCollector.open();
    closers.push(() => attacker.close());
    const injected = (async () => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const n = table.epochAt(Date.now());
        const into = Date.now() - table.get(n).notBefore;
        // Second half of epoch n: n-1 is held but past its grace; n-3 is no longer held at all.
        if (n >= 4 && into > 1200 && into < 1700 && wireSeen.length > 10) break;
        await sleep(20);
      }
      const n = table.epochAt(Date.now());
      const forge = (epochTime: number, ssrc: number, seq: number): Buffer => {
        const ring = new SrtpKeyRing(new RollingKeySource(table, () => epochTime), { profile: 'AES_CM_128_HMAC_SHA1_80', mki: true, clock: () => epochTime, logger: silentLogger() });
        const r = ring.protectRtp(rtp({ ssrc, seq }));
        ring.close();
        if (!r.ok) throw new Error(`cannot forge: ${r.cause}`);
        return r.packet;
      };
      const replayed = wireSeen.filter((p) => !isRtcp(p)).at(-5)!; // 100 ms old: already through, same epoch
      const tampered = Buffer.from(forge(Date.now(), 0x0badf00d, 7));
      tampered[30]! ^= 0x01;
      const expired = forge(table.get(n - 1).notBefore + 10, 0x0badf00d, 8);
      const unknown = forge(table.get(n - 3).notBefore + 10, 0x0badf00d, 9);
      for (const p of [replayed, tampered, expired, unknown]) await attacker.send(p, decAddr.port);
    })();

    const ffExit = await waitExit(ff, (STREAM_SECONDS + 10) * 1000);
    expect(ffExit.exitCode, ff.output()).toBe(0);
    await injected;
    // Let the last packets drain through both relays, then end the receivers (EOS finalizes the files).
    let last = -1;
    for (let i = 0; i < 50 && dec.counters().packetsIn !== last; i++) {
      last = dec.counters().packetsIn;
      await sleep(100);
    }
    expect((await gstPlain.stop()).exitCode, gstPlain.output()).toBe(0);
    expect((await gstSrtp.stop()).exitCode, gstSrtp.output()).toBe(0);

    const sent = Buffer.concat(sentPayload);
    const e = enc.counters();
    const d = dec.counters();
    const epochsUsed = e.perEpoch.filter((x) => x.rtpProtected > 0).map((x) => x.epoch);
    const report = { sentPackets: sentPayload.length, sentBytes: sent.length, epochsUsed, enc: enc.summary(), dec: dec.summary() };

    if (process.env.IOLUS_TEST_VERBOSE) process.stdout.write(`relay report: ${JSON.stringify(report)}\n`);
    expect(sentPayload.length, JSON.stringify(report)).toBeGreaterThanOrEqual(STREAM_SECONDS * 50 - 5);
    expect(epochsUsed.length, JSON.stringify(report)).toBeGreaterThanOrEqual(4); // ≥3 rollovers
    // Nothing lost to keying: the encrypting relay protected every packet, the decrypting relay
    // passed every one, and the only drops are the four injected packets.
    expect(Object.values(e.dropped).every((n) => n === 0), JSON.stringify(report)).toBe(true);
    expect(e.rtpIn).toBe(sentPayload.length);
    expect(d.ring.rtpUnprotected).toBe(sentPayload.length);
    expect(d.dropped).toMatchObject({ replay: 1, auth: 1, expiredEpoch: 1, unknownMki: 1, malformed: 0, noKey: 0, sendError: 0 });
    expect(d.ring.rtcpUnprotected).toBeGreaterThanOrEqual(1);
    expect(rtcpSink.packets.length).toBe(d.ring.rtcpUnprotected);
    expect(d.perEpoch.filter((x) => x.rtpUnprotected > 0).map((x) => x.epoch)).toEqual(epochsUsed);

    // Sent equals decoded, sample for sample, at both receivers.
    const expected = decodeMulaw(sent);
    for (const [name, file] of [['gst behind the decrypting relay', plainOut], ['gst srtpdec', srtpOut]] as const) {
      const got = readS16le(file);
      expect(got.length, `${name}: ${JSON.stringify(report)}`).toBe(expected.length);
      expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer)), name).toBe(true);
    }
  });
});
