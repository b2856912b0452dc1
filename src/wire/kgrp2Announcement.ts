/**
 * KGRP2 announcement (paper §7): the plaintext the originator sends through the tree as Iolus
 * data (content type GroupKey). Signed by the originator, so a member holding a subgroup key
 * cannot announce a group key of its own.
 *
 *   epoch u64 ‖ voids u64 ‖ notBefore u64 ‖ notAfter u64 ‖ graceMs u32 ‖ key (32 B)
 *   ‖ originator key id (8 B) ‖ signature (64 B) over "iolus/kgrp2/v1" ‖ group ‖ all of the above
 *
 * `voids` names a pending epoch this one replaces (0 for none): when an expulsion or an
 * entitlement that ended makes the announced next key void, the originator announces a fresh
 * key under a new epoch number, only to the remaining members, and receivers drop the voided
 * one. Epoch numbers thus stay unique per key (an MKI never names two keys).
 */
import { createHash } from 'node:crypto';
import { CodecError } from '../errors.js';
import { KEY_LENGTH, concatBytes } from '../crypto/bytes.js';
import { SIGNATURE_LENGTH } from '../crypto/sign.js';
import { Reader, Writer } from './codec.js';

export const KGRP2_ANNOUNCEMENT_LENGTH = 8 + 8 + 8 + 8 + 4 + KEY_LENGTH + 8 + SIGNATURE_LENGTH;
const CONTEXT = new TextEncoder().encode('iolus/kgrp2/v1');

export interface Kgrp2Announcement {
  epoch: number;
  /** The pending epoch this announcement voids, or 0. */
  voids: number;
  notBefore: number;
  notAfter: number;
  graceMs: number;
  key: Uint8Array;
  originatorKeyId: Uint8Array;
  signature: Uint8Array;
}

/** 8-byte id of an originator's Ed25519 public key. */
export function originatorKeyId(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, 8));
}

function body(a: Omit<Kgrp2Announcement, 'signature'>): Uint8Array {
  const w = new Writer(KGRP2_ANNOUNCEMENT_LENGTH - SIGNATURE_LENGTH);
  w.u64(a.epoch).u64(a.voids).u64(a.notBefore).u64(a.notAfter).u32(a.graceMs).bytes(a.key).bytes(a.originatorKeyId);
  return w.done();
}

/** The bytes the originator signs. */
export function kgrp2SignedBytes(group: Uint8Array, a: Omit<Kgrp2Announcement, 'signature'>): Uint8Array {
  return concatBytes(CONTEXT, group, body(a));
}

export function encodeKgrp2Announcement(a: Kgrp2Announcement): Uint8Array {
  if (a.key.length !== KEY_LENGTH) throw new RangeError('key: expected 32 bytes');
  if (a.originatorKeyId.length !== 8) throw new RangeError('originatorKeyId: expected 8 bytes');
  if (a.signature.length !== SIGNATURE_LENGTH) throw new RangeError('signature: expected 64 bytes');
  return concatBytes(body(a), a.signature);
}

export function decodeKgrp2Announcement(bytes: Uint8Array): Kgrp2Announcement {
  if (bytes.length !== KGRP2_ANNOUNCEMENT_LENGTH) throw new CodecError('codec.length', `KGRP2 announcement of ${bytes.length} bytes, expected ${KGRP2_ANNOUNCEMENT_LENGTH}`);
  const r = new Reader(bytes);
  const a: Kgrp2Announcement = {
    epoch: r.u64('epoch'),
    voids: r.u64('voids'),
    notBefore: r.u64('notBefore'),
    notAfter: r.u64('notAfter'),
    graceMs: r.u32('graceMs'),
    key: r.bytes(KEY_LENGTH, 'key'),
    originatorKeyId: r.bytes(8, 'originatorKeyId'),
    signature: r.bytes(SIGNATURE_LENGTH, 'signature'),
  };
  r.end('KGRP2 announcement');
  if (a.notAfter <= a.notBefore) throw new CodecError('codec.validity', 'KGRP2 announcement: notAfter not after notBefore');
  if (a.epoch === 0) throw new CodecError('codec.epoch', 'KGRP2 announcement: epoch 0');
  if (a.voids >= a.epoch) throw new CodecError('codec.epoch', 'KGRP2 announcement: voids an epoch not below its own');
  return a;
}
