/** HKDF-SHA256 (RFC 5869) and the labeled derivation every key use goes through (DESIGN.md, KGRP2). */
import { hkdfSync } from 'node:crypto';
import { abytes, KEY_LENGTH } from './bytes.js';

/** RFC 5869 extract-and-expand with SHA-256. `length` ≤ 255·32. */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  abytes(ikm, undefined, 'ikm');
  abytes(salt, undefined, 'salt');
  abytes(info, undefined, 'info');
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) {
    throw new RangeError(`length: expected 1..8160, got ${length}`);
  }
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

const LABEL_RE = /^[a-z0-9][a-z0-9_.\-/]{0,127}$/i;

/** The info string of a labeled derivation: `iolus/<label>/<epoch>`. */
export function labelInfo(label: string, epoch: number | bigint): string {
  if (!LABEL_RE.test(label)) throw new RangeError(`label: ${JSON.stringify(label)} is not a valid label`);
  if (typeof epoch === 'number' ? !Number.isSafeInteger(epoch) || epoch < 0 : epoch < 0n) {
    throw new RangeError(`epoch: expected a non-negative integer, got ${epoch}`);
  }
  return `iolus/${label}/${epoch}`;
}

/**
 * Derives `length` bytes for one use of a root key (KGRP2 or a subgroup key):
 * HKDF-SHA256 with an empty salt and info = `iolus/<label>/<epoch>`. Applications never
 * see KGRP2 itself, only what this returns for their label.
 */
export function deriveLabeled(root: Uint8Array, label: string, epoch: number | bigint, length: number): Uint8Array {
  abytes(root, KEY_LENGTH, 'root');
  return hkdfSha256(root, new Uint8Array(0), new TextEncoder().encode(labelInfo(label, epoch)), length);
}
