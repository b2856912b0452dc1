/** AES-GCM known answers (McGrew & Viega / SP 800-38D), seal/open, and 60-byte key wraps. */
import { describe, expect, it } from 'vitest';
import { CryptoVerificationError } from '../../src/errors.js';
import { randomBytes, randomKey, toHex } from '../../src/crypto/bytes.js';
import {
  gcmDecrypt, gcmEncrypt, NONCE_LENGTH, open, seal, TAG_LENGTH, unwrapKey, wrapKey, WRAPPED_KEY_LENGTH,
} from '../../src/crypto/aead.js';
import { h, loadVectors } from './vectors.js';

interface GcmCase { name: string; key: string; iv: string; pt: string; aad: string; ct: string; tag: string }
const vectors = loadVectors<GcmCase>('aes-gcm-mcgrew-viega.json');

function flipEach(bytes: Uint8Array, f: (mutated: Uint8Array, index: number) => void): void {
  for (let i = 0; i < bytes.length; i++) {
    const m = new Uint8Array(bytes);
    m[i] = m[i]! ^ (1 << (i % 8));
    f(m, i);
  }
}

describe('gcmEncrypt / gcmDecrypt: GCM spec test vectors', () => {
  it('covers AES-128, AES-192 and AES-256, with and without AAD', () => {
    const lengths = new Set(vectors.cases.map((c) => c.key.length / 2));
    expect([...lengths].sort()).toEqual([16, 24, 32]);
    expect(vectors.cases.filter((c) => c.aad !== '').length).toBeGreaterThanOrEqual(3);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const sealed = gcmEncrypt(h(c.key), h(c.iv), h(c.pt), h(c.aad));
    expect(toHex(sealed)).toBe(c.ct + c.tag);
    expect(toHex(gcmDecrypt(h(c.key), h(c.iv), h(c.ct + c.tag), h(c.aad)))).toBe(c.pt);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s: a flipped bit anywhere fails with CryptoVerificationError', (_name, c) => {
    const sealed = h(c.ct + c.tag);
    flipEach(sealed, (m) => expect(() => gcmDecrypt(h(c.key), h(c.iv), m, h(c.aad))).toThrow(CryptoVerificationError));
    flipEach(h(c.iv), (iv) => expect(() => gcmDecrypt(h(c.key), iv, sealed, h(c.aad))).toThrow(CryptoVerificationError));
    flipEach(h(c.key), (k) => expect(() => gcmDecrypt(k, h(c.iv), sealed, h(c.aad))).toThrow(CryptoVerificationError));
    const aad = h(c.aad);
    flipEach(aad, (a) => expect(() => gcmDecrypt(h(c.key), h(c.iv), sealed, a)).toThrow(CryptoVerificationError));
    expect(() => gcmDecrypt(h(c.key), h(c.iv), sealed, h(c.aad + '00'))).toThrow(CryptoVerificationError);
  });

  it('refuses a ciphertext shorter than its tag, and a truncated tag, as CryptoVerificationError', () => {
    const c = vectors.cases[3]!;
    const sealed = h(c.ct + c.tag);
    for (const n of [0, 1, 15]) {
      expect(() => gcmDecrypt(h(c.key), h(c.iv), sealed.subarray(0, n), h(c.aad))).toThrow(CryptoVerificationError);
    }
    for (const n of [16, 17, sealed.length - 1]) {
      expect(() => gcmDecrypt(h(c.key), h(c.iv), sealed.subarray(0, n), h(c.aad))).toThrow(CryptoVerificationError);
    }
    expect(() => gcmDecrypt(h(c.key), h(c.iv), sealed.subarray(0, 15), h(c.aad))).toThrow(/shorter than its tag/);
  });

  it('guards key and nonce lengths, naming them', () => {
    for (const n of [0, 15, 17, 31, 33, 64]) {
      expect(() => gcmEncrypt(new Uint8Array(n), new Uint8Array(12), new Uint8Array(0), new Uint8Array(0))).toThrow(/^key:/);
      expect(() => gcmDecrypt(new Uint8Array(n), new Uint8Array(12), new Uint8Array(16), new Uint8Array(0))).toThrow(RangeError);
    }
    for (const n of [0, 8, 11, 13, 16]) {
      expect(() => gcmEncrypt(new Uint8Array(32), new Uint8Array(n), new Uint8Array(0), new Uint8Array(0))).toThrow(/^nonce: expected 12 bytes/);
      expect(() => gcmDecrypt(new Uint8Array(32), new Uint8Array(n), new Uint8Array(16), new Uint8Array(0))).toThrow(/^nonce:/);
    }
  });
});

describe('seal / open', () => {
  it('round-trips with nonce ‖ ciphertext ‖ tag and a fresh nonce each time', () => {
    const key = randomKey();
    const aad = randomBytes(48);
    for (const n of [0, 1, 16, 1000]) {
      const pt = randomBytes(n);
      const a = seal(key, pt, aad);
      const b = seal(key, pt, aad);
      expect(a.length).toBe(NONCE_LENGTH + n + TAG_LENGTH);
      expect(toHex(a.subarray(0, 12))).not.toBe(toHex(b.subarray(0, 12)));
      expect(toHex(open(key, a, aad))).toBe(toHex(pt));
      expect(toHex(open(key, b, aad))).toBe(toHex(pt));
      // The explicit-nonce form agrees with seal's layout.
      expect(toHex(gcmEncrypt(key, a.subarray(0, 12), pt, aad))).toBe(toHex(a.subarray(12)));
    }
  });

  it('never repeats or zeroes a nonce across many seals (the nonce pool refills)', () => {
    const key = randomKey();
    const nonces = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const n = toHex(seal(key, new Uint8Array(0), new Uint8Array(0)).subarray(0, NONCE_LENGTH));
      expect(n).not.toBe('00'.repeat(NONCE_LENGTH));
      nonces.add(n);
    }
    expect(nonces.size).toBe(2000);
  });

  it('opens views into larger buffers', () => {
    const key = randomKey();
    const sealed = seal(key, randomBytes(20), new Uint8Array(0));
    const host = new Uint8Array(sealed.length + 10);
    host.set(sealed, 5);
    expect(open(key, host.subarray(5, 5 + sealed.length), new Uint8Array(0)).length).toBe(20);
  });

  it('refuses a wrong key, a wrong AAD and a short box as CryptoVerificationError', () => {
    const key = randomKey();
    const sealed = seal(key, randomBytes(10), new Uint8Array([1, 2, 3]));
    expect(() => open(randomKey(), sealed, new Uint8Array([1, 2, 3]))).toThrow(CryptoVerificationError);
    expect(() => open(key, sealed, new Uint8Array([1, 2, 4]))).toThrow(CryptoVerificationError);
    expect(() => open(key, sealed, new Uint8Array(0))).toThrow(CryptoVerificationError);
    for (const n of [0, 12, 27]) expect(() => open(key, sealed.subarray(0, n), new Uint8Array(0))).toThrow(CryptoVerificationError);
  });

  it('takes 256-bit keys only, naming the key', () => {
    expect(() => seal(new Uint8Array(16), new Uint8Array(0), new Uint8Array(0))).toThrow(/^key: expected 32 bytes/);
    expect(() => open(new Uint8Array(16), new Uint8Array(28), new Uint8Array(0))).toThrow(/^key: expected 32 bytes/);
  });
});

describe('wrapKey / unwrapKey ({K\'}K)', () => {
  const aad = randomBytes(52);

  it('round-trips a 32-byte key into 60 bytes', () => {
    const kek = randomKey();
    const key = randomKey();
    const wrapped = wrapKey(kek, key, aad);
    expect(WRAPPED_KEY_LENGTH).toBe(60);
    expect(wrapped.length).toBe(60);
    expect(toHex(unwrapKey(kek, wrapped, aad))).toBe(toHex(key));
    expect(toHex(wrapped)).not.toContain(toHex(key));
  });

  it('detects a flipped bit in nonce, ciphertext, tag or AAD', () => {
    const kek = randomKey();
    const wrapped = wrapKey(kek, randomKey(), aad);
    const regions: Array<[string, number, number]> = [['nonce', 0, 12], ['ciphertext', 12, 44], ['tag', 44, 60]];
    for (const [what, from, to] of regions) {
      for (let i = from; i < to; i++) {
        for (const bit of [0, 3, 7]) {
          const m = new Uint8Array(wrapped);
          m[i] = m[i]! ^ (1 << bit);
          expect(() => unwrapKey(kek, m, aad), `${what} byte ${i} bit ${bit}`).toThrow(CryptoVerificationError);
        }
      }
    }
    flipEach(aad, (a, i) => expect(() => unwrapKey(kek, wrapped, a), `aad byte ${i}`).toThrow(CryptoVerificationError));
    expect(() => unwrapKey(kek, wrapped, aad.subarray(1))).toThrow(CryptoVerificationError);
    expect(() => unwrapKey(randomKey(), wrapped, aad)).toThrow(CryptoVerificationError);
  });

  it('guards lengths, naming the argument', () => {
    const kek = randomKey();
    expect(() => wrapKey(kek, new Uint8Array(16), aad)).toThrow(/^key: expected 32 bytes/);
    expect(() => wrapKey(new Uint8Array(16), randomKey(), aad)).toThrow(/^key: expected 32 bytes, got 16/);
    expect(() => unwrapKey(kek, new Uint8Array(59), aad)).toThrow(/^wrapped: expected 60 bytes/);
    expect(() => unwrapKey(kek, new Uint8Array(61), aad)).toThrow(RangeError);
  });
});
