/**
 * Controller (GSC, paper §5): the agent of the top-level subgroup. It owns the group's policy,
 * has no parent, and is the originator of KGRP2 by default (§7): it rolls the group key on its
 * timer, voids a pending key after an expulsion, and rolls at once on demand. When a member is
 * the designated originator, the controller stands by and takes over if that member's next
 * key has not arrived by half the lead before activation.
 */
import type { DataMethod } from '../client/member.js';
import { sealDataUnit, type DataUnit } from '../protocol/dataUnit.js';
import type { Clock } from '../util/clock.js';
import { SequenceCounter } from '../util/sequence.js';
import { ContentType } from '../wire/data.js';
import { Agent, type AgentInit, type Step } from './agent.js';
import { AgentDataPlane } from './agentDataPlane.js';
import { Originator, type GroupKeyPolicy } from './groupKey/originator.js';
import { GroupKeyRelay } from './groupKey/relay.js';

export interface NodeStep extends Step {
  /** Data this node accepted (from its subgroup, its members, or its parent). */
  received: { unit: DataUnit; method: DataMethod }[];
}

export function emptyStep(): NodeStep {
  return { out: [], events: [], received: [] };
}

export function withStep(step: Step): NodeStep {
  return { ...step, received: [] };
}

export function mergeInto(s: NodeStep, step: Step): void {
  s.out.push(...step.out);
  s.events.push(...step.events);
}

export interface GroupKeyService {
  policy: GroupKeyPolicy;
  /** How announcements travel down the tree (paper §6.5 methods). */
  method: DataMethod;
  /** 'controller', or the principal of the member designated as originator. */
  originator: string;
  /** Last epoch persisted: epochs continue above it after a restart. */
  floor: number;
}

export type GroupKeyLogEvent = { type: 'originator'; role: 'active' | 'standby' | 'takeover'; epoch: number };

export class Controller {
  readonly agent: Agent;
  readonly data: AgentDataPlane;
  readonly keys: GroupKeyRelay;
  private originator: Originator | undefined;
  private service: GroupKeyService | undefined;
  private readonly seq: SequenceCounter;
  private startedAt: number;
  readonly log: GroupKeyLogEvent[] = [];

  constructor(readonly init: AgentInit, private readonly clock: Clock) {
    this.agent = new Agent(init, clock);
    this.data = new AgentDataPlane(this.agent);
    this.keys = new GroupKeyRelay(this.agent);
    this.keys.ring.setOriginators([this.agent.publicKey]);
    this.seq = new SequenceCounter(clock);
    this.startedAt = clock.now();
  }

  /** Turns on the group key service (KGRP2 rolling on a timer). */
  enableGroupKeys(service: GroupKeyService): void {
    this.service = service;
    this.startedAt = this.clock.now();
    this.keys.setPolicy({ periodMs: service.policy.periodMs, leadMs: service.policy.leadMs, graceMs: service.policy.graceMs, method: service.method });
    if (service.originator === 'controller') this.becomeOriginator('active');
    else this.log.push({ type: 'originator', role: 'standby', epoch: service.floor });
  }

  /** Registers a designated originator member's key (from its join request). */
  addOriginatorKey(key: Uint8Array): void {
    const keys = this.keys.ring.originatorKeys;
    if (!keys.some((k) => Buffer.compare(k, key) === 0)) this.keys.ring.setOriginators([...keys, key].slice(-16));
  }

  get isOriginator(): boolean {
    return this.originator !== undefined;
  }

  private becomeOriginator(role: 'active' | 'takeover'): Originator {
    const floor = Math.max(this.service!.floor, this.keys.ring.epoch);
    const o = new Originator(this.agent.group, this.init.signing, this.service!.policy, floor);
    const cur = this.keys.ring.current(this.clock.now());
    if (cur) o.resumeAfter(this.keys.ring.epoch, cur.notAfter);
    this.originator = o;
    this.log.push({ type: 'originator', role, epoch: floor });
    return o;
  }

  onSubgroup(bytes: Uint8Array): NodeStep {
    const r = this.data.receive(bytes);
    if (!r.ok) return emptyStep();
    return { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] };
  }

  onUnicast(bytes: Uint8Array): NodeStep {
    const r = this.data.receiveUp(bytes);
    if (!r.ok) return emptyStep();
    const s: NodeStep = { out: [], events: [], received: [{ unit: r.unit, method: r.method }] };
    if (r.unit.contentType === ContentType.GroupKey) {
      const payload = this.payloadOf(r.unit);
      const a = payload && this.keys.admit(payload);
      if (!a || !a.ok) {
        this.agent.stats.drop(`group-key-${a ? a.cause : 'unreadable'}`);
        return s;
      }
      mergeInto(s, a.step);
      // The designated originator is (back) at work: stand by again if we had taken over.
      if (a.fresh && this.originator && this.service && this.service.originator !== 'controller') {
        this.originator = undefined;
        this.log.push({ type: 'originator', role: 'standby', epoch: a.epoch });
      }
    }
    s.out.push(this.data.send(r.unit, 2));
    return s;
  }

  /** Data the controller itself originates. */
  send(unit: DataUnit, method: DataMethod): NodeStep {
    return { out: [this.data.send(unit, method)], events: [], received: [] };
  }

  tick(): NodeStep {
    const s = withStep(this.agent.tick());
    if (this.service) this.groupKeyTick(s);
    return s;
  }

  private groupKeyTick(s: NodeStep): void {
    const now = this.clock.now();
    const policy = this.service!.policy;
    if (!this.originator) {
      // Standing by for a member originator: take over when its next key is late.
      const cur = this.keys.ring.current(now);
      const late = cur ? !this.keys.ring.next(now) && now >= cur.notAfter - policy.leadMs / 2 : now - this.startedAt >= policy.leadMs;
      if (!late) return;
      this.becomeOriginator('takeover');
    }
    for (const bytes of this.originator!.tick(now)) this.announce(s, bytes);
  }

  /** Sends one announcement down the tree, after the entitlement sweep a fresh epoch calls for. */
  private announce(s: NodeStep, bytes: Uint8Array): void {
    const a = this.keys.admit(bytes);
    if (!a.ok) {
      this.agent.stats.drop(`group-key-${a.cause}`);
      return;
    }
    mergeInto(s, a.step);
    const unit = sealDataUnit(this.agent.groupId, ContentType.GroupKey, { subgroup: this.agent.subgroupId, member: 0, seq: this.seq.next() }, bytes);
    s.out.push(this.data.send(unit, this.service!.method));
  }

  /** Expel (§6.4) from the top-level subgroup, and void the pending next group key. */
  expel(memberId: number): NodeStep {
    const s = withStep(this.agent.expel(memberId));
    const v = this.voidPending();
    mergeInto(s, v);
    return s;
  }

  /**
   * An expulsion here or below made the pending next key void (it reached someone who must
   * not have it): a fresh one under a new epoch, to the remaining members only. `epoch`, from a
   * child's request, names that key: if it came into force while the request travelled, it
   * is replaced at once (a roll), or the expelled member would hold the key in force.
   */
  voidPending(epoch?: number): NodeStep {
    const s = emptyStep();
    if (this.service && epoch !== undefined && this.keys.ring.current(this.clock.now())?.epoch === epoch) return this.rollNow();
    if (!this.service || !this.keys.hasPendingNext()) return s;
    const o = this.originator ?? this.becomeOriginator('takeover');
    for (const bytes of o.voidPending(this.clock.now())) this.announce(s, bytes);
    return s;
  }

  /** `iolus roll`: a new group key in force now. */
  rollNow(): NodeStep {
    const s = emptyStep();
    if (!this.service) return s;
    const o = this.originator ?? this.becomeOriginator('takeover');
    for (const bytes of o.rollNow(this.clock.now())) this.announce(s, bytes);
    return s;
  }

  /** Epochs the originator created since last asked (to persist them). */
  drainCreated(): { epoch: number; notBefore: number; notAfter: number; voids: number; reason: string }[] {
    return this.originator ? this.originator.created.splice(0) : [];
  }

  private payloadOf(unit: DataUnit): Uint8Array | undefined {
    try {
      return this.data.open(unit);
    } catch {
      return undefined;
    }
  }
}
