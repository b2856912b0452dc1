/**
 * A member's group keys (KGRP2): the ring, fed from the join grant, from announcements that
 * arrive as data, and from catch-up; and the member state machine told which epoch it holds,
 * so a heartbeat showing a newer one triggers a catch-up over the secure channel (§7:
 * at-least-once delivery without reliable multicast).
 */
import { fromBase64 } from '../crypto/bytes.js';
import type { CatchUpResponse, JoinGrant } from '../wire/control.js';
import { GroupKeyRing, type RingVerdict } from './groupKeyRing.js';
import type { Member } from './member.js';

export class MemberKeys {
  readonly ring: GroupKeyRing;

  constructor(private readonly member: Member) {
    this.ring = new GroupKeyRing(member.group);
  }

  onGrant(grant: JoinGrant): RingVerdict[] {
    this.ring.setOriginators(grant.originators.map(fromBase64));
    return this.take(grant.groupKeys);
  }

  onCatchUp(state: CatchUpResponse): RingVerdict[] {
    if (state.originators) this.ring.setOriginators(state.originators.map(fromBase64));
    return this.take(state.groupKeys);
  }

  /** An announcement that arrived as data. */
  onAnnouncement(payload: Uint8Array): RingVerdict {
    const v = this.ring.accept(payload);
    this.member.heldGroupEpoch = this.ring.epoch;
    return v;
  }

  private take(keys: string[]): RingVerdict[] {
    const out = keys.map((k) => this.ring.accept(fromBase64(k)));
    this.member.heldGroupEpoch = this.ring.epoch;
    return out;
  }
}
