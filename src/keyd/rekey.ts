/**
 * Building subgroup key updates: the join scheme ({K'}K, one wrap, Figure 3) and the leave
 * scheme ({K'}Kmember for each remaining member, Figure 4), which also serves periodic rekeys
 * (§6.6: never a chain of {K'}K) and batches.
 */
import { wrapKey } from '../crypto/aead.js';
import type { Header } from '../wire/header.js';
import { MessageType } from '../wire/header.js';
import {
  encodeJoinKeyUpdate,
  encodeLeaveKeyUpdate,
  MAX_LEAVE_ENTRIES_PER_PART,
  RekeyReason,
} from '../wire/keyUpdate.js';

export interface SubgroupKey {
  readonly epoch: number;
  readonly key: Uint8Array;
}

export interface RekeyContext {
  /** A header for the next message (sequence and timestamp filled), at `epoch`. */
  header(type: MessageType, epoch: number): Header;
  sign(covered: Uint8Array): Uint8Array;
  countWrap(): void;
}

export function buildJoinKeyUpdate(ctx: RekeyContext, prev: SubgroupKey, next: SubgroupKey): Uint8Array {
  return encodeJoinKeyUpdate(ctx.header(MessageType.JoinKeyUpdate, next.epoch), prev.epoch, (aad) => {
    ctx.countWrap();
    return wrapKey(prev.key, next.key, aad);
  }, (c) => ctx.sign(c));
}

/**
 * One logical message, split into parts of at most 1,000 entries so each fits a datagram.
 * `recipients` must be sorted by id.
 */
export function buildLeaveKeyUpdate(
  ctx: RekeyContext,
  next: SubgroupKey,
  recipients: readonly { id: number; memberKey: Uint8Array }[],
  reason: RekeyReason,
  partial = false,
): Uint8Array[] {
  if (recipients.length === 0) return [];
  const parts = Math.ceil(recipients.length / MAX_LEAVE_ENTRIES_PER_PART);
  const out: Uint8Array[] = [];
  for (let p = 0; p < parts; p++) {
    const slice = recipients.slice(p * MAX_LEAVE_ENTRIES_PER_PART, (p + 1) * MAX_LEAVE_ENTRIES_PER_PART);
    const keys = new Map(slice.map((r) => [r.id, r.memberKey]));
    out.push(encodeLeaveKeyUpdate(
      ctx.header(MessageType.LeaveKeyUpdate, next.epoch),
      { reason, partial, part: p, parts, memberIds: slice.map((r) => r.id) },
      (id, aad) => {
        ctx.countWrap();
        return wrapKey(keys.get(id)!, next.key, aad);
      },
      (c) => ctx.sign(c),
    ));
  }
  return out;
}
