/**
 * Master Key Identifier (RFC 3711 §3.1): 4 bytes naming the master key a packet was
 * protected with, here the group epoch as a big-endian u32 (DerivedKey.mki). werift-rtp has
 * no MKI, so the adapter inserts it after werift protects a packet and strips it before
 * werift checks one. Placement per profile (SrtpProfile.mkiOffsetFromEnd): before the HMAC
 * tag, which does not cover it (RFC 3711 §3.1, §3.4); after the AEAD tag (RFC 7714 §8, §9).
 */
import { readU32 } from './rtpPacket.js';

export const MKI_LENGTH = 4;

/** Returns a new packet with `mki` inserted `offsetFromEnd` bytes before the end of `packet`. */
export function insertMki(packet: Uint8Array, mki: Uint8Array, offsetFromEnd: number): Buffer {
  if (mki.length !== MKI_LENGTH) throw new RangeError(`mki: expected ${MKI_LENGTH} bytes, got ${mki.length}`);
  if (offsetFromEnd < 0 || offsetFromEnd > packet.length) throw new RangeError(`offsetFromEnd: ${offsetFromEnd} outside the packet`);
  const at = packet.length - offsetFromEnd;
  const out = Buffer.allocUnsafe(packet.length + MKI_LENGTH);
  out.set(packet.subarray(0, at), 0);
  out.set(mki, at);
  out.set(packet.subarray(at), at + MKI_LENGTH);
  return out;
}

/** The MKI of a received packet as a u32, or undefined when the packet is too short to hold one. */
export function readMki(packet: Uint8Array, offsetFromEnd: number): number | undefined {
  const at = packet.length - offsetFromEnd - MKI_LENGTH;
  if (at < 0) return undefined;
  return readU32(packet, at);
}

/** The packet without its MKI (a copy: the MKI sits inside, not at an end, for HMAC suites). */
export function stripMki(packet: Uint8Array, offsetFromEnd: number): Buffer {
  const at = packet.length - offsetFromEnd - MKI_LENGTH;
  if (at < 0) throw new RangeError('packet: too short to hold an MKI');
  if (offsetFromEnd === 0) return Buffer.from(packet.buffer, packet.byteOffset, at);
  const out = Buffer.allocUnsafe(packet.length - MKI_LENGTH);
  out.set(packet.subarray(0, at), 0);
  out.set(packet.subarray(at + MKI_LENGTH), at);
  return out;
}

/** The u32 an MKI reads as (the epoch, for keys from keyMaterial.ts). */
export function mkiValue(mki: Uint8Array): number {
  if (mki.length !== MKI_LENGTH) throw new RangeError(`mki: expected ${MKI_LENGTH} bytes, got ${mki.length}`);
  return readU32(mki, 0);
}
