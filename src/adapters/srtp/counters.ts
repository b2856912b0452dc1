/**
 * What the key ring counts: every packet protected or unprotected, per epoch, and every
 * refusal by cause. A refusal is a result, never an exception: network input is untrusted.
 */

/** Why an incoming SRTP/SRTCP packet was refused. */
export const RX_DROP_CAUSES = [
  /** Not a parsable SRTP/SRTCP packet (too short, not version 2, header past the end). */
  'malformed',
  /** No held key authenticates it (tampered, forged, or a key we never had). */
  'auth',
  /** Index already seen, or behind the replay window (RFC 3711 §3.3.2). */
  'replay',
  /** MKI names no key we hold (RFC 3711 §3.1). */
  'unknownMki',
  /** Authentic under a key past notAfter + grace. */
  'expiredEpoch',
  /** We hold no key at all. */
  'noKey',
  /** Our own packet coming back to us (RFC 3550 §8.2 loop). */
  'loop',
] as const;
export type RxDropCause = (typeof RX_DROP_CAUSES)[number];

/** Why an outgoing RTP/RTCP packet was not protected. */
export const TX_DROP_CAUSES = [
  /** Not a parsable RTP/RTCP packet. */
  'malformed',
  /** No key active now (none held, next not arrived, or index space exhausted). */
  'noKey',
  /** An index already protected under this key: sending it again would reuse keystream (RFC 3711 §9.1). */
  'replay',
] as const;
export type TxDropCause = (typeof TX_DROP_CAUSES)[number];

export type ProtectResult =
  | { readonly ok: true; readonly packet: Buffer; readonly epoch: number; readonly ssrc: number }
  | { readonly ok: false; readonly cause: TxDropCause };

export type UnprotectResult =
  | { readonly ok: true; readonly packet: Buffer; readonly epoch: number; readonly ssrc: number }
  | { readonly ok: false; readonly cause: RxDropCause };

export interface EpochCounters {
  readonly epoch: number;
  rtpProtected: number;
  rtcpProtected: number;
  rtpUnprotected: number;
  rtcpUnprotected: number;
}

export interface SrtpCounters {
  rtpProtected: number;
  rtcpProtected: number;
  rtpUnprotected: number;
  rtcpUnprotected: number;
  rxDropped: Record<RxDropCause, number>;
  txDropped: Record<TxDropCause, number>;
  /** Collision reports raised (RFC 3711 §9.1), at most one per SSRC per report interval. */
  ssrcCollisions: number;
  /** Authentic packets from a colliding source. */
  ssrcCollisionPackets: number;
  /** Per epoch, newest last; the last MAX_EPOCHS_KEPT epochs. */
  perEpoch: EpochCounters[];
}

const MAX_EPOCHS_KEPT = 32;

function zeroes<K extends string>(keys: readonly K[]): Record<K, number> {
  const r = {} as Record<K, number>;
  for (const k of keys) r[k] = 0;
  return r;
}

/** Mutable counters behind SrtpKeyRing.counters(); snapshot() copies them. */
export class SrtpCounterSet {
  private readonly c: Omit<SrtpCounters, 'perEpoch'> = {
    rtpProtected: 0,
    rtcpProtected: 0,
    rtpUnprotected: 0,
    rtcpUnprotected: 0,
    rxDropped: zeroes(RX_DROP_CAUSES),
    txDropped: zeroes(TX_DROP_CAUSES),
    ssrcCollisions: 0,
    ssrcCollisionPackets: 0,
  };
  private readonly epochs = new Map<number, EpochCounters>();

  protectedPacket(epoch: number, rtcp: boolean): void {
    const e = this.epoch(epoch);
    if (rtcp) {
      this.c.rtcpProtected++;
      e.rtcpProtected++;
    } else {
      this.c.rtpProtected++;
      e.rtpProtected++;
    }
  }

  unprotectedPacket(epoch: number, rtcp: boolean): void {
    const e = this.epoch(epoch);
    if (rtcp) {
      this.c.rtcpUnprotected++;
      e.rtcpUnprotected++;
    } else {
      this.c.rtpUnprotected++;
      e.rtpUnprotected++;
    }
  }

  rxDrop(cause: RxDropCause): void {
    this.c.rxDropped[cause]++;
  }

  txDrop(cause: TxDropCause): void {
    this.c.txDropped[cause]++;
  }

  collisionPacket(reported: boolean): void {
    this.c.ssrcCollisionPackets++;
    if (reported) this.c.ssrcCollisions++;
  }

  snapshot(): SrtpCounters {
    return {
      ...this.c,
      rxDropped: { ...this.c.rxDropped },
      txDropped: { ...this.c.txDropped },
      perEpoch: [...this.epochs.values()].sort((a, b) => a.epoch - b.epoch).map((e) => ({ ...e })),
    };
  }

  private epoch(epoch: number): EpochCounters {
    let e = this.epochs.get(epoch);
    if (!e) {
      e = { epoch, rtpProtected: 0, rtcpProtected: 0, rtpUnprotected: 0, rtcpUnprotected: 0 };
      this.epochs.set(epoch, e);
      if (this.epochs.size > MAX_EPOCHS_KEPT) {
        const oldest = Math.min(...this.epochs.keys());
        this.epochs.delete(oldest);
      }
    }
    return e;
  }
}
