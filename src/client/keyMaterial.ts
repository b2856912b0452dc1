/**
 * Derived key material: what applications get instead of raw KGRP2 (DESIGN.md, KGRP2).
 * Every use derives its own bytes by label with HKDF (`iolus/<label>/<epoch>`).
 */
import { deriveLabeled } from '../crypto/hkdf.js';

export interface DerivedKey {
  /** e.g. `srtp/AES_CM_128_HMAC_SHA1_80`, `sframe`, `app/chat`. */
  readonly label: string;
  /** Group epoch of the KGRP2 this was derived from. */
  readonly epoch: number;
  /** Activation time (ms since the Unix epoch). */
  readonly notBefore: number;
  /** End of the epoch (ms); the key stays usable for decryption until notAfter + grace. */
  readonly notAfter: number;
  /** Grace window (ms) after notAfter during which receivers still accept it. */
  readonly graceMs: number;
  /** Derived bytes; their length depends on the label (see keyLengthForLabel). */
  readonly key: Uint8Array;
  /** 4-byte MKI: the epoch as a big-endian u32 (RFC 3711 MKI, as SDES `|MKI:v:4`). */
  readonly mki: Uint8Array;
}

/** SRTP master key ‖ master salt sizes per profile (RFC 3711, RFC 7714, RFC 6188). */
export const SRTP_KEY_LENGTHS: Readonly<Record<string, number>> = {
  AES_CM_128_HMAC_SHA1_80: 30,
  AES_CM_128_HMAC_SHA1_32: 30,
  AEAD_AES_128_GCM: 28,
  AES_256_CM_HMAC_SHA1_80: 46,
  AES_256_CM_HMAC_SHA1_32: 46,
  AEAD_AES_256_GCM: 44,
};

/** How many bytes a label derives. Unknown SRTP profiles are refused; other labels get 32. */
export function keyLengthForLabel(label: string): number {
  if (label.startsWith('srtp/')) {
    const n = SRTP_KEY_LENGTHS[label.slice(5)];
    if (n === undefined) throw new RangeError(`label: unknown SRTP profile '${label.slice(5)}'`);
    return n;
  }
  return 32;
}

export function mkiForEpoch(epoch: number): Uint8Array {
  const m = new Uint8Array(4);
  new DataView(m.buffer).setUint32(0, epoch >>> 0, false);
  return m;
}

export interface GroupKeyEpoch {
  readonly epoch: number;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly graceMs: number;
  /** Raw KGRP2: stays inside src/client and src/keyd. */
  readonly kgrp2: Uint8Array;
}

export function deriveKey(g: GroupKeyEpoch, label: string): DerivedKey {
  return {
    label,
    epoch: g.epoch,
    notBefore: g.notBefore,
    notAfter: g.notAfter,
    graceMs: g.graceMs,
    key: deriveLabeled(g.kgrp2, label, g.epoch, keyLengthForLabel(label)),
    mki: mkiForEpoch(g.epoch),
  };
}

/**
 * Where adapters get keys from: the client library in-process, or the local agent's key API.
 * `keys(label)` returns what is held now (previous, current, next), ordered by epoch.
 */
export interface KeySource {
  keys(label: string): DerivedKey[];
  /** Called whenever the set of held keys changes (a new next key, a voided one, expiry). */
  onChange(listener: () => void): () => void;
}
