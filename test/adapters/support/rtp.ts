/** Plain RTP/RTCP packets for adapter tests. */

export interface RtpFields {
  ssrc: number;
  seq: number;
  timestamp?: number;
  payloadType?: number;
  marker?: boolean;
  payload?: Uint8Array;
  /** CSRC identifiers (RFC 3550 §5.1). */
  csrcs?: number[];
  /** A header extension: profile id and body (a multiple of 4 bytes). */
  extension?: { profile: number; body: Uint8Array };
}

export function rtp(f: RtpFields): Buffer {
  const payload = f.payload ?? Buffer.alloc(160, 0xd5);
  const csrcs = f.csrcs ?? [];
  const extLen = f.extension ? 4 + f.extension.body.length : 0;
  const hdrLen = 12 + csrcs.length * 4 + extLen;
  const b = Buffer.alloc(hdrLen + payload.length);
  b[0] = 0x80 | (f.extension ? 0x10 : 0) | csrcs.length;
  b[1] = (f.marker ? 0x80 : 0) | (f.payloadType ?? 0);
  b.writeUInt16BE(f.seq & 0xffff, 2);
  b.writeUInt32BE((f.timestamp ?? f.seq * 160) >>> 0, 4);
  b.writeUInt32BE(f.ssrc >>> 0, 8);
  csrcs.forEach((c, i) => b.writeUInt32BE(c >>> 0, 12 + 4 * i));
  if (f.extension) {
    const at = 12 + csrcs.length * 4;
    b.writeUInt16BE(f.extension.profile, at);
    b.writeUInt16BE(f.extension.body.length / 4, at + 2);
    b.set(f.extension.body, at + 4);
  }
  b.set(payload, hdrLen);
  return b;
}

/** An RTCP receiver report with no report blocks (RFC 3550 §6.4.2), padded with an SDES-like body. */
export function rtcpRr(ssrc: number, extra = 0): Buffer {
  const b = Buffer.alloc(8 + extra);
  b[0] = 0x80;
  b[1] = 201;
  b.writeUInt16BE((b.length / 4) - 1, 2);
  b.writeUInt32BE(ssrc >>> 0, 4);
  return b;
}
