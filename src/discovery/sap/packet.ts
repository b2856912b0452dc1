/**
 * SAP packets (RFC 2974 §6, Figure 1): the header, the optional payload type and the payload.
 *
 *    | V=1 |A|R|T|E|C|   auth len    |         msg id hash           |
 *    |         originating source (32 or 128 bits)                   |
 *    |         optional authentication data (auth len × 32 bits)     |
 *    |         optional payload type, NUL-terminated                 |
 *    |         payload                                               |
 *
 * We send unencrypted, uncompressed announcements of `application/sdp`, without authentication.
 * The decoder reads what others send too and refuses what it cannot use with a CodecError.
 */
import { CodecError } from '../../errors.js';
import { formatIp, parseIp } from '../directory/prefix.js';

export const SAP_VERSION = 1;
export const SDP_MIME = 'application/sdp';
/** RFC 2974 §6: packets SHOULD stay under 1 kB to avoid fragmentation. */
export const SAP_RECOMMENDED_MAX = 1024;
const MAX_PACKET = 65_507;

export interface SapPacket {
  /** `announce` (T=0) or `delete` (T=1). */
  type: 'announce' | 'delete';
  /** Together with the origin, identifies this version of the announcement (§6). Never 0 from us. */
  msgIdHash: number;
  /** IPv4 or IPv6 address of the announcer. */
  origin: string;
  /** MIME type of the payload (`application/sdp` when the packet leaves it out). */
  payloadType: string;
  /** The session description (announce) or its o= line (delete). */
  payload: string;
  /** Fields we do not act on but report. */
  encrypted?: boolean;
  compressed?: boolean;
  authWords?: number;
}

export function encodeSapPacket(p: SapPacket): Uint8Array {
  const ip = parseIp(p.origin);
  if (!ip || p.origin.includes(':') !== (ip.family === 6)) throw new CodecError('sap.origin', `origin ${JSON.stringify(p.origin)} is not an IP address`);
  if (!Number.isInteger(p.msgIdHash) || p.msgIdHash < 1 || p.msgIdHash > 0xffff) throw new CodecError('sap.hash', 'msgIdHash: an integer from 1 to 65535');
  if (p.payloadType.includes('\0') || !/^[\x21-\x7e]+$/.test(p.payloadType)) throw new CodecError('sap.type', 'payload type: printable ASCII without NUL');
  const type = Buffer.from(`${p.payloadType}\0`, 'ascii');
  const body = Buffer.from(p.payload, 'utf8');
  const headerLen = 4 + ip.bytes.length;
  const out = new Uint8Array(headerLen + type.length + body.length);
  if (out.length > MAX_PACKET) throw new CodecError('sap.size', `SAP packet of ${out.length} bytes does not fit a datagram`);
  out[0] = (SAP_VERSION << 5) | (ip.family === 6 ? 0x10 : 0) | (p.type === 'delete' ? 0x04 : 0);
  out[1] = 0; // no authentication
  out[2] = p.msgIdHash >> 8;
  out[3] = p.msgIdHash & 0xff;
  out.set(ip.bytes, 4);
  out.set(type, headerLen);
  out.set(body, headerLen + type.length);
  return out;
}

/** Reads a SAP packet; CodecError for what is not one we can use (other version, encrypted, compressed, truncated). */
export function decodeSapPacket(bytes: Uint8Array): SapPacket {
  if (bytes.length < 8) throw new CodecError('sap.truncated', `${bytes.length} bytes: shorter than a SAP header`);
  if (bytes.length > MAX_PACKET) throw new CodecError('sap.size', 'larger than a datagram');
  const b0 = bytes[0]!;
  const version = b0 >> 5;
  if (version !== SAP_VERSION) throw new CodecError('sap.version', `SAP version ${version}, not ${SAP_VERSION}`);
  const v6 = (b0 & 0x10) !== 0;
  const type = (b0 & 0x04) !== 0 ? 'delete' : 'announce';
  const encrypted = (b0 & 0x02) !== 0;
  const compressed = (b0 & 0x01) !== 0;
  const authWords = bytes[1]!;
  const msgIdHash = (bytes[2]! << 8) | bytes[3]!;
  const originLen = v6 ? 16 : 4;
  let off = 4 + originLen + authWords * 4;
  if (bytes.length < off) throw new CodecError('sap.truncated', 'the header runs past the end of the packet');
  const origin = formatIp({ family: v6 ? 6 : 4, bytes: bytes.slice(4, 4 + originLen) });
  if (encrypted) throw new CodecError('sap.encrypted', 'encrypted SAP payloads are not supported');
  if (compressed) throw new CodecError('sap.compressed', 'compressed SAP payloads are not supported');
  // §6: the payload type may be left out, then the payload starts with SDP's "v=0".
  let payloadType = SDP_MIME;
  const rest = bytes.subarray(off);
  if (!(rest[0] === 0x76 && rest[1] === 0x3d)) {
    const nul = rest.indexOf(0);
    if (nul < 0 || nul > 255) throw new CodecError('sap.type', 'payload type without its terminating NUL');
    payloadType = Buffer.from(rest.subarray(0, nul)).toString('latin1');
    if (!/^[\x21-\x7e]+$/.test(payloadType)) throw new CodecError('sap.type', 'payload type is not printable ASCII');
    off += nul + 1;
  }
  const payload = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(off));
  return { type, msgIdHash, origin, payloadType, payload, ...(authWords ? { authWords } : {}) };
}
