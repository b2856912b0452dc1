/** HKDF-SHA256 (RFC 5869 Appendix A) and the labeled derivation `iolus/<label>/<epoch>`. */
import { describe, expect, it } from 'vitest';
import { hkdfSync } from 'node:crypto';
import { toHex } from '../../src/crypto/bytes.js';
import { deriveLabeled, hkdfSha256, labelInfo } from '../../src/crypto/hkdf.js';
import { h, loadVectors } from './vectors.js';

interface HkdfCase { name: string; ikm: string; salt: string; info: string; length: number; prk: string; okm: string }
const vectors = loadVectors<HkdfCase>('hkdf-rfc5869.json');

describe('hkdfSha256: RFC 5869 Appendix A', () => {
  it('has the three SHA-256 cases', () => expect(vectors.cases).toHaveLength(3));

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const okm = hkdfSha256(h(c.ikm), h(c.salt), h(c.info), c.length);
    expect(okm).toBeInstanceOf(Uint8Array);
    expect(okm.length).toBe(c.length);
    expect(toHex(okm)).toBe(c.okm);
  });

  it('a prefix of a longer output is the shorter output (T(1) ‖ T(2) ‖ …)', () => {
    const c = vectors.cases[1]!;
    const long = hkdfSha256(h(c.ikm), h(c.salt), h(c.info), 82);
    const short = hkdfSha256(h(c.ikm), h(c.salt), h(c.info), 33);
    expect(toHex(short)).toBe(toHex(long.subarray(0, 33)));
  });

  it('accepts the bounds 1 and 255·32 and refuses outside them, naming length', () => {
    const z = new Uint8Array(0);
    expect(hkdfSha256(z, z, z, 1).length).toBe(1);
    expect(hkdfSha256(z, z, z, 8160).length).toBe(8160);
    for (const bad of [0, -1, 8161, 1.5, Number.NaN]) {
      expect(() => hkdfSha256(z, z, z, bad)).toThrow(RangeError);
      expect(() => hkdfSha256(z, z, z, bad)).toThrow(/^length:/);
    }
  });

  it('refuses non-bytes, naming the argument', () => {
    const z = new Uint8Array(0);
    const s = 'abc' as unknown as Uint8Array;
    expect(() => hkdfSha256(s, z, z, 32)).toThrow(/^ikm:/);
    expect(() => hkdfSha256(z, s, z, 32)).toThrow(/^salt:/);
    expect(() => hkdfSha256(z, z, s, 32)).toThrow(/^info:/);
    expect(() => hkdfSha256(s, z, z, 32)).toThrow(TypeError);
  });
});

describe('deriveLabeled', () => {
  const root = new Uint8Array(32).map((_, i) => i);

  it('is HKDF-SHA256 with an empty salt and info iolus/<label>/<epoch>', () => {
    const expected = new Uint8Array(hkdfSync('sha256', root, new Uint8Array(0), Buffer.from('iolus/srtp/7'), 30));
    expect(toHex(deriveLabeled(root, 'srtp', 7, 30))).toBe(toHex(expected));
    expect(labelInfo('srtp', 7)).toBe('iolus/srtp/7');
    expect(labelInfo('a.b/c-d_e', 12345678901234n)).toBe('iolus/a.b/c-d_e/12345678901234');
  });

  it('is deterministic, and number and bigint epochs agree', () => {
    const a = deriveLabeled(root, 'media', 3, 32);
    const b = deriveLabeled(new Uint8Array(root), 'media', 3, 32);
    const c = deriveLabeled(root, 'media', 3n, 32);
    expect(toHex(a)).toBe(toHex(b));
    expect(toHex(a)).toBe(toHex(c));
  });

  it('separates labels, epochs and roots', () => {
    const seen = new Set<string>();
    const roots = [root, new Uint8Array(32), new Uint8Array(32).fill(0xff)];
    const labels = ['srtp', 'srtcp', 'srtp/master', 'media', 'Media', 'a', 'a.b'];
    const epochs = [0, 1, 2, 10, 11, 2 ** 40];
    for (const r of roots) for (const l of labels) for (const e of epochs) seen.add(toHex(deriveLabeled(r, l, e, 32)));
    expect(seen.size).toBe(roots.length * labels.length * epochs.length);
  });

  it('label/epoch boundaries do not collide (label "x/1", epoch 2 vs label "x", epoch 12)', () => {
    expect(toHex(deriveLabeled(root, 'x/1', 2, 32))).not.toBe(toHex(deriveLabeled(root, 'x', 12, 32)));
    expect(toHex(deriveLabeled(root, 'x1', 2, 32))).not.toBe(toHex(deriveLabeled(root, 'x', 12, 32)));
  });

  it('gives the requested length, a longer output extending the shorter', () => {
    const l = deriveLabeled(root, 'srtp', 1, 46);
    expect(l.length).toBe(46);
    expect(toHex(deriveLabeled(root, 'srtp', 1, 16))).toBe(toHex(l.subarray(0, 16)));
  });

  it('guards its arguments, naming each', () => {
    expect(() => deriveLabeled(new Uint8Array(31), 'srtp', 1, 32)).toThrow(/^root: expected 32 bytes/);
    expect(() => deriveLabeled(new Uint8Array(33), 'srtp', 1, 32)).toThrow(RangeError);
    expect(() => deriveLabeled('k' as unknown as Uint8Array, 'srtp', 1, 32)).toThrow(TypeError);
    for (const bad of ['', '/srtp', 'sr tp', 'ключ', 'a'.repeat(129), '-x', 'x\n']) {
      expect(() => deriveLabeled(root, bad, 1, 32), JSON.stringify(bad)).toThrow(/^label:/);
    }
    expect(deriveLabeled(root, 'a'.repeat(128), 1, 32).length).toBe(32);
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => deriveLabeled(root, 'srtp', bad, 32), String(bad)).toThrow(/^epoch:/);
    }
    expect(() => deriveLabeled(root, 'srtp', -1n, 32)).toThrow(/^epoch:/);
    expect(() => deriveLabeled(root, 'srtp', 1, 0)).toThrow(/^length:/);
  });
});
