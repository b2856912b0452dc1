/**
 * The SRTP key ring: one crypto context per group epoch held (previous, current, next),
 * built from a KeySource and switched by time (DESIGN.md, KGRP2; paper §7).
 *
 * - Senders protect with the key whose [notBefore, notAfter) holds now, switching at the
 *   instant the next key activates. A key ring whose current key ended without a successor
 *   refuses to send (`noKey`): a member whose entitlement ended goes dark.
 * - Receivers accept every key held until its notAfter + grace: the previous key through
 *   the grace window (late packets, slow clocks) and the next key before it activates
 *   (fast clocks). With MKI the packet names its key; without, the contexts are tried in
 *   order (the one that last worked for this SSRC first), which costs one HMAC per miss.
 * - Every refusal is a counted result, never an exception (counters.ts).
 *
 * Rule for interop (shared/notes/media-interop.md): each new key is a new crypto context
 * whose ROC starts at 0, so a receiver keyed per epoch (libsrtp, ffmpeg restarted per
 * epoch) agrees with us.
 */
import type { DerivedKey, KeySource } from '../../client/keyMaterial.js';
import { createLogger, type Logger } from '../../util/log.js';
import { SrtpCounterSet, type ProtectResult, type RxDropCause, type SrtpCounters, type TxDropCause, type UnprotectResult } from './counters.js';
import { SrtpCryptoContext, derivedKeyProblem, type RxOutcome } from './cryptoContext.js';
import { epochView } from './epochView.js';
import { MKI_LENGTH, readMki, stripMki } from './mki.js';
import { srtpProfile, type SrtpProfile, type SrtpProfileName } from './profile.js';
import { DEFAULT_REPLAY_WINDOW, ReplayWindow } from './replayWindow.js';
import { RTCP_MIN_LENGTH, asBuffer, isRtcp, parseRtpHeader, type RtpHeaderView } from './rtpPacket.js';
import { SsrcCollisionDetector, type SsrcCollision } from './ssrcCollision.js';

export interface SrtpKeyRingOptions {
  readonly profile: SrtpProfileName;
  /** Insert and expect a 4-byte MKI (the epoch) in every packet. Default false. */
  readonly mki?: boolean;
  /** Replay window per SSRC per key, a multiple of 32 ≥ 64. Default 128. */
  readonly replayWindowSize?: number;
  /** Milliseconds since the Unix epoch; injectable for tests. */
  readonly clock?: () => number;
  /** Detect SSRC collisions among senders sharing the key (RFC 3711 §9.1). Default true. */
  readonly detectCollisions?: boolean;
  /** A remote source is active if heard within this time. Default 5000 ms. */
  readonly sourceTimeoutMs?: number;
  /** At most one collision event per SSRC per this time. Default 5000 ms. */
  readonly collisionReportIntervalMs?: number;
  readonly logger?: Logger;
}

export type EpochState = 'next' | 'current' | 'previous' | 'expired';

export interface EpochStatus {
  readonly epoch: number;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly graceMs: number;
  readonly state: EpochState;
}

export type SrtpRingEvent =
  | { readonly type: 'keys'; readonly epochs: readonly number[] }
  | { readonly type: 'activated'; readonly epoch: number | undefined; readonly previous: number | undefined }
  | { readonly type: 'ssrcCollision'; readonly collision: SsrcCollision; readonly epoch: number };

/** Local SSRCs remembered for collision checks. */
const MAX_LOCAL_SSRCS = 1024;
/** Per-SSRC "last key that worked" hints for trial decryption. */
const MAX_HINTS = 4096;

export class SrtpKeyRing {
  readonly profile: SrtpProfile;
  readonly mki: boolean;
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly replayWindowSize: number;
  private readonly stats = new SrtpCounterSet();
  private readonly detector: SsrcCollisionDetector | undefined;
  private readonly listeners = new Set<(e: SrtpRingEvent) => void>();
  private readonly unsubscribe: () => void;
  private readonly localSsrcs = new Set<number>();
  private readonly hints = new Map<number, SrtpCryptoContext>();
  private contexts: SrtpCryptoContext[] = [];
  private byMki = new Map<number, SrtpCryptoContext>();
  // Time-derived view of the contexts, valid for now in [validFrom, validUntil).
  private validFrom = Infinity;
  private validUntil = -Infinity;
  private sendCtx: SrtpCryptoContext | undefined;
  private live: SrtpCryptoContext[] = [];
  private expired: SrtpCryptoContext[] = [];
  private closed = false;

  constructor(private readonly keySource: KeySource, options: SrtpKeyRingOptions) {
    this.profile = srtpProfile(options.profile);
    this.mki = options.mki ?? false;
    this.clock = options.clock ?? Date.now;
    this.log = options.logger ?? createLogger('srtp-ring', { profile: this.profile.name });
    this.replayWindowSize = options.replayWindowSize ?? DEFAULT_REPLAY_WINDOW;
    new ReplayWindow(this.replayWindowSize); // validates the size before any packet arrives
    this.detector = options.detectCollisions === false
      ? undefined
      : new SsrcCollisionDetector({
          sourceTimeoutMs: options.sourceTimeoutMs ?? 5000,
          reportIntervalMs: options.collisionReportIntervalMs ?? 5000,
        });
    this.unsubscribe = keySource.onChange(() => this.refresh());
    this.refresh();
  }

  /** Protects an RTP or RTCP packet, told apart by RFC 5761 §4. */
  protect(packet: Uint8Array): ProtectResult {
    return isRtcp(packet) ? this.protectRtcp(packet) : this.protectRtp(packet);
  }

  /** Unprotects an SRTP or SRTCP packet; `source` (e.g. "addr:port") enables remote collision checks. */
  unprotect(packet: Uint8Array, source?: string): UnprotectResult {
    return isRtcp(packet) ? this.unprotectRtcp(packet, source) : this.unprotectRtp(packet, source);
  }

  protectRtp(packet: Uint8Array): ProtectResult {
    try {
      const buf = asBuffer(packet);
      const hdr = parseRtpHeader(buf);
      if (!hdr) return this.txDrop('malformed');
      const ctx = this.sendContext(this.clock());
      if (!ctx) return this.txDrop('noKey');
      const out = ctx.protectRtp(buf, hdr);
      if (typeof out === 'string') return this.txDrop(out);
      this.noteLocal(hdr.ssrc);
      this.stats.protectedPacket(ctx.epoch, false);
      return { ok: true, packet: out.packet, epoch: ctx.epoch, ssrc: hdr.ssrc };
    } catch (err) {
      return this.internal('protectRtp', err, () => this.txDrop('malformed'));
    }
  }

  protectRtcp(packet: Uint8Array): ProtectResult {
    try {
      const buf = asBuffer(packet);
      if (buf.length < RTCP_MIN_LENGTH || buf[0]! >> 6 !== 2) return this.txDrop('malformed');
      const ctx = this.sendContext(this.clock());
      if (!ctx) return this.txDrop('noKey');
      const out = ctx.protectRtcp(buf);
      if (typeof out === 'string') return this.txDrop(out);
      this.stats.protectedPacket(ctx.epoch, true);
      return { ok: true, packet: out.packet, epoch: ctx.epoch, ssrc: buf.readUInt32BE(4) };
    } catch (err) {
      return this.internal('protectRtcp', err, () => this.txDrop('malformed'));
    }
  }

  unprotectRtp(packet: Uint8Array, source?: string): UnprotectResult {
    try {
      return this.unprotectRtpUnsafe(asBuffer(packet), source);
    } catch (err) {
      return this.internal('unprotectRtp', err, () => this.rxDrop('malformed'));
    }
  }

  unprotectRtcp(packet: Uint8Array, source?: string): UnprotectResult {
    try {
      return this.unprotectRtcpUnsafe(asBuffer(packet), source);
    } catch (err) {
      return this.internal('unprotectRtcp', err, () => this.rxDrop('malformed'));
    }
  }

  counters(): SrtpCounters {
    return this.stats.snapshot();
  }

  /** The epoch a sender would protect with now, if any. */
  currentEpoch(): number | undefined {
    return this.sendContext(this.clock())?.epoch;
  }

  /** The keys held and what each is good for now. */
  epochs(): EpochStatus[] {
    const now = this.clock();
    const current = this.sendContext(now);
    return this.contexts.map((c) => {
      const { notBefore, notAfter, graceMs } = c.key;
      let state: EpochState;
      if (c === current) state = 'current';
      else if (now >= notAfter + graceMs) state = 'expired';
      else if (now < notBefore || (current && c.epoch > current.epoch)) state = 'next';
      else state = 'previous';
      return { epoch: c.epoch, notBefore, notAfter, graceMs, state };
    });
  }

  onEvent(listener: (e: SrtpRingEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops following the KeySource and wipes every context's keys. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const c of this.contexts) c.dispose();
    this.contexts = [];
    this.byMki.clear();
    this.hints.clear();
    this.invalidate();
  }

  /** Re-reads the KeySource: new epochs get a context, dropped ones are wiped, a replaced key gets a fresh context. */
  refresh(): void {
    if (this.closed) return;
    let keys: DerivedKey[];
    try {
      keys = this.keySource.keys(this.profile.label);
    } catch (err) {
      this.log.error({ err }, 'key source failed; keeping the keys held');
      return;
    }
    const next = new Map<number, SrtpCryptoContext>();
    for (const k of keys) {
      const problem = derivedKeyProblem(k, this.profile.label);
      if (problem) {
        this.log.warn({ epoch: k?.epoch }, `ignoring key: ${problem}`);
        continue;
      }
      const existing = this.contexts.find((c) => c.sameKey(k)) ?? next.get(k.epoch);
      if (existing && existing.sameKey(k)) {
        next.set(k.epoch, existing);
        continue;
      }
      try {
        next.set(k.epoch, new SrtpCryptoContext(this.profile, k, { replayWindowSize: this.replayWindowSize, mki: this.mki, rememberTags: this.detector !== undefined }));
      } catch (err) {
        this.log.warn({ epoch: k.epoch, err }, 'ignoring key: werift refused it');
      }
    }
    const kept = new Set(next.values());
    for (const c of this.contexts) if (!kept.has(c)) c.dispose();
    this.contexts = [...next.values()].sort((a, b) => a.epoch - b.epoch);
    this.byMki = new Map(this.contexts.map((c) => [c.mki, c]));
    for (const [ssrc, c] of this.hints) if (!kept.has(c)) this.hints.delete(ssrc);
    this.invalidate();
    this.emit({ type: 'keys', epochs: this.contexts.map((c) => c.epoch) });
    this.sendContext(this.clock());
  }

  private unprotectRtpUnsafe(buf: Buffer, source: string | undefined): UnprotectResult {
    const now = this.clock();
    this.view(now);
    const mkiLen = this.mki ? MKI_LENGTH : 0;
    const hdr = parseRtpHeader(buf, this.profile.tagLength + mkiLen);
    if (!hdr) return this.rxDrop('malformed');
    if (this.contexts.length === 0) return this.rxDrop('noKey');

    if (this.mki) {
      const ctx = this.byMki.get(readMki(buf, this.profile.mkiOffsetFromEnd)!);
      if (!ctx) return this.rxDrop('unknownMki');
      const stripped = stripMki(buf, this.profile.mkiOffsetFromEnd);
      if (this.expired.includes(ctx)) {
        const out = ctx.unprotectRtp(stripped, hdr, false);
        return this.rxDrop(typeof out === 'string' ? out : 'expiredEpoch');
      }
      const out = ctx.unprotectRtp(stripped, hdr, true);
      if (typeof out === 'string') return this.rxDrop(out);
      return this.acceptRtp(ctx, hdr, out, stripped, source, now);
    }

    let sawReplay = false;
    const hint = this.hints.get(hdr.ssrc);
    const tryCtx = (ctx: SrtpCryptoContext): RxOutcome => {
      const out = ctx.unprotectRtp(buf, hdr, true);
      if (out === 'replay') sawReplay = true;
      return out;
    };
    if (hint && this.live.includes(hint)) {
      const out = tryCtx(hint);
      if (typeof out !== 'string') return this.acceptRtp(hint, hdr, out, buf, source, now);
    }
    for (const ctx of this.live) {
      if (ctx === hint) continue;
      const out = tryCtx(ctx);
      if (typeof out !== 'string') return this.acceptRtp(ctx, hdr, out, buf, source, now);
    }
    if (sawReplay) return this.rxDrop('replay');
    for (const ctx of this.expired) {
      if (typeof ctx.unprotectRtp(buf, hdr, false) !== 'string') return this.rxDrop('expiredEpoch');
    }
    return this.rxDrop(this.live.length === 0 ? 'noKey' : 'auth');
  }

  private acceptRtp(
    ctx: SrtpCryptoContext,
    hdr: RtpHeaderView,
    out: { packet: Buffer; index: number },
    wire: Buffer,
    source: string | undefined,
    now: number,
  ): UnprotectResult {
    if (this.detector) {
      const ours = this.localSsrcs.has(hdr.ssrc);
      if (ours && ctx.protectedByUs(hdr.ssrc, out.index, wire)) return this.rxDrop('loop');
      const seen = this.detector.observe(hdr.ssrc, source, ours, now);
      if (seen) {
        this.stats.collisionPacket(seen.report);
        if (seen.report) {
          this.log.warn({ ssrc: hdr.ssrc, kind: seen.collision.kind, epoch: ctx.epoch }, 'SSRC collision among senders sharing a group key (RFC 3711 §9.1)');
          this.emit({ type: 'ssrcCollision', collision: seen.collision, epoch: ctx.epoch });
        }
      }
    }
    if (this.hints.get(hdr.ssrc) !== ctx) {
      if (this.hints.size >= MAX_HINTS) this.hints.clear();
      this.hints.set(hdr.ssrc, ctx);
    }
    this.stats.unprotectedPacket(ctx.epoch, false);
    return { ok: true, packet: out.packet, epoch: ctx.epoch, ssrc: hdr.ssrc };
  }

  private unprotectRtcpUnsafe(buf: Buffer, _source: string | undefined): UnprotectResult {
    const now = this.clock();
    this.view(now);
    const mkiLen = this.mki ? MKI_LENGTH : 0;
    if (buf.length < RTCP_MIN_LENGTH + 4 + this.profile.tagLength + mkiLen || buf[0]! >> 6 !== 2) return this.rxDrop('malformed');
    if (this.contexts.length === 0) return this.rxDrop('noKey');
    const ssrc = buf.readUInt32BE(4);

    if (this.mki) {
      const ctx = this.byMki.get(readMki(buf, this.profile.mkiOffsetFromEnd)!);
      if (!ctx) return this.rxDrop('unknownMki');
      const stripped = stripMki(buf, this.profile.mkiOffsetFromEnd);
      const expired = this.expired.includes(ctx);
      const out = ctx.unprotectRtcp(stripped, !expired);
      if (typeof out === 'string') return this.rxDrop(out);
      if (expired) return this.rxDrop('expiredEpoch');
      this.stats.unprotectedPacket(ctx.epoch, true);
      return { ok: true, packet: out.packet, epoch: ctx.epoch, ssrc };
    }

    let sawReplay = false;
    const hint = this.hints.get(ssrc);
    const order = hint && this.live.includes(hint) ? [hint, ...this.live.filter((c) => c !== hint)] : this.live;
    for (const ctx of order) {
      const out = ctx.unprotectRtcp(buf, true);
      if (out === 'malformed') return this.rxDrop('malformed');
      if (out === 'replay') sawReplay = true;
      if (typeof out === 'string') continue;
      this.stats.unprotectedPacket(ctx.epoch, true);
      return { ok: true, packet: out.packet, epoch: ctx.epoch, ssrc };
    }
    if (sawReplay) return this.rxDrop('replay');
    for (const ctx of this.expired) {
      if (typeof ctx.unprotectRtcp(buf, false) !== 'string') return this.rxDrop('expiredEpoch');
    }
    return this.rxDrop(this.live.length === 0 ? 'noKey' : 'auth');
  }

  /** The context to protect with at `now`: the highest epoch whose [notBefore, notAfter) holds now. */
  private sendContext(now: number): SrtpCryptoContext | undefined {
    this.view(now);
    return this.sendCtx;
  }

  /** Recomputes the time-derived view when `now` leaves the interval it was computed for. */
  private view(now: number): void {
    if (now >= this.validFrom && now < this.validUntil) return;
    const v = epochView(this.contexts, now);
    this.validFrom = v.validFrom;
    this.validUntil = v.validUntil;
    this.live = [...v.live];
    this.expired = [...v.expired];
    if (v.send !== this.sendCtx) {
      const previous = this.sendCtx?.epoch;
      this.sendCtx = v.send;
      if (v.send?.epoch !== previous) {
        this.log.info({ epoch: v.send?.epoch, previous }, v.send ? 'sending under a new epoch' : 'no key to send with');
        this.emit({ type: 'activated', epoch: v.send?.epoch, previous });
      }
    }
  }

  private invalidate(): void {
    this.validFrom = Infinity;
    this.validUntil = -Infinity;
  }

  private noteLocal(ssrc: number): void {
    if (this.detector === undefined || this.localSsrcs.has(ssrc)) return;
    if (this.localSsrcs.size >= MAX_LOCAL_SSRCS) this.localSsrcs.clear();
    this.localSsrcs.add(ssrc);
  }

  private rxDrop(cause: RxDropCause): UnprotectResult {
    this.stats.rxDrop(cause);
    return { ok: false, cause };
  }

  private txDrop(cause: TxDropCause): ProtectResult {
    this.stats.txDrop(cause);
    return { ok: false, cause };
  }

  /** A throw from inside the ring is a bug or a werift surprise: log it, count the packet, carry on. */
  private internal<T>(where: string, err: unknown, drop: () => T): T {
    this.log.error({ err, where }, 'unexpected error while processing a packet; dropped');
    return drop();
  }

  private emit(e: SrtpRingEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err, event: e.type }, 'ring event listener threw');
      }
    }
  }
}
