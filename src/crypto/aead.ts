/**
 * AES-256-GCM: the one AEAD of suite 1. Used for key wrapping (a 32-byte key under another
 * 32-byte key) and for data payloads, with the message header as associated data so a
 * ciphertext cannot be moved to another header.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import { CryptoVerificationError } from '../errors.js';
import { abytes, KEY_LENGTH } from './bytes.js';

export const NONCE_LENGTH = 12;
export const TAG_LENGTH = 16;
/** Size of a wrapped 32-byte key: nonce ‖ ciphertext ‖ tag. */
export const WRAPPED_KEY_LENGTH = NONCE_LENGTH + KEY_LENGTH + TAG_LENGTH;

function gcmName(key: Uint8Array): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' {
  return `aes-${key.length * 8}-gcm` as 'aes-256-gcm';
}

/** Encrypts with an explicit nonce (known-answer tests); returns ciphertext ‖ tag. */
export function gcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError('key: expected 16, 24 or 32 bytes');
  abytes(nonce, NONCE_LENGTH, 'nonce');
  const c = createCipheriv(gcmName(key), key, nonce, { authTagLength: TAG_LENGTH });
  c.setAAD(aad);
  const head = c.update(plaintext);
  const tail = c.final();
  const tag = c.getAuthTag();
  const out = new Uint8Array(head.length + tail.length + TAG_LENGTH);
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(tag, head.length + tail.length);
  return out;
}

/** Inverse of gcmEncrypt; throws CryptoVerificationError when the tag does not verify. */
export function gcmDecrypt(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new RangeError('key: expected 16, 24 or 32 bytes');
  abytes(nonce, NONCE_LENGTH, 'nonce');
  if (sealed.length < TAG_LENGTH) throw new CryptoVerificationError('crypto.short', 'ciphertext shorter than its tag');
  const d = createDecipheriv(gcmName(key), key, nonce, { authTagLength: TAG_LENGTH });
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
  const head = d.update(sealed.subarray(0, sealed.length - TAG_LENGTH));
  try {
    const tail = d.final();
    if (tail.length === 0) return new Uint8Array(head.buffer, head.byteOffset, head.byteLength);
    return new Uint8Array(Buffer.concat([head, tail]));
  } catch (cause) {
    throw new CryptoVerificationError('crypto.tag', 'AES-GCM tag does not verify', { cause });
  }
}

// Random nonces come from a pool refilled 4 KiB at a time: one CSPRNG call per ~340 nonces
// instead of one per message (a measurable share of a forwarding hop's cost).
const NONCE_POOL = new Uint8Array(4096 - (4096 % NONCE_LENGTH));
let poolOffset = NONCE_POOL.length;

function nextNonce(): Uint8Array {
  if (poolOffset + NONCE_LENGTH > NONCE_POOL.length) {
    randomFillSync(NONCE_POOL);
    poolOffset = 0;
  }
  const n = NONCE_POOL.slice(poolOffset, poolOffset + NONCE_LENGTH);
  // Never hand out the same pool bytes twice.
  NONCE_POOL.fill(0, poolOffset, poolOffset + NONCE_LENGTH);
  poolOffset += NONCE_LENGTH;
  return n;
}

/** seal: random nonce, output nonce ‖ ciphertext ‖ tag, 256-bit key only. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  abytes(key, KEY_LENGTH, 'key');
  const nonce = nextNonce();
  const body = gcmEncrypt(key, nonce, plaintext, aad);
  const out = new Uint8Array(NONCE_LENGTH + body.length);
  out.set(nonce, 0);
  out.set(body, NONCE_LENGTH);
  return out;
}

/** open: inverse of seal. */
export function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  abytes(key, KEY_LENGTH, 'key');
  if (sealed.length < NONCE_LENGTH + TAG_LENGTH) {
    throw new CryptoVerificationError('crypto.short', 'sealed box shorter than nonce and tag');
  }
  return gcmDecrypt(key, sealed.subarray(0, NONCE_LENGTH), sealed.subarray(NONCE_LENGTH), aad);
}

/** {K'}K: wraps a 32-byte key under a 32-byte key, bound to `aad`. */
export function wrapKey(kek: Uint8Array, key: Uint8Array, aad: Uint8Array): Uint8Array {
  abytes(key, KEY_LENGTH, 'key');
  return seal(kek, key, aad);
}

export function unwrapKey(kek: Uint8Array, wrapped: Uint8Array, aad: Uint8Array): Uint8Array {
  abytes(wrapped, WRAPPED_KEY_LENGTH, 'wrapped');
  return open(kek, wrapped, aad);
}
