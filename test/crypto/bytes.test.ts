/** Argument guards and byte helpers. */
import { describe, expect, it } from 'vitest';
import {
  abytes, concatBytes, constantTimeEqual, fromBase64, fromHex, KEY_LENGTH, randomBytes, randomKey, toBase64, toHex, wipe,
} from '../../src/crypto/bytes.js';

describe('abytes', () => {
  it('returns the value when it is a Uint8Array of the right length', () => {
    const k = new Uint8Array(32);
    expect(abytes(k, 32, 'key')).toBe(k);
    expect(abytes(Buffer.alloc(3), undefined, 'any')).toHaveLength(3);
  });
  it('throws TypeError for non-bytes and RangeError for a wrong length, naming the argument', () => {
    expect(() => abytes('x', 1, 'nonce')).toThrow(TypeError);
    expect(() => abytes([1, 2], 2, 'nonce')).toThrow(/^nonce: expected Uint8Array$/);
    expect(() => abytes(new Uint16Array(16), 32, 'key')).toThrow(TypeError);
    expect(() => abytes(new Uint8Array(31), 32, 'key')).toThrow(RangeError);
    expect(() => abytes(new Uint8Array(31), 32, 'key')).toThrow('key: expected 32 bytes, got 31');
  });
});

describe('randomKey / randomBytes', () => {
  it('gives 32 fresh bytes each time', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 64; i++) {
      const k = randomKey();
      expect(k).toBeInstanceOf(Uint8Array);
      expect(k.length).toBe(KEY_LENGTH);
      keys.add(toHex(k));
    }
    expect(keys.size).toBe(64);
    expect(randomBytes(7).length).toBe(7);
    expect(randomBytes(0).length).toBe(0);
  });
});

describe('constantTimeEqual', () => {
  it('is true for equal contents, including views at different offsets', () => {
    const a = fromHex('00112233445566778899');
    const big = fromHex('ff00112233445566778899ff');
    expect(constantTimeEqual(a, big.subarray(1, 11))).toBe(true);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });
  it('is false for any single differing byte or bit', () => {
    const a = randomBytes(32);
    for (let i = 0; i < a.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const b = new Uint8Array(a);
        b[i] = b[i]! ^ bit;
        expect(constantTimeEqual(a, b)).toBe(false);
      }
    }
  });
  it('is false, not an exception, when lengths differ', () => {
    expect(constantTimeEqual(new Uint8Array(32), new Uint8Array(31))).toBe(false);
    expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(1))).toBe(false);
  });
});

describe('wipe', () => {
  it('zeroes the secret in place, and ignores undefined', () => {
    const k = randomBytes(32).map((b) => b | 1);
    const view = k.subarray(8, 16);
    wipe(k);
    expect(k.every((b) => b === 0)).toBe(true);
    expect(view.every((b) => b === 0)).toBe(true);
    expect(() => wipe(undefined)).not.toThrow();
  });
});

describe('hex and base64', () => {
  it('round-trip, including views into larger buffers', () => {
    const big = fromHex('aabbccddeeff');
    const v = big.subarray(2, 5);
    expect(toHex(v)).toBe('ccddee');
    expect(toBase64(v)).toBe('zN3u');
    expect(toHex(fromBase64('zN3u'))).toBe('ccddee');
    expect(toHex(fromHex('0A0b'))).toBe('0a0b');
    expect(fromHex('')).toHaveLength(0);
    for (let n = 0; n < 40; n++) {
      const b = randomBytes(n);
      expect(toHex(fromBase64(toBase64(b)))).toBe(toHex(b));
      expect(toHex(fromHex(toHex(b)))).toBe(toHex(b));
    }
  });
  it('fromHex refuses odd lengths and non-hex characters', () => {
    for (const bad of ['a', 'abc', 'zz', '0x00', '00 11']) expect(() => fromHex(bad), bad).toThrow(TypeError);
  });
  it('concatBytes joins in order', () => {
    expect(toHex(concatBytes(fromHex('01'), new Uint8Array(0), fromHex('0203')))).toBe('010203');
    expect(concatBytes()).toHaveLength(0);
  });
});
