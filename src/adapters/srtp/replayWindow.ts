/**
 * SRTP replay list (RFC 3711 §3.3.2): a sliding window of packet indices below the highest
 * one received. werift-rtp 0.8.9 has none (a replayed packet decrypts), so the key ring
 * keeps one per SSRC per key, for SRTP indices (48 bits) and SRTCP indices (31 bits).
 *
 * The check happens before authentication and the update only after it succeeds (§3.3.2:
 * "the replay list SHALL be updated only after ... authentication"), so a forged packet
 * can never advance the window.
 */

export type ReplayVerdict = 'fresh' | 'replay' | 'tooOld';

/** libsrtp's default; RFC 3711 §3.3.2 asks for at least 64. */
export const DEFAULT_REPLAY_WINDOW = 128;
export const MAX_REPLAY_WINDOW = 32768;

export class ReplayWindow {
  readonly size: number;
  /** Bit (index mod size) is set when that index, within the window, was accepted. */
  private readonly bits: Uint32Array;
  private top = -1;

  constructor(size = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 64 || size > MAX_REPLAY_WINDOW || size % 32 !== 0) {
      throw new RangeError(`size: expected a multiple of 32 in 64..${MAX_REPLAY_WINDOW}, got ${size}`);
    }
    this.size = size;
    this.bits = new Uint32Array(size / 32);
  }

  /** Highest accepted index, -1 before the first. */
  get highest(): number {
    return this.top;
  }

  /** RFC 3711 §3.3.2: ahead of the window is fresh; inside it, fresh unless seen; behind it, too old. */
  check(index: number): ReplayVerdict {
    if (!Number.isSafeInteger(index) || index < 0) return 'tooOld';
    if (index > this.top) return 'fresh';
    if (this.top - index >= this.size) return 'tooOld';
    return this.isSet(index) ? 'replay' : 'fresh';
  }

  /** Records an authenticated index; slides the window when it is a new highest. */
  accept(index: number): void {
    if (this.check(index) !== 'fresh') return;
    if (index > this.top) {
      const gap = index - this.top;
      if (this.top < 0 || gap >= this.size) {
        this.bits.fill(0);
      } else {
        // Indices top+1 .. index-1 enter the window unseen.
        for (let i = this.top + 1; i < index; i++) this.clear(i);
      }
      this.top = index;
    }
    this.set(index);
  }

  private isSet(index: number): boolean {
    const bit = index % this.size;
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) !== 0;
  }

  private set(index: number): void {
    const bit = index % this.size;
    const word = bit >>> 5;
    this.bits[word] = this.bits[word]! | (1 << (bit & 31));
  }

  private clear(index: number): void {
    const bit = index % this.size;
    const word = bit >>> 5;
    this.bits[word] = this.bits[word]! & ~(1 << (bit & 31));
  }
}
