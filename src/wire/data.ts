/**
 * Data (paper §6.5). The payload is sealed once, by the sender, under a fresh data key; only
 * that 32-byte key is wrapped for each hop, so an intermediary rewraps 60 bytes and never
 * touches the payload ("the old trick of indirection").
 *
 *   contentType u8 ‖ origin (subgroup u32 ‖ member u32 ‖ seq u64) ‖ {dataKey} (60 B) ‖ payload (u32 len ‖ sealed)
 *
 * DataMethod1: wrapped under the subgroup key, multicast by any member or forwarding agent.
 * DataMethod2: wrapped under the subgroup key and signed by the agent.
 * DataUp:      wrapped under the sender's member key, unicast to its agent (method 2's first hop).
 *
 * The data-key wrap is bound to this hop's header; the payload is bound to the group, the
 * content type and the origin, which never change along the tree.
 */
import { CodecError } from '../errors.js';
import { SIGNATURE_LENGTH } from '../crypto/sign.js';
import { WRAPPED_KEY_LENGTH, NONCE_LENGTH, TAG_LENGTH } from '../crypto/aead.js';
import { MAX_MESSAGE_LENGTH, Reader } from './codec.js';
import { encodeFrame, HEADER_LENGTH, MessageType, type Frame, type Header } from './header.js';

export enum ContentType {
  Application = 0,
  /** A KGRP2 announcement (src/wire/kgrp2Announcement.ts). */
  GroupKey = 1,
}

export interface Origin {
  subgroup: number;
  member: number;
  seq: number;
}

export interface DataMessage {
  contentType: ContentType;
  origin: Origin;
  wrappedKey: Uint8Array;
  /** nonce ‖ ciphertext ‖ tag under the data key. */
  sealedPayload: Uint8Array;
}

const FIXED = 1 + 16 + WRAPPED_KEY_LENGTH + 4;
/** Largest sealed payload any data message may carry (signed or not). */
export const MAX_SEALED_PAYLOAD = MAX_MESSAGE_LENGTH - HEADER_LENGTH - FIXED - SIGNATURE_LENGTH;
/** Largest application payload: what fits once nonce and tag are added. */
export const MAX_PAYLOAD = MAX_SEALED_PAYLOAD - NONCE_LENGTH - TAG_LENGTH;

const DATA_TYPES = new Set([MessageType.DataMethod1, MessageType.DataMethod2, MessageType.DataUp]);

/** Associated data of the sealed payload: group ‖ content type ‖ origin. */
export function payloadAad(group: Uint8Array, contentType: ContentType, origin: Origin): Uint8Array {
  const aad = new Uint8Array(group.length + 17);
  aad.set(group, 0);
  const v = new DataView(aad.buffer);
  let o = group.length;
  v.setUint8(o, contentType);
  o += 1;
  v.setUint32(o, origin.subgroup, false);
  v.setUint32(o + 4, origin.member, false);
  v.setUint32(o + 8, Math.floor(origin.seq / 2 ** 32), false);
  v.setUint32(o + 12, origin.seq >>> 0, false);
  return aad;
}

export function encodeData(
  h: Header & { type: MessageType.DataMethod1 | MessageType.DataMethod2 | MessageType.DataUp },
  m: { contentType: ContentType; origin: Origin; sealedPayload: Uint8Array },
  wrap: (aad: Uint8Array) => Uint8Array,
  sign?: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  if (m.sealedPayload.length > MAX_SEALED_PAYLOAD) throw new RangeError(`payload exceeds ${MAX_PAYLOAD} bytes`);
  return encodeFrame(h, FIXED + m.sealedPayload.length, (w, hb) => {
    w.u8(m.contentType).u32(m.origin.subgroup).u32(m.origin.member).u64(m.origin.seq);
    const wrapped = wrap(hb);
    if (wrapped.length !== WRAPPED_KEY_LENGTH) throw new Error('wrapped key must be 60 bytes');
    w.bytes(wrapped).vbytes(m.sealedPayload);
  }, sign);
}

export function decodeData(f: Frame): DataMessage {
  if (!DATA_TYPES.has(f.header.type)) throw new CodecError('codec.type', 'not a data message');
  const r = new Reader(f.body);
  const contentType = r.u8('contentType');
  if (!(contentType in ContentType)) throw new CodecError('codec.content', `unknown content type ${contentType}`);
  const origin: Origin = { subgroup: r.u32('origin subgroup'), member: r.u32('origin member'), seq: r.u64('origin seq') };
  const wrappedKey = r.bytes(WRAPPED_KEY_LENGTH, 'wrapped data key');
  const sealedPayload = r.vbytes(MAX_SEALED_PAYLOAD, 'payload');
  if (sealedPayload.length < NONCE_LENGTH + TAG_LENGTH) throw new CodecError('codec.payload', 'sealed payload shorter than nonce and tag');
  r.end('Data');
  return { contentType, origin, wrappedKey, sealedPayload };
}
