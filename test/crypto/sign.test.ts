/** Ed25519 (RFC 8032 §7.1) through signingKeyFromSeed, signBytes and verifyBytes. */
import { describe, expect, it } from 'vitest';
import { randomBytes, toHex } from '../../src/crypto/bytes.js';
import {
  generateSigningKey, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, signBytes, signingKeyFromSeed, signingKeySeed, verifyBytes,
} from '../../src/crypto/sign.js';
import { h, loadVectors } from './vectors.js';

interface EdCase { name: string; secretKey: string; publicKey: string; message: string; signature: string }
const vectors = loadVectors<EdCase>('ed25519-rfc8032.json');

describe('Ed25519: RFC 8032 §7.1', () => {
  it('has TEST 1, 2, 3 and SHA(abc)', () => expect(vectors.cases.map((c) => c.name)).toEqual(['TEST 1', 'TEST 2', 'TEST 3', 'TEST SHA(abc)']));

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s: public key, signature, verification', (_name, c) => {
    const key = signingKeyFromSeed(h(c.secretKey));
    expect(toHex(key.publicKey)).toBe(c.publicKey);
    expect(toHex(signingKeySeed(key))).toBe(c.secretKey);
    const sig = signBytes(key, h(c.message));
    expect(sig.length).toBe(SIGNATURE_LENGTH);
    expect(toHex(sig)).toBe(c.signature);
    expect(verifyBytes(h(c.publicKey), h(c.message), h(c.signature))).toBe(true);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s: any flipped bit of signature, message or key fails', (_name, c) => {
    const pub = h(c.publicKey);
    const msg = h(c.message);
    const sig = h(c.signature);
    for (let i = 0; i < sig.length; i++) {
      const s = new Uint8Array(sig);
      s[i] = s[i]! ^ (1 << (i % 8));
      expect(verifyBytes(pub, msg, s), `signature byte ${i}`).toBe(false);
    }
    for (let i = 0; i < msg.length; i++) {
      const m = new Uint8Array(msg);
      m[i] = m[i]! ^ (1 << (i % 8));
      expect(verifyBytes(pub, m, sig), `message byte ${i}`).toBe(false);
    }
    for (let i = 0; i < pub.length; i++) {
      const p = new Uint8Array(pub);
      p[i] = p[i]! ^ (1 << (i % 8));
      expect(verifyBytes(p, msg, sig), `public key byte ${i}`).toBe(false);
    }
    expect(verifyBytes(pub, new Uint8Array([...msg, 0]), sig)).toBe(false);
  });

  it('refuses another vector\'s signature', () => {
    const [a, b] = [vectors.cases[1]!, vectors.cases[2]!];
    expect(verifyBytes(h(a.publicKey), h(a.message), h(b.signature))).toBe(false);
    expect(verifyBytes(h(b.publicKey), h(a.message), h(a.signature))).toBe(false);
  });
});

describe('verifyBytes never throws on attacker input', () => {
  const key = generateSigningKey();
  const msg = randomBytes(100);
  const sig = signBytes(key, msg);

  it('returns false for wrong lengths of signature and key', () => {
    expect(verifyBytes(key.publicKey, msg, sig)).toBe(true);
    for (const n of [0, 1, 63, 65, 128]) expect(verifyBytes(key.publicKey, msg, new Uint8Array(n))).toBe(false);
    for (const n of [0, 31, 33, 64]) expect(verifyBytes(new Uint8Array(n), msg, sig)).toBe(false);
    expect(verifyBytes(key.publicKey, msg, new Uint8Array([...sig, 0]))).toBe(false);
  });

  it('returns false for keys that are not points, small-order keys, and junk signatures', () => {
    const junkKeys = [
      new Uint8Array(32),
      new Uint8Array(32).fill(0xff),
      h('0100000000000000000000000000000000000000000000000000000000000000'), // identity, order 1
      h('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'), // order 2
      h('0200000000000000000000000000000000000000000000000000000000000000'), // y = 2: not on the curve
    ];
    for (const k of junkKeys) {
      expect(() => verifyBytes(k, msg, sig)).not.toThrow();
      expect(verifyBytes(k, msg, sig)).toBe(false);
    }
    for (let i = 0; i < 200; i++) expect(verifyBytes(randomBytes(32), randomBytes(i), randomBytes(64))).toBe(false);
    // S ≥ L (non-canonical scalar) must not verify.
    const high = new Uint8Array(sig);
    high.fill(0xff, 32);
    expect(verifyBytes(key.publicKey, msg, high)).toBe(false);
  });
});

describe('signing keys', () => {
  it('generateSigningKey gives distinct 32-byte public keys that verify their own signatures', () => {
    const a = generateSigningKey();
    const b = generateSigningKey();
    expect(a.publicKey.length).toBe(PUBLIC_KEY_LENGTH);
    expect(toHex(a.publicKey)).not.toBe(toHex(b.publicKey));
    const m = randomBytes(33);
    expect(verifyBytes(a.publicKey, m, signBytes(a, m))).toBe(true);
    expect(verifyBytes(b.publicKey, m, signBytes(a, m))).toBe(false);
  });

  it('a seed round-trips through signingKeySeed and signs deterministically', () => {
    const a = generateSigningKey();
    const b = signingKeyFromSeed(signingKeySeed(a));
    expect(toHex(b.publicKey)).toBe(toHex(a.publicKey));
    const m = randomBytes(10);
    expect(toHex(signBytes(a, m))).toBe(toHex(signBytes(b, m)));
  });

  it('signingKeyFromSeed guards the seed, naming it', () => {
    expect(() => signingKeyFromSeed(new Uint8Array(31))).toThrow(/^seed: expected 32 bytes/);
    expect(() => signingKeyFromSeed(new Uint8Array(64))).toThrow(RangeError);
    expect(() => signingKeyFromSeed('x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
