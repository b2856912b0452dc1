/**
 * Originator (paper §7, the "specially designated member"): makes KGRP2(n+1) at
 * notBefore(n+1) − lead, announces it, and repeats the announcement (at least 3 times, spread
 * over the first half of the lead) so every member holds previous, current and next. A pure
 * state machine: fed the clock, it returns the announcements to send now.
 *
 * Epoch numbers never go back: the next is max(previous + 1, ⌊notBefore / period⌋, floor),
 * where `floor` is the last epoch persisted plus one. The time term keeps them increasing even
 * if the persisted state is lost; in steady state they simply count up by one.
 */
import { randomKey, wipe } from '../../crypto/bytes.js';
import { signBytes, type SigningKey } from '../../crypto/sign.js';
import { groupIdFor } from '../../wire/header.js';
import { encodeKgrp2Announcement, kgrp2SignedBytes, originatorKeyId, type Kgrp2Announcement } from '../../wire/kgrp2Announcement.js';

export interface GroupKeyPolicy {
  periodMs: number;
  leadMs: number;
  graceMs: number;
  /** Announcements per epoch (≥ 3). */
  repeats: number;
}

export const DEFAULT_POLICY: GroupKeyPolicy = { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 };

interface Planned {
  epoch: number;
  notBefore: number;
  notAfter: number;
  voids: number;
  key: Uint8Array;
  bytes: Uint8Array;
  /** When each announcement (first and repeats) is due. */
  due: number[];
}

export interface OriginatorEvent {
  epoch: number;
  notBefore: number;
  notAfter: number;
  voids: number;
  reason: 'start' | 'period' | 'void' | 'roll';
}

export class Originator {
  readonly groupId: Uint8Array;
  private current: Planned | undefined;
  private pending: Planned | undefined;
  private lastEpoch: number;
  /** Epochs created, for the owner to persist and log. */
  readonly created: OriginatorEvent[] = [];

  constructor(
    readonly group: string,
    private readonly signing: SigningKey,
    readonly policy: GroupKeyPolicy,
    /** Last epoch known to have been used (persisted, or the newest a ring holds). */
    floor = 0,
  ) {
    if (policy.leadMs >= policy.periodMs) throw new RangeError('lead: must be shorter than the period');
    if (policy.repeats < 1) throw new RangeError('repeats: at least 1');
    this.groupId = groupIdFor(group);
    this.lastEpoch = floor;
  }

  get epoch(): number {
    return this.lastEpoch;
  }

  get publicKey(): Uint8Array {
    return this.signing.publicKey;
  }

  /**
   * Takes over after epochs made elsewhere (a failed originator member): the first epoch we
   * make starts when the newest one held ends, instead of now.
   */
  resumeAfter(epoch: number, notAfter: number): void {
    this.lastEpoch = Math.max(this.lastEpoch, epoch);
    if (!this.current && !this.pending) this.resumeAt = notAfter;
  }

  private resumeAt = 0;

  private plan(notBefore: number, voids: number, now: number): Planned {
    const { periodMs, leadMs, repeats } = this.policy;
    const epoch = Math.max(this.lastEpoch + 1, Math.floor(notBefore / periodMs));
    this.lastEpoch = epoch;
    const key = randomKey();
    const notAfter = notBefore + periodMs;
    const fields: Omit<Kgrp2Announcement, 'signature'> = {
      epoch, voids, notBefore, notAfter, graceMs: this.policy.graceMs, key, originatorKeyId: originatorKeyId(this.signing.publicKey),
    };
    const bytes = encodeKgrp2Announcement({ ...fields, signature: signBytes(this.signing, kgrp2SignedBytes(this.groupId, fields)) });
    const first = Math.max(now, notBefore - leadMs);
    const spacing = repeats > 1 ? leadMs / 2 / (repeats - 1) : 0;
    const due = Array.from({ length: repeats }, (_, i) => first + Math.round(i * spacing));
    return { epoch, notBefore, notAfter, voids, key, bytes, due };
  }

  /** Announcements due at `now` (new epochs are created when their time comes). */
  tick(now: number): Uint8Array[] {
    if (!this.current && !this.pending) {
      // Another originator's epoch is still in force: ours starts where it ends.
      this.current = this.resumeAt > now ? undefined : this.record(this.plan(now, 0, now), 'start');
      if (!this.current) this.pending = this.record(this.plan(this.resumeAt, 0, now), 'period');
    }
    if (this.pending && now >= this.pending.notBefore) {
      if (this.current) wipe(this.current.key);
      this.current = this.pending;
      this.pending = undefined;
    }
    if (this.current && !this.pending && now >= this.current.notAfter - this.policy.leadMs) {
      this.pending = this.record(this.plan(this.current.notAfter, 0, now), 'period');
    }
    const out: Uint8Array[] = [];
    for (const p of [this.current, this.pending]) {
      if (!p) continue;
      while (p.due.length > 0 && p.due[0]! <= now) {
        p.due.shift();
        out.push(p.bytes);
      }
    }
    return out;
  }

  /**
   * Voids the pending next key (an expulsion, or an entitlement that ended, after it went
   * out): a fresh key under a new epoch number, same activation time, to be sent only to the
   * remaining members. Returns its first announcement (repeats follow from tick).
   */
  voidPending(now: number): Uint8Array[] {
    const p = this.pending;
    if (!p) return [];
    wipe(p.key);
    this.pending = this.record(this.plan(p.notBefore, p.epoch, now), 'void');
    return this.tick(now);
  }

  /** A roll now: a new epoch active at once (the pending one, if any, is voided). */
  rollNow(now: number): Uint8Array[] {
    const voids = this.pending?.epoch ?? 0;
    if (this.pending) wipe(this.pending.key);
    this.pending = undefined;
    const next = this.record(this.plan(now, voids, now), 'roll');
    if (this.current) wipe(this.current.key);
    this.current = next;
    return this.tick(now);
  }

  /** Announcements a joiner or a catching-up member should hold now. */
  announcements(): Uint8Array[] {
    return [this.current, this.pending].filter((p): p is Planned => p !== undefined).map((p) => p.bytes);
  }

  get nextActivation(): number | undefined {
    return this.pending?.notBefore ?? this.current?.notAfter;
  }

  private record(p: Planned, reason: OriginatorEvent['reason']): Planned {
    this.created.push({ epoch: p.epoch, notBefore: p.notBefore, notAfter: p.notAfter, voids: p.voids, reason });
    return p;
  }
}
