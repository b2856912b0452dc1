/** The sliding anti-replay window (RFC 4303 §3.4.3 / RFC 3711 §3.3.2), per-key windows, and the sequence numbers that feed them. */
import { describe, expect, it } from 'vitest';
import { ReplayWindow, ReplayWindows, type ReplayVerdict } from '../../src/client/replayWindow.js';
import { FakeClock } from '../../src/util/clock.js';
import { SequenceCounter } from '../../src/util/sequence.js';
import { Rng } from '../fuzz/prng.js';

/** What a window of `size` must answer: a set of everything accepted, and the highest. */
class Model {
  private readonly seen = new Set<number>();
  private highest = -1;
  constructor(private readonly size: number) {}
  check(seq: number): ReplayVerdict {
    if (this.highest < 0 || seq > this.highest) return 'new';
    if (seq <= this.highest - this.size) return 'too-old';
    return this.seen.has(seq) ? 'replay' : 'new';
  }
  accept(seq: number): boolean {
    if (this.check(seq) !== 'new') return false;
    this.seen.add(seq);
    this.highest = Math.max(this.highest, seq);
    return true;
  }
}

describe('ReplayWindow', () => {
  it('accepts in-order numbers once each', () => {
    const w = new ReplayWindow(64);
    for (let s = 0; s < 500; s++) {
      expect(w.check(s)).toBe('new');
      expect(w.accept(s)).toBe(true);
      expect(w.check(s)).toBe('replay');
      expect(w.accept(s)).toBe(false);
      expect(w.highestSeen).toBe(s);
    }
  });

  it('accepts numbers reordered inside the window, each once', () => {
    const w = new ReplayWindow(64);
    w.accept(1000);
    for (const s of [999, 960, 990, 1000 - 63]) expect(w.accept(s), `${s}`).toBe(true);
    for (const s of [999, 960, 990, 937, 1000]) expect(w.check(s), `${s}`).toBe('replay');
    expect(w.check(998)).toBe('new');
    expect(w.highestSeen).toBe(1000);
    // A later number, then the gap below it filled in any order.
    w.accept(1010);
    for (const s of [1005, 1001, 1009, 1003]) expect(w.accept(s)).toBe(true);
    for (const s of [1005, 1001, 1009, 1003, 1010]) expect(w.accept(s)).toBe(false);
  });

  it('refuses duplicates as replay, and a refused duplicate changes nothing', () => {
    const w = new ReplayWindow(32);
    w.accept(10);
    w.accept(8);
    expect(w.accept(8)).toBe(false);
    expect(w.accept(10)).toBe(false);
    expect(w.highestSeen).toBe(10);
    expect(w.check(9)).toBe('new');
  });

  it('the exact boundary: highest − size is too old, highest − size + 1 is inside', () => {
    for (const size of [32, 64, 1024]) {
      const w = new ReplayWindow(size);
      const top = 10_000;
      w.accept(top);
      expect(w.check(top - size), `size ${size}`).toBe('too-old');
      expect(w.accept(top - size)).toBe(false);
      expect(w.check(top - size - 1)).toBe('too-old');
      expect(w.check(0)).toBe('too-old');
      expect(w.check(top - size + 1)).toBe('new');
      expect(w.accept(top - size + 1)).toBe(true);
      expect(w.check(top - size + 1)).toBe('replay');
      // Once the window moves by one, that number falls out of it.
      w.accept(top + 1);
      expect(w.check(top - size + 1)).toBe('too-old');
    }
  });

  it('a check without accept leaves no trace', () => {
    const w = new ReplayWindow(64);
    w.accept(100);
    w.accept(90);
    const probe = [101, 5_000_000, 99, 90, 36, 37, 0, 2 ** 53 - 1];
    const before = probe.map((s) => w.check(s));
    for (let i = 0; i < 3; i++) for (const s of probe) w.check(s);
    expect(probe.map((s) => w.check(s))).toEqual(before);
    expect(before).toEqual(['new', 'new', 'new', 'replay', 'too-old', 'new', 'too-old', 'new']);
    expect(w.highestSeen).toBe(100);
    // A forged message checked as new but never accepted does not move the window.
    expect(w.check(100 + 64 * 10)).toBe('new');
    expect(w.check(40)).toBe('new');
    expect(w.accept(40)).toBe(true);
  });

  it('large jumps forward clear the old bits: nothing from before is a false replay', () => {
    const w = new ReplayWindow(64);
    for (let s = 0; s < 64; s++) w.accept(s);
    w.accept(64 + 1000);
    // 64·k + s aliases s in the bitmap; none of them were seen.
    for (let s = 1000 + 1; s < 1064; s++) expect(w.check(s), `${s}`).toBe('new');
    expect(w.check(1000)).toBe('too-old');
    expect(w.check(63)).toBe('too-old');
    // A jump of less than the window clears exactly the numbers it skips.
    const v = new ReplayWindow(64);
    for (let s = 0; s < 64; s++) v.accept(s);
    v.accept(70);
    for (let s = 64; s < 70; s++) expect(v.check(s), `${s}`).toBe('new');
    for (let s = 7; s < 64; s++) expect(v.check(s), `${s}`).toBe('replay');
    expect(v.check(6)).toBe('too-old');
  });

  it('a jump of every length from every alignment keeps exactly the seen numbers that stay in the window', () => {
    for (const size of [32, 64, 96]) {
      for (let start = 0; start < size; start++) {
        for (let jump = 1; jump <= size + 1; jump++) {
          const w = new ReplayWindow(size);
          const m = new Model(size);
          const top = 10 * size + start;
          // Every other number below the top seen, so both set and clear bits must survive the move.
          for (let s = top - size + 1; s <= top; s++) if (s % 2 === 0 || s === top) { w.accept(s); m.accept(s); }
          w.accept(top + jump);
          m.accept(top + jump);
          for (let s = top - size - 1; s <= top + jump + 1; s++) {
            if (w.check(s) !== m.check(s)) expect(w.check(s), `size ${size} start ${start} jump ${jump} seq ${s}`).toBe(m.check(s));
          }
        }
      }
    }
  });

  it('handles sequence numbers at the top of the safe range (clock-based sequences)', () => {
    const w = new ReplayWindow(1024);
    const top = Number.MAX_SAFE_INTEGER;
    expect(w.accept(top - 5000)).toBe(true);
    expect(w.accept(top)).toBe(true);
    expect(w.accept(top - 1)).toBe(true);
    expect(w.check(top - 1)).toBe('replay');
    expect(w.check(top - 1024)).toBe('too-old');
    expect(w.check(top - 1023)).toBe('new');
  });

  it('the first number accepted may be anything', () => {
    for (const first of [0, 1, 31, 1_700_000_000_000_000]) {
      const w = new ReplayWindow(32);
      expect(w.highestSeen).toBe(-1);
      expect(w.check(first)).toBe('new');
      expect(w.accept(first)).toBe(true);
      expect(w.check(first)).toBe('replay');
      if (first > 0) expect(w.check(first - 1)).toBe('new');
    }
  });

  it('refuses sizes that are not positive multiples of 32, naming size', () => {
    for (const size of [0, 16, 33, -32, 100]) expect(() => new ReplayWindow(size)).toThrow(/^size:/);
    expect(new ReplayWindow().size).toBe(1024);
  });

  it('agrees with a reference model on 20,000 random operations (seeded)', () => {
    const verdicts = new Set<ReplayVerdict>();
    for (const [size, seed] of [[32, 1], [64, 2], [1024, 3]] as const) {
      const rng = new Rng(seed, 77);
      const w = new ReplayWindow(size);
      const m = new Model(size);
      let base = rng.int(1_000_000);
      for (let i = 0; i < 20_000; i++) {
        const r = rng.int(100);
        // Mostly near the top (reordering, duplicates, boundary), sometimes a jump forward.
        const s = r < 3 ? (base += rng.range(1, 5 * size)) : Math.max(0, base - rng.range(-3, size + 3));
        if (r >= 3 && r < 8) base += 1;
        const [got, want] = [w.check(s), m.check(s)];
        if (got !== want) expect(got, `size ${size} op ${i} seq ${s}`).toBe(want);
        verdicts.add(want);
        if (rng.chance(0.8) && w.accept(s) !== m.accept(s)) expect.fail(`accept(${s}) disagrees, size ${size} op ${i}`);
        if (s > base) base = s;
      }
    }
    expect([...verdicts].sort()).toEqual(['new', 'replay', 'too-old']);
  });
});

describe('ReplayWindows (per sender)', () => {
  it('keeps one independent window per key', () => {
    const ws = new ReplayWindows<number>(10, 32);
    expect(ws.check(1, 5)).toBe('new');
    expect(ws.tracked).toBe(0);
    expect(ws.accept(1, 5)).toBe(true);
    expect(ws.accept(2, 5)).toBe(true);
    expect(ws.accept(1, 5)).toBe(false);
    expect(ws.check(1, 5)).toBe('replay');
    expect(ws.check(3, 5)).toBe('new');
    expect(ws.tracked).toBe(2);
  });

  it('bounds how many keys it tracks, evicting the least recently used', () => {
    const ws = new ReplayWindows<string>(3, 32);
    ws.accept('a', 1);
    ws.accept('b', 1);
    ws.accept('c', 1);
    ws.accept('a', 2); // a is now the most recent
    ws.accept('d', 1); // evicts b
    expect(ws.tracked).toBe(3);
    expect(ws.check('a', 1)).toBe('replay');
    expect(ws.check('c', 1)).toBe('replay');
    expect(ws.check('d', 1)).toBe('replay');
    // An evicted sender is forgotten: this is the price of the bound.
    expect(ws.check('b', 1)).toBe('new');
  });

  it('a check for an unknown key tracks nothing', () => {
    const ws = new ReplayWindows<number>(2, 32);
    for (let i = 0; i < 100; i++) ws.check(i, i);
    expect(ws.tracked).toBe(0);
  });
});

describe('SequenceCounter', () => {
  it('starts from the clock × 1000 and counts by one, whatever the clock does', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const seq = new SequenceCounter(clock);
    const a = seq.next();
    expect(a).toBe(1_700_000_000_000_001);
    expect(seq.next()).toBe(a + 1);
    clock.advance(5);
    expect(seq.next()).toBe(a + 2);
    expect(Number.isSafeInteger(seq.next())).toBe(true);
  });

  it('a restarted sender continues above what a receiver\'s window holds', () => {
    const clock = new FakeClock();
    const before = new SequenceCounter(clock);
    const w = new ReplayWindow(1024);
    for (let i = 0; i < 999; i++) expect(w.accept(before.next())).toBe(true);
    clock.advance(1);
    const after = new SequenceCounter(clock);
    const first = after.next();
    expect(first).toBeGreaterThan(w.highestSeen);
    expect(w.accept(first)).toBe(true);
    for (let i = 0; i < 10; i++) expect(w.accept(after.next())).toBe(true);
  });
});
