/**
 * Media keyed from a running key service: `iolus keyd` (a controller and an intermediary,
 * KGRP2 every 2 s, lead 1 s, grace 1 s) and local agents (`iolus agent`) as real processes,
 * GStreamer 1.22 and ffmpeg 5.1 started by the pipeline launchers (src/adapters/pipeline).
 *
 * - our key ring (werift) → GStreamer srtpdec and → ffmpeg (SDP a=crypto), direct mode: the
 *   receivers restart at each rollover and decode every epoch; the restart gap is measured;
 * - GStreamer srtpenc and ffmpeg srtp:// (direct mode) → our receiver decrypts every epoch;
 * - relay mode both ways (ffmpeg → gst-launch, gst-launch → ffmpeg): every frame decoded
 *   across ≥3 rollovers;
 * - an expelled receiver decodes nothing from the first epoch after its expulsion, counted per
 *   epoch, by a GStreamer receiver and by our key ring, while the other receiver carries on;
 * - replayed, tampered and wrong-epoch packets are refused and counted by our receiver.
 */
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineLauncher, type PipelineCounters } from '../src/adapters/pipeline/launcher.js';
import { freeUdpPort } from '../src/adapters/pipeline/ports.js';
import { guardedGroups } from '../src/adapters/pipeline/watchdog.js';
import { SrtpKeyRing } from '../src/adapters/srtp/keyRing.js';
import { isRtcp } from '../src/adapters/srtp/rtpPacket.js';
import type { DerivedKey, KeySource } from '../src/client/keyMaterial.js';
import { openKeySource } from '../src/client/localAgent/agentClient.js';
import { silentLogger } from '../src/util/log.js';
import { rtp } from '../test/adapters/support/rtp.js';
import { liveServiceProcesses, startKeyService, stopKeyServices, until } from './lib/keyService.js';
import { mulawSine, requireGstElements, requireTool, waitUdpBound } from './lib/media.js';
import type { LocalKeyService } from '../samples/vic-like/deployment.js';

const PERIOD = 2000;
const LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';
const PROFILE = 'AES_CM_128_HMAC_SHA1_80' as const;

let ks: LocalKeyService;
const launchers: PipelineLauncher[] = [];
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  requireTool('gst-launch-1.0');
  requireTool('ffmpeg');
  requireGstElements('srtpenc', 'srtpdec', 'rtpjpegpay', 'rtpjpegdepay', 'jpegenc', 'jpegdec', 'rtppcmupay', 'rtppcmudepay', 'mulawenc', 'mulawdec', 'videotestsrc', 'audiotestsrc', 'fdsink');
  ks = await startKeyService({ periodMs: PERIOD, leadMs: 1000, graceMs: 1000, intermediaries: 1 });
  await Promise.all([ks.agent('tx'), ks.agent('rx1'), ks.agent('rx2', 'gsi-1'), ks.agent('rx3', 'gsi-1')]);
});

afterAll(async () => {
  await Promise.all(launchers.map((l) => l.stop()));
  for (const c of closers.splice(0).reverse()) await c();
  await stopKeyServices();
  expect(guardedGroups()).toEqual([]);
  expect(liveServiceProcesses()).toBe(0);
});

function launcher(...args: ConstructorParameters<typeof PipelineLauncher>): PipelineLauncher {
  const l = new PipelineLauncher(args[0], { logger: silentLogger(), ...args[1] });
  launchers.push(l);
  return l;
}

async function keySource(agent: string): Promise<KeySource & { close(): void }> {
  const s = await openKeySource(ks.group, { socketPath: ks.socketPath(agent) });
  await s.prime(LABEL);
  closers.push(() => s.close());
  return s;
}

/** Our key ring as a sender of PCMU (20 ms packets) keyed by agent `agent`, to several ports. */
class RingSender {
  readonly sentPerEpoch = new Map<number, number>();
  readonly ring: SrtpKeyRing;
  private readonly sock = dgram.createSocket('udp4');
  private seq = Math.floor(Math.random() * 60000);
  private stopped = false;

  constructor(source: KeySource, readonly ssrc: number, private readonly ports: () => number[], mki = false) {
    this.ring = new SrtpKeyRing(source, { profile: PROFILE, mki, logger: silentLogger() });
    closers.push(() => this.stop());
  }

  /** Sends for `ms`, one packet every 20 ms (paced against the clock). */
  async run(ms: number): Promise<void> {
    const audio = mulawSine(160 * 50);
    const start = Date.now();
    for (let i = 0; !this.stopped && Date.now() - start < ms; i++) {
      const plain = rtp({ ssrc: this.ssrc, seq: this.seq++, timestamp: i * 160, payloadType: 0, payload: audio.subarray((i % 50) * 160, (i % 50 + 1) * 160) });
      const r = this.ring.protectRtp(plain);
      if (r.ok) {
        this.sentPerEpoch.set(r.epoch, (this.sentPerEpoch.get(r.epoch) ?? 0) + 1);
        for (const p of this.ports()) this.sock.send(r.packet, p, '127.0.0.1');
      }
      const wait = start + (i + 1) * 20 - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.ring.close();
    this.sock.close();
  }
}

/** Our key ring as a receiver keyed by agent `agent`: counts per epoch and per SSRC, arrival times per SSRC and epoch. */
class RingReceiver {
  readonly ring: SrtpKeyRing;
  readonly arrivals = new Map<number, { epoch: number; at: number }[]>();
  private readonly sock = dgram.createSocket('udp4');

  private constructor(source: KeySource, mki: boolean) {
    this.ring = new SrtpKeyRing(source, { profile: PROFILE, mki, logger: silentLogger() });
  }

  static async open(source: KeySource, mki = false): Promise<RingReceiver> {
    const r = new RingReceiver(source, mki);
    await new Promise<void>((resolve) => r.sock.bind(0, '127.0.0.1', () => resolve()));
    r.sock.on('message', (msg, rinfo) => {
      const out = r.ring.unprotect(msg, `${rinfo.address}:${rinfo.port}`);
      if (out.ok && !isRtcp(msg)) {
        const list = r.arrivals.get(out.ssrc) ?? [];
        list.push({ epoch: out.epoch, at: Date.now() });
        r.arrivals.set(out.ssrc, list);
      }
    });
    closers.push(() => r.close());
    return r;
  }

  get port(): number {
    return this.sock.address().port;
  }

  /** RTP packets decrypted per epoch. */
  perEpoch(): Map<number, number> {
    return new Map(this.ring.counters().perEpoch.map((e) => [e.epoch, e.rtpUnprotected]));
  }

  /** Epoch switches of one SSRC: the time from its last packet under one epoch to its first under the next. */
  switches(ssrc: number): { from: number; to: number; gapMs: number }[] {
    const out: { from: number; to: number; gapMs: number }[] = [];
    const list = this.arrivals.get(ssrc) ?? [];
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      if (b.epoch !== a.epoch) out.push({ from: a.epoch, to: b.epoch, gapMs: b.at - a.at });
    }
    return out;
  }

  close(): void {
    this.ring.close();
    try {
      this.sock.close();
    } catch {
      /* closed */
    }
  }
}

function epochsWithFrames(c: PipelineCounters): number[] {
  return c.perEpoch.filter((e) => e.frames > 0).map((e) => e.epoch);
}

describe('direct mode: the tool holds the key, restarted at each rollover', () => {
  it('our ring → GStreamer srtpdec and → ffmpeg (SDP a=crypto), keyed by the service: every epoch decodes; the restart gap is measured', async () => {
    const ssrc = 0x5eed0001;
    const [gstPort, ffPort] = [await freeUdpPort(), await freeUdpPort('127.0.0.1', true)];
    const common = { role: 'receive', mode: 'direct', media: 'audio', group: ks.group, ssrc, socket: ks.socketPath('rx1') } as const;
    const gst = launcher({ ...common, tool: 'gst', listen: `127.0.0.1:${gstPort}` });
    const ff = launcher({ ...common, tool: 'ffmpeg', listen: `127.0.0.1:${ffPort}` });
    await Promise.all([gst.start(), ff.start()]);
    await Promise.all([waitUdpBound(gstPort), waitUdpBound(ffPort)]);
    const sender = new RingSender(await keySource('tx'), ssrc, () => [gstPort, ffPort]);
    await sender.run(7500);
    await sleep(300);
    const [g, f] = [gst.counters(), ff.counters()];
    await Promise.all([gst.stop(), ff.stop()]);

    const sent = [...sender.sentPerEpoch].sort((a, b) => a[0] - b[0]);
    expect(sent.length, 'epochs the sender used').toBeGreaterThanOrEqual(4);
    for (const c of [g, f]) {
      expect(c.error, JSON.stringify(c)).toBeUndefined();
      expect(c.restarts).toBeGreaterThanOrEqual(3);
      // Every epoch the sender used for more than a restart's worth (0.5 s) decoded something, in
      // the run keyed for it; none decoded more than was sent.
      for (const [epoch, n] of sent) {
        const got = c.perEpoch.find((e) => e.epoch === epoch)?.frames ?? 0;
        if (n >= 25) expect(got, `${c.tool} epoch ${epoch}: ${got} of ${n}`).toBeGreaterThan(0);
        expect(got).toBeLessThanOrEqual(n);
      }
      expect(c.srtpFailures, `${c.tool}: packets its SRTP refused`).toBeLessThan(10);
      const total = sent.reduce((s, [, n]) => s + n, 0);
      // What a restart costs: packets lost around each rollover.
      expect(c.frames, `${c.tool} decoded ${c.frames} of ${total}`).toBeGreaterThan(total * 0.6);
      expect(c.restartGaps.length).toBeGreaterThanOrEqual(3);
      for (const gap of c.restartGaps) expect(gap.gapMs).toBeLessThan(PERIOD);
      console.log(`direct ${c.tool} receiver: decoded ${c.frames}/${total} packets; restart gaps (ms): ${c.restartGaps.map((x) => x.gapMs).join(', ')}; packets lost per restart: ${c.restartGaps.map((x) => x.frames).join(', ')}`);
    }
  });

  it('GStreamer srtpenc and ffmpeg srtp:// (restarted per epoch) → our receiver decrypts every epoch, nothing refused', async () => {
    const rx = await RingReceiver.open(await keySource('rx1'));
    const [gstSsrc, ffSsrc] = [0x6a500001, 0x6a500002];
    const common = { role: 'send', mode: 'direct', media: 'audio', group: ks.group, socket: ks.socketPath('tx'), to: `127.0.0.1:${rx.port}` } as const;
    const gst = launcher({ ...common, tool: 'gst', ssrc: gstSsrc });
    const ff = launcher({ ...common, tool: 'ffmpeg', ssrc: ffSsrc });
    await Promise.all([gst.start(), ff.start()]);
    await sleep(7500);
    const [g, f] = [gst.counters(), ff.counters()];
    await Promise.all([gst.stop(), ff.stop()]);
    await sleep(100);

    const c = rx.ring.counters();
    expect(g.error ?? f.error).toBeUndefined();
    expect(g.restarts).toBeGreaterThanOrEqual(3);
    expect(f.restarts).toBeGreaterThanOrEqual(3);
    expect(c.rxDropped.auth, JSON.stringify(c.rxDropped)).toBe(0);
    expect(c.rxDropped.replay).toBe(0);
    for (const [name, ssrc, runs] of [['gst', gstSsrc, g.runs], ['ffmpeg', ffSsrc, f.runs]] as const) {
      const epochs = new Set((rx.arrivals.get(ssrc) ?? []).map((a) => a.epoch));
      // Each run of the sender is one epoch; each decrypted at our end under that epoch's key.
      for (const r of runs.slice(1, -1)) expect(epochs.has(r.epoch!), `${name}: epoch ${r.epoch} received`).toBe(true);
      const sw = rx.switches(ssrc);
      expect(sw.length).toBeGreaterThanOrEqual(3);
      for (const s of sw) expect(s.to).toBeGreaterThan(s.from);
      console.log(`direct ${name} sender: restart gaps at our receiver (ms): ${sw.map((s) => s.gapMs).join(', ')} (one packet every 20 ms)`);
    }
  });
});

describe('relay mode: plain RTP to an in-process relay that follows rollovers', () => {
  it('ffmpeg → GStreamer and GStreamer → ffmpeg, video through ≥3 rollovers: every frame decoded, none lost to keying', async () => {
    const frames = 70; // 7 s at 10 fps
    const [gstRxPort, ffRxPort] = [await freeUdpPort(), await freeUdpPort()];
    const rxCommon = { role: 'receive', mode: 'relay', media: 'video', group: ks.group, socket: ks.socketPath('rx3') } as const;
    const gstRx = launcher({ ...rxCommon, tool: 'gst', listen: `127.0.0.1:${gstRxPort}` });
    const ffRx = launcher({ ...rxCommon, tool: 'ffmpeg', listen: `127.0.0.1:${ffRxPort}` });
    await Promise.all([gstRx.start(), ffRx.start()]);
    const txCommon = { role: 'send', mode: 'relay', media: 'video', group: ks.group, socket: ks.socketPath('tx'), frames } as const;
    const ffTx = launcher({ ...txCommon, tool: 'ffmpeg', to: `127.0.0.1:${gstRxPort}`, ssrc: 0x7e1a0001 });
    const gstTx = launcher({ ...txCommon, tool: 'gst', to: `127.0.0.1:${ffRxPort}`, ssrc: 0x7e1a0002, pattern: 1 });
    await Promise.all([ffTx.start(), gstTx.start()]);
    await Promise.all([ffTx.done, gstTx.done]);
    // The receiving tools report decoded frames with some lag (ffmpeg prints its progress every
    // ~0.5 s): give them up to 5 s to report the last ones; the assertions below say what is missing.
    await until('the receivers to report every frame', () => gstRx.counters().frames >= frames && ffRx.counters().frames >= frames - 1, 5_000, 100).catch(() => undefined);
    await sleep(300);
    const [g, f, ft, gt] = [gstRx.counters(), ffRx.counters(), ffTx.counters(), gstTx.counters()];
    await Promise.all([gstRx.stop(), ffRx.stop()]);

    for (const tx of [ft, gt]) {
      expect(tx.state).toBe('done');
      expect(new Set(tx.relay!.perEpoch.filter((e) => e.rtpProtected > 0).map((e) => e.epoch)).size, 'epochs sent under').toBeGreaterThanOrEqual(4);
      expect(tx.relay!.dropped.noKey).toBe(0);
    }
    for (const rx of [g, f]) {
      expect(rx.error).toBeUndefined();
      const drops = Object.values(rx.relay!.dropped).reduce((a, b) => a + b, 0);
      expect(drops, JSON.stringify(rx.relay!.dropped)).toBe(0);
      expect(rx.relay!.perEpoch.filter((e) => e.rtpUnprotected > 0).length).toBeGreaterThanOrEqual(4);
    }
    // RTP packets: every one the sending relay protected was unprotected by the receiving relay.
    expect(g.relay!.ring.rtpUnprotected).toBe(ft.relay!.ring.rtpProtected);
    expect(f.relay!.ring.rtpUnprotected).toBe(gt.relay!.ring.rtpProtected);
    // Frames: gst-launch decodes all; ffmpeg holds its last frame until the next arrives.
    expect(g.frames).toBe(frames);
    expect(f.frames).toBeGreaterThanOrEqual(frames - 1);
    expect(epochsWithFrames(g).length).toBeGreaterThanOrEqual(3);
  });
});

describe('expulsion', () => {
  it('an expelled receiver decodes nothing from the first epoch after its expulsion; the other carries on', async () => {
    const ssrc = 0x0e1e0001;
    const [p1, p2] = [await freeUdpPort(), await freeUdpPort()];
    const common = { role: 'receive', tool: 'gst', mode: 'direct', media: 'audio', group: ks.group, ssrc, 'key-wait': 30 } as const;
    const keep = launcher({ ...common, listen: `127.0.0.1:${p1}`, socket: ks.socketPath('rx1') });
    const gone = launcher({ ...common, listen: `127.0.0.1:${p2}`, socket: ks.socketPath('rx2') });
    await Promise.all([keep.start(), gone.start()]);
    await Promise.all([waitUdpBound(p1), waitUdpBound(p2)]);
    // Our key ring too, keyed by each agent: rx2's keeps every key it held before the expulsion.
    const [ring1, ring2] = [await RingReceiver.open(await keySource('rx1')), await RingReceiver.open(await keySource('rx2'))];
    const sender = new RingSender(await keySource('tx'), ssrc, () => [p1, p2, ring1.port, ring2.port]);
    const sending = sender.run(9000);

    // Expel rx2 shortly after a rollover (t ≈ 3 s in), so the pending key is made after it.
    await sleep(2500);
    await new Promise<void>((resolve) => {
      const off = sender.ring.onEvent((e) => {
        if (e.type === 'activated') {
          off();
          resolve();
        }
      });
    });
    await sleep(150);
    const expelledIn = sender.ring.currentEpoch()!;
    const x = await ks.expel('rx2');
    await sending;
    await sleep(300);
    const [k, gc] = [keep.counters(), gone.counters()];
    await Promise.all([keep.stop(), gone.stop()]);

    const after = [...sender.sentPerEpoch.keys()].filter((e) => e > expelledIn).sort((a, b) => a - b);
    expect(after.length, 'epochs after the expulsion').toBeGreaterThanOrEqual(2);
    const decoded = (c: PipelineCounters, e: number) => c.perEpoch.find((p) => p.epoch === e)?.frames ?? 0;
    const report = (e: number) => `epoch ${e}: sent ${sender.sentPerEpoch.get(e)}, rx1 gst ${decoded(k, e)} ring ${ring1.perEpoch().get(e) ?? 0}, rx2 gst ${decoded(gc, e)} ring ${ring2.perEpoch().get(e) ?? 0}`;
    console.log(`expelled rx2 (member ${x.memberId} at ${x.at}) in epoch ${expelledIn}\n  ${[...sender.sentPerEpoch.keys()].sort((a, b) => a - b).map(report).join('\n  ')}`);
    // Before: both decoded the epoch of the expulsion.
    expect(decoded(gc, expelledIn)).toBeGreaterThan(0);
    expect(ring2.perEpoch().get(expelledIn) ?? 0).toBeGreaterThan(0);
    for (const e of after) {
      expect(decoded(gc, e), report(e)).toBe(0);
      expect(ring2.perEpoch().get(e) ?? 0, report(e)).toBe(0);
      if ((sender.sentPerEpoch.get(e) ?? 0) >= 25) expect(decoded(k, e), report(e)).toBeGreaterThan(0);
      expect(ring1.perEpoch().get(e) ?? 0, report(e)).toBe(sender.sentPerEpoch.get(e));
    }
    // rx2's ring refused (and counted) every packet of those epochs.
    const refused = ring2.ring.counters().rxDropped;
    const afterSent = after.reduce((n, e) => n + (sender.sentPerEpoch.get(e) ?? 0), 0);
    expect(refused.auth + refused.noKey + refused.expiredEpoch, JSON.stringify(refused)).toBe(afterSent);
    // rx2's GStreamer pipeline is left without a key: its agent was told it is no longer a member.
    expect(gc.state === 'waiting' || gc.waitingFor !== undefined || gc.runs.at(-1)?.epoch === expelledIn, JSON.stringify({ state: gc.state, waitingFor: gc.waitingFor })).toBe(true);
    expect(ks.agents.get('rx2')!.proc.lines.some((l) => l.includes('"state":"removed"'))).toBe(true);
  });
});

describe('bad packets against service keys', () => {
  it('replayed, tampered and wrong-epoch SRTP packets are refused and counted by our receiver', async () => {
    const ssrc = 0xbad00001;
    const txKeys = await keySource('tx');
    const rx = await RingReceiver.open(await keySource('rx1'), true);
    const sender = new RingSender(txKeys, ssrc, () => [], true);
    const sock = dgram.createSocket('udp4');
    closers.push(() => sock.close());
    const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, rx.port, '127.0.0.1', () => r()));
    const protect = (seq: number) => {
      const r = sender.ring.protectRtp(rtp({ ssrc, seq, payloadType: 0 }));
      if (!r.ok) throw new Error(r.cause);
      return r.packet;
    };
    // The key of the epoch in force now, kept for later.
    const old: DerivedKey = txKeys.keys(LABEL).find((k) => k.epoch === sender.ring.currentEpoch())!;
    const good: Buffer[] = [];
    for (let i = 0; i < 40; i++) good.push(protect(1000 + i));
    for (const b of good) await send(b);
    await until('40 good packets', () => rx.ring.counters().rtpUnprotected >= 40, 5000);
    // Replay 10 of them.
    for (const b of good.slice(0, 10)) await send(b);
    // Tamper with 10 fresh ones (one payload bit each).
    for (let i = 0; i < 10; i++) {
      const b = Buffer.from(protect(2000 + i));
      b[20] = b[20]! ^ 0x01;
      await send(b);
    }
    // Wrong epoch 1: the current epoch's MKI on a packet protected with another epoch's key.
    const other = txKeys.keys(LABEL).find((k) => k.epoch !== old.epoch)!;
    const forged = new SrtpKeyRing(fixedSource([{ ...other, mki: old.mki }]), { profile: PROFILE, mki: true, clock: () => other.notBefore + 1, logger: silentLogger() });
    for (let i = 0; i < 10; i++) {
      const r = forged.protectRtp(rtp({ ssrc, seq: 3000 + i, payloadType: 0 }));
      if (!r.ok) throw new Error(r.cause);
      await send(r.packet);
    }
    forged.close();
    await until('30 refusals', () => {
      const d = rx.ring.counters().rxDropped;
      return d.replay + d.auth >= 30;
    }, 5000);
    // Wrong epoch 2: a packet under a key whose epoch ended more than the grace ago.
    await until('the old epoch past its grace', () => Date.now() > old.notAfter + old.graceMs + 200, 10_000);
    const stale = new SrtpKeyRing(fixedSource([old]), { profile: PROFILE, mki: true, clock: () => old.notBefore + 1, logger: silentLogger() });
    for (let i = 0; i < 10; i++) {
      const r = stale.protectRtp(rtp({ ssrc: ssrc + 1, seq: 4000 + i, payloadType: 0 }));
      if (!r.ok) throw new Error(r.cause);
      await send(r.packet);
    }
    stale.close();
    await until('10 more refusals', () => {
      const d = rx.ring.counters().rxDropped;
      return d.expiredEpoch + d.unknownMki >= 10;
    }, 5000);
    await sleep(100);
    const c = rx.ring.counters();
    expect(c.rtpUnprotected).toBe(40);
    expect(c.rxDropped.replay).toBe(10);
    expect(c.rxDropped.auth).toBe(20);
    expect(c.rxDropped.expiredEpoch + c.rxDropped.unknownMki).toBe(10);
    console.log(`refused by cause: ${JSON.stringify(Object.fromEntries(Object.entries(c.rxDropped).filter(([, n]) => n > 0)))}`);
  });
});

function fixedSource(keys: DerivedKey[]): KeySource {
  return { keys: (label) => keys.filter((k) => k.label === label), onChange: () => () => undefined };
}
