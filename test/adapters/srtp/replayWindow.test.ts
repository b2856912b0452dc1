import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../../src/adapters/srtp/replayWindow.js';

describe('ReplayWindow (RFC 3711 §3.3.2)', () => {
  it('accepts a new index once, then calls it a replay', () => {
    const w = new ReplayWindow(64);
    expect(w.check(10)).toBe('fresh');
    expect(w.check(10)).toBe('fresh'); // check alone records nothing
    w.accept(10);
    expect(w.check(10)).toBe('replay');
    expect(w.highest).toBe(10);
  });

  it('accepts out-of-order indices inside the window exactly once', () => {
    const w = new ReplayWindow(64);
    w.accept(100);
    for (const i of [99, 50, 37]) {
      expect(w.check(i)).toBe('fresh');
      w.accept(i);
      expect(w.check(i)).toBe('replay');
    }
    expect(w.highest).toBe(100);
  });

  it('has its edge at highest - size + 1: inside is checked, one further is too old', () => {
    const w = new ReplayWindow(64);
    w.accept(1000);
    expect(w.check(1000 - 63)).toBe('fresh');
    expect(w.check(1000 - 64)).toBe('tooOld');
    w.accept(1000 - 63);
    expect(w.check(1000 - 63)).toBe('replay');
    w.accept(1000 - 64); // ignored: too old
    expect(w.check(1000 - 64)).toBe('tooOld');
  });

  it('slides: indices skipped over become fresh, the ones that fall off become too old', () => {
    const w = new ReplayWindow(64);
    for (let i = 0; i < 64; i++) w.accept(i);
    w.accept(70); // 64..69 skipped
    for (let i = 64; i < 70; i++) expect(w.check(i)).toBe('fresh');
    expect(w.check(63)).toBe('replay');
    expect(w.check(6)).toBe('tooOld');
    expect(w.check(7)).toBe('replay');
  });

  it('a jump of a whole window or more forgets everything', () => {
    const w = new ReplayWindow(64);
    for (let i = 0; i < 10; i++) w.accept(i);
    w.accept(10 + 200);
    expect(w.check(209)).toBe('fresh');
    expect(w.check(147)).toBe('fresh');
    expect(w.check(146)).toBe('tooOld');
    expect(w.check(210)).toBe('replay');
  });

  it('bit positions wrap with the index: no stale bit survives a slide', () => {
    const w = new ReplayWindow(64);
    w.accept(5);
    w.accept(5 + 64); // same bit position as 5
    expect(w.check(5 + 64)).toBe('replay');
    expect(w.check(6 + 63)).toBe('replay');
    w.accept(5 + 65);
    expect(w.check(6 + 64)).toBe('replay');
    expect(w.check(7 + 64)).toBe('fresh');
  });

  it('works on 48-bit SRTP indices (ROC near 2^32)', () => {
    const w = new ReplayWindow(128);
    const base = 0xffffffff * 0x10000 + 65000;
    w.accept(base);
    expect(w.check(base + 535)).toBe('fresh');
    expect(w.check(base - 127)).toBe('fresh');
    expect(w.check(base - 128)).toBe('tooOld');
    expect(w.check(base)).toBe('replay');
  });

  it('refuses negative and non-integer indices as too old', () => {
    const w = new ReplayWindow();
    expect(w.check(-1)).toBe('tooOld');
    expect(w.check(1.5)).toBe('tooOld');
    expect(w.check(Number.NaN)).toBe('tooOld');
  });

  it('validates its size', () => {
    expect(() => new ReplayWindow(32)).toThrow(RangeError);
    expect(() => new ReplayWindow(100)).toThrow(/multiple of 32/);
    expect(new ReplayWindow(1024).size).toBe(1024);
  });
});
