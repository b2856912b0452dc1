/**
 * Sliding anti-replay window over sequence numbers (the scheme of RFC 4303 §3.4.3 and
 * RFC 3711 §3.3.2): the highest number seen, and a bitmap of the `size` numbers below it.
 * A number above the highest is new; one inside the window is new unless its bit is set;
 * one below the window is too old to tell, and refused.
 *
 * Callers check() before authenticating and accept() only after, so a forged message can
 * never advance the window.
 */
export type ReplayVerdict = 'new' | 'replay' | 'too-old';

export class ReplayWindow {
  private highest = -1;
  private readonly bits: Uint32Array;
  constructor(readonly size = 1024) {
    if (size % 32 !== 0 || size < 32) throw new RangeError('size: a positive multiple of 32');
    this.bits = new Uint32Array(size / 32);
  }

  get highestSeen(): number {
    return this.highest;
  }

  check(seq: number): ReplayVerdict {
    if (this.highest < 0 || seq > this.highest) return 'new';
    if (seq <= this.highest - this.size) return 'too-old';
    return this.bit(seq) ? 'replay' : 'new';
  }

  /** Records `seq` as seen; returns false (and records nothing) if it was not new. */
  accept(seq: number): boolean {
    if (this.check(seq) !== 'new') return false;
    if (seq > this.highest) {
      const jump = this.highest < 0 ? this.size : seq - this.highest;
      if (jump >= this.size) this.bits.fill(0);
      else this.clearRange(this.highest + 1, seq);
      this.highest = seq;
    }
    this.setBit(seq, true);
    return true;
  }

  /** Clears the bits of [from, to), a word at a time where it can. */
  private clearRange(from: number, to: number): void {
    let s = from;
    while (s < to) {
      const i = s % this.size;
      if ((i & 31) === 0 && to - s >= 32) {
        this.bits[i >>> 5] = 0;
        s += 32;
      } else {
        this.setBit(s, false);
        s++;
      }
    }
  }

  private bit(seq: number): boolean {
    const i = seq % this.size;
    return ((this.bits[i >>> 5]! >>> (i & 31)) & 1) === 1;
  }

  private setBit(seq: number, on: boolean): void {
    const i = seq % this.size;
    const w = i >>> 5;
    const m = 1 << (i & 31);
    this.bits[w] = on ? this.bits[w]! | m : this.bits[w]! & ~m;
  }
}

/** Per-key replay windows with a bound on how many keys are tracked (least recently used go first). */
export class ReplayWindows<K> {
  private readonly windows = new Map<K, ReplayWindow>();
  constructor(private readonly maxKeys = 65_536, private readonly size = 1024) {}

  check(key: K, seq: number): ReplayVerdict {
    return this.windows.get(key)?.check(seq) ?? 'new';
  }

  accept(key: K, seq: number): boolean {
    let w = this.windows.get(key);
    if (w) {
      this.windows.delete(key);
    } else {
      w = new ReplayWindow(this.size);
      if (this.windows.size >= this.maxKeys) {
        const oldest = this.windows.keys().next().value as K;
        this.windows.delete(oldest);
      }
    }
    this.windows.set(key, w);
    return w.accept(seq);
  }

  get tracked(): number {
    return this.windows.size;
  }
}
