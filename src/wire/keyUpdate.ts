/**
 * Subgroup key updates (paper §6.2, §6.4, §6.6).
 *
 * JoinKeyUpdate:  prevEpoch u64 ‖ {K'}K (60 B)                    — one wrap, to the current members
 * LeaveKeyUpdate: reason u8 ‖ flags u8 ‖ part u16 ‖ parts u16 ‖ count u16 ‖ count × (memberId u32 ‖ {K'}Kmember)
 *                 — one wrapped copy per remaining member, split into parts that each fit a datagram,
 *                 entries sorted by member id so a member finds its own by binary search.
 * Both are signed by the agent. Wraps are bound to the header bytes (and the member id).
 */
import { CodecError } from '../errors.js';
import { WRAPPED_KEY_LENGTH } from '../crypto/aead.js';
import { Reader, type Writer } from './codec.js';
import { encodeFrame, MessageType, type Frame, type Header } from './header.js';

export enum RekeyReason {
  Join = 1,
  Leave = 2,
  Expel = 3,
  Expire = 4,
  Periodic = 5,
  Batch = 6,
}

/** Set when a LeaveKeyUpdate carries only some members (joiners of a batch): no entry is not exclusion. */
export const LEAVE_FLAG_PARTIAL = 1;

export const LEAVE_ENTRY_LENGTH = 4 + WRAPPED_KEY_LENGTH;
/** Entries per part: 1,000 × 64 B keeps a part well inside one datagram. */
export const MAX_LEAVE_ENTRIES_PER_PART = 1000;
export const MAX_LEAVE_PARTS = 65_535;

export interface JoinKeyUpdate {
  prevEpoch: number;
  wrapped: Uint8Array;
}

export function encodeJoinKeyUpdate(
  h: Header,
  prevEpoch: number,
  wrap: (aad: Uint8Array) => Uint8Array,
  sign: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  return encodeFrame({ ...h, type: MessageType.JoinKeyUpdate }, 8 + WRAPPED_KEY_LENGTH, (w, hb) => {
    w.u64(prevEpoch);
    const wrapped = wrap(hb);
    if (wrapped.length !== WRAPPED_KEY_LENGTH) throw new Error('wrapped key must be 60 bytes');
    w.bytes(wrapped);
  }, sign);
}

export function decodeJoinKeyUpdate(f: Frame): JoinKeyUpdate {
  const r = new Reader(f.body);
  const prevEpoch = r.u64('prevEpoch');
  const wrapped = r.bytes(WRAPPED_KEY_LENGTH, 'wrapped key');
  r.end('JoinKeyUpdate');
  if (prevEpoch >= f.header.epoch) throw new CodecError('codec.epoch', 'JoinKeyUpdate: prevEpoch not below the new epoch');
  return { prevEpoch, wrapped };
}

export interface LeaveEntry {
  memberId: number;
  wrapped: Uint8Array;
}

/**
 * A decoded LeaveKeyUpdate. Entries stay in the datagram (no object per entry): a member of a
 * subgroup of thousands looks up its own by binary search and allocates nothing else.
 */
export class LeaveKeyUpdate {
  constructor(
    readonly reason: RekeyReason,
    readonly partial: boolean,
    readonly part: number,
    readonly parts: number,
    readonly count: number,
    private readonly raw: Uint8Array,
  ) {}

  memberIdAt(i: number): number {
    const o = i * LEAVE_ENTRY_LENGTH;
    return ((this.raw[o]! << 24) | (this.raw[o + 1]! << 16) | (this.raw[o + 2]! << 8) | this.raw[o + 3]!) >>> 0;
  }

  wrappedAt(i: number): Uint8Array {
    const o = i * LEAVE_ENTRY_LENGTH + 4;
    return this.raw.subarray(o, o + WRAPPED_KEY_LENGTH);
  }

  /** Every entry as an object (tests, tools); receivers use findLeaveEntry. */
  get entries(): LeaveEntry[] {
    return Array.from({ length: this.count }, (_, i) => ({ memberId: this.memberIdAt(i), wrapped: this.wrappedAt(i) }));
  }
}

/** Associated data of one member's wrapped copy: header ‖ member id. */
export function leaveEntryAad(headerBytes: Uint8Array, memberId: number): Uint8Array {
  const aad = new Uint8Array(headerBytes.length + 4);
  aad.set(headerBytes, 0);
  new DataView(aad.buffer).setUint32(headerBytes.length, memberId, false);
  return aad;
}

export function encodeLeaveKeyUpdate(
  h: Header,
  m: { reason: RekeyReason; partial: boolean; part: number; parts: number; memberIds: readonly number[] },
  wrapFor: (memberId: number, aad: Uint8Array) => Uint8Array,
  sign: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  const n = m.memberIds.length;
  if (n > MAX_LEAVE_ENTRIES_PER_PART) throw new RangeError(`a part holds at most ${MAX_LEAVE_ENTRIES_PER_PART} entries`);
  if (m.parts < 1 || m.parts > MAX_LEAVE_PARTS || m.part >= m.parts) throw new RangeError('part out of range');
  return encodeFrame({ ...h, type: MessageType.LeaveKeyUpdate }, 8 + n * LEAVE_ENTRY_LENGTH, (w: Writer, hb) => {
    w.u8(m.reason).u8(m.partial ? LEAVE_FLAG_PARTIAL : 0).u16(m.part).u16(m.parts).u16(n);
    let last = -1;
    for (const id of m.memberIds) {
      if (id <= last) throw new RangeError('memberIds must be ascending and distinct');
      last = id;
      const wrapped = wrapFor(id, leaveEntryAad(hb, id));
      if (wrapped.length !== WRAPPED_KEY_LENGTH) throw new Error('wrapped key must be 60 bytes');
      w.u32(id).bytes(wrapped);
    }
  }, sign);
}

export function decodeLeaveKeyUpdate(f: Frame): LeaveKeyUpdate {
  const r = new Reader(f.body);
  const reason = r.u8('reason');
  if (!(reason in RekeyReason)) throw new CodecError('codec.reason', `unknown rekey reason ${reason}`);
  const flags = r.u8('flags');
  if (flags & ~LEAVE_FLAG_PARTIAL) throw new CodecError('codec.flags', `unknown LeaveKeyUpdate flags ${flags}`);
  const part = r.u16('part');
  const parts = r.u16('parts');
  if (parts < 1 || part >= parts) throw new CodecError('codec.part', `part ${part} of ${parts}`);
  const count = r.u16('count');
  if (count > MAX_LEAVE_ENTRIES_PER_PART) throw new CodecError('codec.oversized', `${count} entries exceed ${MAX_LEAVE_ENTRIES_PER_PART}`);
  if (count * LEAVE_ENTRY_LENGTH !== r.remaining) throw new CodecError('codec.length', `LeaveKeyUpdate: ${count} entries do not fill ${r.remaining} bytes`);
  const raw = r.bytes(count * LEAVE_ENTRY_LENGTH, 'entries');
  r.end('LeaveKeyUpdate');
  const u = new LeaveKeyUpdate(reason, (flags & LEAVE_FLAG_PARTIAL) !== 0, part, parts, count, raw);
  let last = -1;
  for (let i = 0; i < count; i++) {
    const id = u.memberIdAt(i);
    if (id <= last) throw new CodecError('codec.order', 'LeaveKeyUpdate: entries not in ascending member order');
    last = id;
  }
  return u;
}

/** Binary search for one member's entry. */
export function findLeaveEntry(u: LeaveKeyUpdate, memberId: number): LeaveEntry | undefined {
  let lo = 0;
  let hi = u.count - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const id = u.memberIdAt(mid);
    if (id === memberId) return { memberId, wrapped: u.wrappedAt(mid) };
    if (id < memberId) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
