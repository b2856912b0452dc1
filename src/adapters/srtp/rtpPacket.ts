/**
 * Just enough RTP/RTCP parsing to protect and unprotect: where the payload starts, the SSRC
 * and sequence number, and whether a datagram is RTP or RTCP. Every function here takes
 * untrusted bytes and returns `undefined` rather than throwing.
 */

/** Fixed RTP header (RFC 3550 §5.1). */
export const RTP_FIXED_HEADER = 12;
/** RTCP common header: V/P/RC, PT, length, SSRC of sender (RFC 3550 §6.4). */
export const RTCP_MIN_LENGTH = 8;
/** E flag ‖ 31-bit SRTCP index (RFC 3711 §3.4). */
export const SRTCP_INDEX_LENGTH = 4;

export interface RtpHeaderView {
  readonly ssrc: number;
  readonly sequenceNumber: number;
  /** Offset of the payload: after CSRCs and the header extension. */
  readonly payloadOffset: number;
}

/**
 * Parses an RTP header whose packet carries `trailer` bytes after the payload (auth tag,
 * MKI). Refuses anything that is not version 2 or whose CSRC list or extension
 * (RFC 3550 §5.3.1) runs past the payload area.
 */
export function parseRtpHeader(buf: Uint8Array, trailer = 0): RtpHeaderView | undefined {
  const end = buf.length - trailer;
  if (end < RTP_FIXED_HEADER) return undefined;
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return undefined;
  let offset = RTP_FIXED_HEADER + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    // Extension: 16-bit profile-defined field, 16-bit length in 32-bit words (RFC 3550 §5.3.1).
    if (offset + 4 > end) return undefined;
    offset += 4 + ((buf[offset + 2]! << 8) | buf[offset + 3]!) * 4;
  }
  if (offset > end) return undefined;
  return {
    sequenceNumber: (buf[2]! << 8) | buf[3]!,
    ssrc: readU32(buf, 8),
    payloadOffset: offset,
  };
}

/**
 * RTP/RTCP demultiplexing on one port (RFC 5761 §4): RTCP packet types 192–223 occupy the
 * byte where RTP has marker ‖ payload type, and no RTP payload type may take those values.
 */
export function isRtcp(buf: Uint8Array): boolean {
  if (buf.length < 2) return false;
  const pt = buf[1]!;
  return pt >= 192 && pt <= 223;
}

/** Sender SSRC of an RTCP compound packet (the first packet's), or undefined if too short or not version 2. */
export function rtcpSenderSsrc(buf: Uint8Array): number | undefined {
  if (buf.length < RTCP_MIN_LENGTH || buf[0]! >> 6 !== 2) return undefined;
  return readU32(buf, 4);
}

export function readU32(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

/** A Buffer view of the same bytes (no copy): werift and node:dgram want Buffers. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
