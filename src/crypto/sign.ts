/** Ed25519 agent signatures (RFC 8032) over node:crypto KeyObjects. */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { abytes } from './bytes.js';

export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;

// DER prefixes of PKCS#8 / SPKI for a raw Ed25519 key (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKey {
  readonly privateKey: KeyObject;
  /** Raw 32-byte public key, as it travels in a join grant. */
  readonly publicKey: Uint8Array;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

/** From a 32-byte seed (RFC 8032 secret key). */
export function signingKeyFromSeed(seed: Uint8Array): SigningKey {
  abytes(seed, 32, 'seed');
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/** The 32-byte seed of a signing key, to persist it. */
export function signingKeySeed(key: SigningKey): Uint8Array {
  const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
  return new Uint8Array(der.subarray(der.length - 32));
}

function rawPublicKey(k: KeyObject): Uint8Array {
  const der = k.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - PUBLIC_KEY_LENGTH));
}

const verifierCache = new Map<string, KeyObject>();

/** A KeyObject for a raw public key; cached, since members verify every agent message. */
export function publicKeyObject(raw: Uint8Array): KeyObject {
  abytes(raw, PUBLIC_KEY_LENGTH, 'publicKey');
  const id = Buffer.from(raw).toString('base64');
  let k = verifierCache.get(id);
  if (!k) {
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    if (verifierCache.size > 4096) verifierCache.clear();
    verifierCache.set(id, k);
  }
  return k;
}

export function signBytes(key: SigningKey, message: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, key.privateKey));
}

/** False for a bad signature or a malformed key; never throws on attacker input. */
export function verifyBytes(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_LENGTH || publicKey.length !== PUBLIC_KEY_LENGTH) return false;
  try {
    return verify(null, message, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}
