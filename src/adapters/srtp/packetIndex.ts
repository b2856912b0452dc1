/**
 * SRTP packet index i = 2^16 · ROC + SEQ and its estimation from a 16-bit sequence number
 * (RFC 3711 §3.3.1, Appendix A). werift keeps its own ROC guess with a ±100 heuristic; the
 * key ring tracks ROC here instead and hands werift's cipher the ROC this estimates, so
 * reordering across a wrap behaves as the RFC says.
 */

const SEQ_MOD = 0x10000;
const HALF = 0x8000;
/** ROC is 32 bits (RFC 3711 §3.2.1): the index space is 2^48. */
export const MAX_ROC = 0xffffffff;

/**
 * Guess of the ROC a packet with `seq` was sent under, given the receiver's ROC and s_l
 * (highest sequence number authenticated so far): RFC 3711 Appendix A. Returns ROC-1, ROC
 * or ROC+1; ROC-1 may be -1 (a packet from before this context's first one).
 */
export function estimateRoc(roc: number, sl: number, seq: number): number {
  if (sl < HALF) {
    return seq - sl > HALF ? roc - 1 : roc;
  }
  return sl - HALF > seq ? roc + 1 : roc;
}

/** Per-SSRC ROC and s_l of one crypto context, updated only after authentication. */
export class PacketIndexTracker {
  private roc: number;
  private sl = 0;
  private started = false;

  /** `initialRoc` is 0 unless signalled (RFC 3711 §3.3.1); the key ring starts every new key at 0. */
  constructor(initialRoc = 0) {
    this.roc = initialRoc;
  }

  get rolloverCounter(): number {
    return this.roc;
  }

  /** Highest index seen, or -1 before the first packet. */
  get highest(): number {
    return this.started ? this.roc * SEQ_MOD + this.sl : -1;
  }

  /**
   * Estimated index of a packet with `seq`. Before the first packet, s_l is taken to be
   * `seq` itself (RFC 3711 §3.3.1: the receiver initialises s_l from the first packet).
   */
  estimate(seq: number): number {
    if (!this.started) return this.roc * SEQ_MOD + seq;
    return estimateRoc(this.roc, this.sl, seq) * SEQ_MOD + seq;
  }

  /** Records an authenticated (or, for a sender, protected) index: s_l and ROC move forward only. */
  update(index: number): void {
    if (!this.started || index > this.roc * SEQ_MOD + this.sl) {
      this.roc = Math.floor(index / SEQ_MOD);
      this.sl = index % SEQ_MOD;
      this.started = true;
    }
  }
}

export function rocOf(index: number): number {
  return Math.floor(index / SEQ_MOD);
}
