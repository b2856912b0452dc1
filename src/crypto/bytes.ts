/** Argument guards and small byte helpers (noble-style: every guard names its argument). */
import { randomBytes as nodeRandomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_LENGTH = 32;

/** Throws a TypeError/RangeError naming `name` unless `value` is a Uint8Array of `length` bytes. */
export function abytes(value: unknown, length: number | undefined, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (length !== undefined && value.length !== length) {
    throw new RangeError(`${name}: expected ${length} bytes, got ${value.length}`);
  }
  return value;
}

/** 32 fresh random bytes: a member key, subgroup key, KGRP2 or data key. */
export function randomKey(): Uint8Array {
  return new Uint8Array(nodeRandomBytes(KEY_LENGTH));
}

export function randomBytes(length: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(length));
}

/** Constant-time equality; false (not an exception) when lengths differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Overwrites a secret we no longer need. Best effort: JS gives no stronger guarantee. */
export function wipe(secret: Uint8Array | undefined): void {
  if (secret) secret.fill(0);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new TypeError('hex: not an even-length hex string');
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toBase64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
}

export function fromBase64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}
