/**
 * The KGRP2 a member (or agent) holds (paper §7): previous, current and next, each with its
 * epoch and validity. Announcements must carry a signature of an allowed originator; an
 * announcement that voids a pending epoch (an expulsion or an entitlement that ended before
 * activation) drops that epoch. Activation is by time; the previous key stays usable for
 * decryption for `grace` after its end.
 */
import { verifyBytes } from '../crypto/sign.js';
import { wipe } from '../crypto/bytes.js';
import { decodeKgrp2Announcement, kgrp2SignedBytes, originatorKeyId, type Kgrp2Announcement } from '../wire/kgrp2Announcement.js';
import { groupIdFor } from '../wire/header.js';
import { deriveKey, type DerivedKey, type GroupKeyEpoch } from './keyMaterial.js';

export type RingVerdict =
  | { ok: true; epoch: number; fresh: boolean; voided?: number }
  | { ok: false; cause: 'malformed' | 'unknown-originator' | 'bad-signature' | 'stale' | 'voided' | 'conflict' };

export interface HeldGroupKey extends GroupKeyEpoch {
  /** The signed announcement, to hand to joiners and to catch-up. */
  readonly announcement: Uint8Array;
}

/** How many epochs a ring keeps (past ones are kept for late decryption inside their grace). */
const KEEP = 4;

export class GroupKeyRing {
  readonly groupId: Uint8Array;
  private readonly held = new Map<number, HeldGroupKey>();
  private readonly voidedEpochs = new Set<number>();
  private originators = new Map<string, Uint8Array>();
  private newest = 0;

  constructor(readonly group: string) {
    this.groupId = groupIdFor(group);
  }

  /** Sets the Ed25519 keys allowed to announce KGRP2 (from the join grant). */
  setOriginators(keys: readonly Uint8Array[]): void {
    this.originators = new Map(keys.map((k) => [Buffer.from(originatorKeyId(k)).toString('hex'), k]));
  }

  get originatorKeys(): Uint8Array[] {
    return [...this.originators.values()];
  }

  /** Newest epoch held (0 if none). */
  get epoch(): number {
    return this.newest;
  }

  /** Verifies and stores an announcement. Never throws on what the network sends. */
  accept(bytes: Uint8Array): RingVerdict {
    let a: Kgrp2Announcement;
    try {
      a = decodeKgrp2Announcement(bytes);
    } catch {
      return { ok: false, cause: 'malformed' };
    }
    const pub = this.originators.get(Buffer.from(a.originatorKeyId).toString('hex'));
    if (!pub) return { ok: false, cause: 'unknown-originator' };
    const { signature, ...fields } = a;
    if (!verifyBytes(pub, kgrp2SignedBytes(this.groupId, fields), signature)) return { ok: false, cause: 'bad-signature' };
    if (this.voidedEpochs.has(a.epoch)) return { ok: false, cause: 'voided' };
    const have = this.held.get(a.epoch);
    if (have) {
      if (Buffer.compare(have.kgrp2, a.key) === 0) return { ok: true, epoch: a.epoch, fresh: false };
      return { ok: false, cause: 'conflict' };
    }
    const oldestKept = Math.min(...this.held.keys(), Infinity);
    if (this.held.size >= KEEP && a.epoch < oldestKept) return { ok: false, cause: 'stale' };
    let voided: number | undefined;
    if (a.voids !== 0 && a.voids < a.epoch) {
      voided = a.voids;
      this.voidedEpochs.add(a.voids);
      const v = this.held.get(a.voids);
      if (v) {
        wipe(v.kgrp2);
        this.held.delete(a.voids);
      }
      if (this.voidedEpochs.size > 64) this.voidedEpochs.delete(Math.min(...this.voidedEpochs));
    }
    this.held.set(a.epoch, {
      epoch: a.epoch, notBefore: a.notBefore, notAfter: a.notAfter, graceMs: a.graceMs,
      kgrp2: new Uint8Array(a.key), announcement: new Uint8Array(bytes),
    });
    this.newest = Math.max(...this.held.keys());
    this.prune();
    return voided === undefined ? { ok: true, epoch: a.epoch, fresh: true } : { ok: true, epoch: a.epoch, fresh: true, voided };
  }

  private prune(): void {
    while (this.held.size > KEEP) {
      const oldest = Math.min(...this.held.keys());
      wipe(this.held.get(oldest)!.kgrp2);
      this.held.delete(oldest);
    }
  }

  /** Drops every key whose use ended (notAfter + grace) before `now`. */
  expire(now: number): void {
    for (const [e, k] of this.held) {
      if (k.notAfter + k.graceMs <= now) {
        wipe(k.kgrp2);
        this.held.delete(e);
      }
    }
  }

  /** The key in force at `now`: the newest whose notBefore has passed and notAfter has not. */
  current(now: number): HeldGroupKey | undefined {
    let best: HeldGroupKey | undefined;
    for (const k of this.held.values()) {
      if (k.notBefore <= now && now < k.notAfter && (!best || k.epoch > best.epoch)) best = k;
    }
    return best;
  }

  /** The next key: the oldest not yet active. */
  next(now: number): HeldGroupKey | undefined {
    let best: HeldGroupKey | undefined;
    for (const k of this.held.values()) if (k.notBefore > now && (!best || k.epoch < best.epoch)) best = k;
    return best;
  }

  /** The previous key, while inside its grace window. */
  previous(now: number): HeldGroupKey | undefined {
    const cur = this.current(now);
    let best: HeldGroupKey | undefined;
    for (const k of this.held.values()) {
      if (cur && k.epoch >= cur.epoch) continue;
      if (k.notAfter <= now && now < k.notAfter + k.graceMs && (!best || k.epoch > best.epoch)) best = k;
    }
    return best;
  }

  /** Every epoch held, whatever its validity, ascending. */
  epochs(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  byEpoch(epoch: number): HeldGroupKey | undefined {
    return this.held.get(epoch);
  }

  /** Every key still usable at `now` (previous in grace, current, next), by epoch. */
  usable(now: number): HeldGroupKey[] {
    return [...this.held.values()].filter((k) => now < k.notAfter + k.graceMs).sort((a, b) => a.epoch - b.epoch);
  }

  /** Announcements to hand over (join grant, catch-up): the usable ones. */
  announcements(now: number): Uint8Array[] {
    return this.usable(now).map((k) => k.announcement);
  }

  /** Derived keys for `label`: what applications get, never KGRP2 itself. */
  derived(label: string, now: number): DerivedKey[] {
    return this.usable(now).map((k) => deriveKey(k, label));
  }

  clear(): void {
    for (const k of this.held.values()) wipe(k.kgrp2);
    this.held.clear();
    this.newest = 0;
  }
}
