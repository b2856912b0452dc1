/**
 * What an agent does with KGRP2 (paper §7) as it passes through: verify the originator's
 * signature into its own ring (to hand keys to joiners and to members catching up), and,
 * before a fresh epoch's key goes on to its subgroup, drop the members whose entitlement does
 * not reach that epoch (metering: they never receive it), then record who does receive it.
 */
import { GroupKeyRing, type RingVerdict } from '../../client/groupKeyRing.js';
import type { JoinGrant } from '../../wire/control.js';
import type { Agent, GroupKeyView, Step } from '../agent.js';

export type Admitted =
  | { ok: true; fresh: boolean; epoch: number; step: Step }
  | { ok: false; cause: Extract<RingVerdict, { ok: false }>['cause'] };

export class GroupKeyRelay implements GroupKeyView {
  readonly ring: GroupKeyRing;
  private schedule: JoinGrant['groupKeyPolicy'];

  constructor(private readonly agent: Agent) {
    this.ring = new GroupKeyRing(agent.group);
    agent.groupKeys = this;
  }

  held() {
    const now = this.agent.now();
    return this.ring.usable(now).map((k) => ({ epoch: k.epoch, notBefore: k.notBefore, notAfter: k.notAfter, announcement: k.announcement }));
  }

  epoch(): number {
    return this.ring.epoch;
  }

  originators(): Uint8Array[] {
    return this.ring.originatorKeys;
  }

  policy(): JoinGrant['groupKeyPolicy'] {
    return this.schedule;
  }

  setPolicy(p: JoinGrant['groupKeyPolicy']): void {
    this.schedule = p;
  }

  /** Whether the pending next key (if any) has gone to members who may no longer have it. */
  hasPendingNext(): boolean {
    return this.ring.next(this.agent.now()) !== undefined;
  }

  /**
   * An announcement reached this agent. On a fresh epoch the entitlement sweep runs first; its
   * step (the rekey that leaves the unentitled out) must be sent before the announcement.
   */
  admit(payload: Uint8Array): Admitted {
    const v = this.ring.accept(payload);
    if (!v.ok) return v;
    this.ring.expire(this.agent.now());
    const step: Step = { out: [], events: [] };
    // A voided key is not billed: whoever got it never used it.
    if (v.voided !== undefined) step.events.push({ type: 'key-voided', epoch: v.voided });
    if (v.fresh) {
      const k = this.ring.byEpoch(v.epoch)!;
      const sweep = this.agent.dropUnentitled(k.epoch, k.notBefore);
      step.out.push(...sweep.out);
      step.events.push(...sweep.events);
      step.events.push({ type: 'key-delivered', epoch: k.epoch, notBefore: k.notBefore, notAfter: k.notAfter, recipients: this.agent.keyRecipients() });
    }
    return { ok: true, fresh: v.fresh, epoch: v.epoch, step };
  }
}
