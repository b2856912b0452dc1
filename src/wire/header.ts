/**
 * The header every subgroup-plane message starts with (DESIGN.md, protocol rules): version,
 * suite, type, group, subgroup, sender, epoch, sequence and timestamp, then the body length.
 *
 *   0  u8   version (1)          12 u32 subgroup id       28 u64 sequence
 *   1  u8   suite   (1)          16 u32 sender id         36 u64 timestamp (ms)
 *   2  u8   type                 20 u64 epoch             44 u32 body length
 *   3  u8   flags (0)
 *   4  8B   group id
 *
 * Followed by the body and, for the types an agent signs, a 64-byte Ed25519 signature over
 * header ‖ body. Sender 0 is the subgroup's agent; members get ids ≥ 1 at join.
 */
import { createHash } from 'node:crypto';
import { CodecError } from '../errors.js';
import { SIGNATURE_LENGTH } from '../crypto/sign.js';
import { MAX_MESSAGE_LENGTH, Reader, Writer } from './codec.js';

export const WIRE_VERSION = 1;
/** Suite 1: AES-256-GCM wrap and data, Ed25519 signatures, HKDF-SHA256 (security technology independence, §4). */
export const SUITE_AES256GCM_ED25519 = 1;
export const SUPPORTED_SUITES: ReadonlySet<number> = new Set([SUITE_AES256GCM_ED25519]);
export const HEADER_LENGTH = 48;
export const GROUP_ID_LENGTH = 8;
export const AGENT_SENDER = 0;

export enum MessageType {
  /** {K'}K to the current members on a join (paper §6.2, Figure 3). Signed. */
  JoinKeyUpdate = 1,
  /** {K'}K_member for each remaining member on leave, expel, expiry, periodic rekey (§6.4, Figure 4, §6.6). Signed. */
  LeaveKeyUpdate = 2,
  /** Liveness and the epochs the agent holds, so members detect gaps. Signed. */
  Heartbeat = 3,
  /** Method 1 data: payload under a fresh data key, the data key wrapped under the subgroup key (§6.5). */
  DataMethod1 = 4,
  /** Method 2 data as the agent multicasts it: rewrapped and signed by the agent (§6.5). Signed. */
  DataMethod2 = 5,
  /** Method 2 data on its way up: member → agent, data key wrapped under the member key. */
  DataUp = 6,
  /** End of the group, flowing down the tree (§6.7). Signed. */
  GroupEnd = 7,
}

const SIGNED_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.JoinKeyUpdate,
  MessageType.LeaveKeyUpdate,
  MessageType.Heartbeat,
  MessageType.DataMethod2,
  MessageType.GroupEnd,
]);

export function isSignedType(t: MessageType): boolean {
  return SIGNED_TYPES.has(t);
}

export interface Header {
  version: number;
  suite: number;
  type: MessageType;
  group: Uint8Array;
  subgroup: number;
  sender: number;
  epoch: number;
  sequence: number;
  timestamp: number;
}

/** The 8-byte wire id of a global group name. */
export function groupIdFor(name: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`iolus/group/${name}`).digest().subarray(0, GROUP_ID_LENGTH));
}

/** A subgroup's 32-bit id, from the group and the agent that keys it. Never 0. */
export function subgroupIdFor(group: string, agentName: string): number {
  const v = createHash('sha256').update(`iolus/subgroup/${group}/${agentName}`).digest().readUInt32BE(0);
  return v === 0 ? 1 : v;
}

export function writeHeader(w: Writer, h: Header, bodyLength: number): void {
  w.u8(h.version).u8(h.suite).u8(h.type).u8(0).bytes(h.group).u32(h.subgroup).u32(h.sender)
    .u64(h.epoch).u64(h.sequence).u64(h.timestamp).u32(bodyLength);
}

/** A decoded frame: header, body, and the signature with the bytes it covers. */
export interface Frame {
  header: Header;
  /** The 48 header bytes: associated data for what the body wraps. */
  headerBytes: Uint8Array;
  body: Uint8Array;
  signed?: { covered: Uint8Array; signature: Uint8Array };
}

/**
 * Splits a datagram into header, body and signature, checking version, suite, type, flags
 * and every length. The body itself is decoded by its message module.
 */
export function decodeFrame(bytes: Uint8Array): Frame {
  if (!(bytes instanceof Uint8Array)) throw new CodecError('codec.type', 'message is not bytes');
  if (bytes.length > MAX_MESSAGE_LENGTH) throw new CodecError('codec.oversized', `message of ${bytes.length} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
  const r = new Reader(bytes);
  const version = r.u8('version');
  if (version !== WIRE_VERSION) throw new CodecError('codec.version', `unknown wire version ${version}`);
  const suite = r.u8('suite');
  if (!SUPPORTED_SUITES.has(suite)) throw new CodecError('codec.suite', `unknown suite ${suite}`);
  const type = r.u8('type');
  if (!(type in MessageType) || typeof MessageType[type] !== 'string') throw new CodecError('codec.type', `unknown message type ${type}`);
  const flags = r.u8('flags');
  if (flags !== 0) throw new CodecError('codec.flags', `reserved flags set (${flags})`);
  const group = r.bytes(GROUP_ID_LENGTH, 'group');
  const subgroup = r.u32('subgroup');
  const sender = r.u32('sender');
  const epoch = r.u64('epoch');
  const sequence = r.u64('sequence');
  const timestamp = r.u64('timestamp');
  const bodyLength = r.u32('body length');
  const sigLength = isSignedType(type) ? SIGNATURE_LENGTH : 0;
  if (bodyLength + sigLength !== r.remaining) {
    if (bodyLength + sigLength > r.remaining) throw new CodecError('codec.truncated', `truncated: body of ${bodyLength} bytes declared, ${r.remaining - sigLength} present`);
    throw new CodecError('codec.trailing', `${r.remaining - bodyLength - sigLength} trailing bytes after the message`);
  }
  const body = r.bytes(bodyLength, 'body');
  const header: Header = { version, suite, type, group, subgroup, sender, epoch, sequence, timestamp };
  const frame: Frame = { header, headerBytes: bytes.subarray(0, HEADER_LENGTH), body };
  if (sigLength) frame.signed = { covered: bytes.subarray(0, HEADER_LENGTH + bodyLength), signature: r.bytes(SIGNATURE_LENGTH, 'signature') };
  return frame;
}

/**
 * Encodes header ‖ body (‖ signature). `writeBody` receives the header bytes already written,
 * so it can use them as associated data; `sign` gets header ‖ body and returns 64 bytes.
 */
export function encodeFrame(
  h: Header,
  bodyLength: number,
  writeBody: (w: Writer, headerBytes: Uint8Array) => void,
  sign?: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  const signed = isSignedType(h.type);
  if (signed !== Boolean(sign)) throw new Error(`message type ${MessageType[h.type]} ${signed ? 'needs' : 'takes no'} signature`);
  const w = new Writer(HEADER_LENGTH + bodyLength + (signed ? SIGNATURE_LENGTH : 0));
  writeHeader(w, h, bodyLength);
  const headerBytes = w.buf.subarray(0, HEADER_LENGTH);
  writeBody(w, headerBytes);
  if (w.offset !== HEADER_LENGTH + bodyLength) throw new Error(`body encoder wrote ${w.offset - HEADER_LENGTH} of ${bodyLength} bytes`);
  if (sign) {
    const sig = sign(w.buf.subarray(0, HEADER_LENGTH + bodyLength));
    if (sig.length !== SIGNATURE_LENGTH) throw new Error('signature must be 64 bytes');
    w.bytes(sig);
  }
  return w.done();
}
