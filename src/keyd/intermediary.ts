/**
 * Intermediary (GSI, paper §5): a member of its parent's subgroup and the agent of its own.
 * It bridges the two: data from its subgroup goes up, data from its parent goes down, never
 * back where it came from (§5, Figure 5); only the data key is rewrapped (§6.5). It joins its
 * parent when its first member arrives and leaves when the last one goes (§6.2, §6.4), keeps
 * its own members when it loses the parent (it rejoins), and passes GRP_END down (§6.7).
 */
import { Member, type DataMethod, type MemberEvent } from '../client/member.js';
import type { DataUnit } from '../protocol/dataUnit.js';
import type { Outbound } from '../protocol/outbound.js';
import type { Clock } from '../util/clock.js';
import type { CatchUpResponse, JoinGrant, JoinRole } from '../wire/control.js';
import { Agent, type AgentInit, type Step } from './agent.js';
import { AgentDataPlane } from './agentDataPlane.js';
import { emptyStep, mergeInto, withStep, type NodeStep } from './controller.js';
import { GroupKeyRelay } from './groupKey/relay.js';
import { fromBase64 } from '../crypto/bytes.js';
import { sealDataUnit } from '../protocol/dataUnit.js';
import { SequenceCounter } from '../util/sequence.js';
import { ContentType } from '../wire/data.js';

export type ParentState = 'detached' | 'joining' | 'attached';

export class Intermediary {
  readonly agent: Agent;
  readonly data: AgentDataPlane;
  readonly uplink: Member;
  readonly keys: GroupKeyRelay;
  private readonly seq: SequenceCounter;
  private state: ParentState = 'detached';
  private lastParentRefresh = 0;
  /** Parent-plane events the owner may want (gaps, removal, end). */
  lastUplinkEvents: MemberEvent[] = [];

  constructor(init: AgentInit, private readonly clock: Clock) {
    this.agent = new Agent(init, clock);
    this.data = new AgentDataPlane(this.agent);
    this.uplink = new Member(init.group, clock, { relayOnly: true });
    this.keys = new GroupKeyRelay(this.agent);
    this.seq = new SequenceCounter(clock);
  }

  get parentState(): ParentState {
    return this.state;
  }

  join(principal: string, role: JoinRole, opts: { endpoint?: { host: string; port: number } } = {}): { grant: JoinGrant; step: NodeStep } {
    const { grant, step } = this.agent.join(principal, role, opts);
    const s = withStep(step);
    this.ensureParent(s);
    return { grant, step: s };
  }

  leave(memberId: number, principal: string): NodeStep {
    return this.afterRemoval(this.agent.leave(memberId, principal));
  }

  expel(memberId: number): NodeStep {
    const s = this.afterRemoval(this.agent.expel(memberId));
    this.requestVoid(s);
    return s;
  }

  /** The parent admitted us (over the control plane). */
  onParentGrant(grant: JoinGrant): NodeStep {
    this.uplink.acceptGrant(grant);
    this.state = 'attached';
    this.lastParentRefresh = this.clock.now();
    const s = emptyStep();
    s.events.push({ type: 'parent', state: 'attached' });
    this.keys.setPolicy(grant.groupKeyPolicy);
    this.takeGroupKeys(s, grant.originators, grant.groupKeys);
    // Nobody left to serve by the time the grant arrived: leave again at once.
    if (this.agent.members.size === 0) this.detach(s);
    return s;
  }

  /** The parent refused or lost us (join failed, refresh refused, parent restarted). */
  onParentLost(): NodeStep {
    const s = emptyStep();
    this.uplink.forget();
    this.state = 'detached';
    s.events.push({ type: 'parent', state: 'detached' });
    this.ensureParent(s);
    return s;
  }

  onParentCatchUp(state: CatchUpResponse): NodeStep {
    this.uplink.applyCatchUp(state);
    const s = emptyStep();
    this.takeGroupKeys(s, state.originators, state.groupKeys);
    return s;
  }

  /**
   * Group keys over the secure channel (grant, catch-up): into our ring, and any fresh one on
   * to our members, who may have missed it while we were away.
   */
  private takeGroupKeys(s: NodeStep, originators: string[] | undefined, keys: string[]): void {
    if (originators) this.keys.ring.setOriginators(originators.map(fromBase64));
    for (const b64 of keys) {
      const bytes = fromBase64(b64);
      const a = this.keys.admit(bytes);
      if (!a.ok || !a.fresh) continue;
      mergeInto(s, a.step);
      if (!this.agent.isEnded && this.agent.members.size > 0) {
        const unit = sealDataUnit(this.agent.groupId, ContentType.GroupKey, { subgroup: this.agent.subgroupId, member: 0, seq: this.seq.next() }, bytes);
        s.out.push(this.data.send(unit, this.keys.policy()?.method ?? 1));
      }
    }
    this.uplink.heldGroupEpoch = this.keys.ring.epoch;
  }

  /** A datagram from the parent's subgroup: forward data down, pass GRP_END down. */
  onParent(bytes: Uint8Array): NodeStep {
    const s = emptyStep();
    const events = this.uplink.receive(bytes);
    this.lastUplinkEvents = events;
    for (const e of events) {
      switch (e.type) {
        case 'data':
          s.received.push({ unit: e.unit, method: e.method });
          if (e.contentType === ContentType.GroupKey && !this.admitGroupKey(s, e.payload!)) break;
          if (!this.agent.isEnded) {
            s.out.push(this.data.send(e.unit, e.method));
            this.agent.stats.forwarded++;
          }
          break;
        case 'catch-up':
          if (this.state === 'attached') s.out.push({ kind: 'parent-control', request: { op: 'catch-up', memberId: this.uplink.memberId } });
          break;
        case 'removed':
          this.state = 'detached';
          s.events.push({ type: 'parent', state: 'detached' });
          this.ensureParent(s);
          break;
        case 'end':
          this.merge(s, this.agent.end());
          this.state = 'detached';
          break;
        case 'dropped':
          this.agent.stats.drop(`parent-${e.cause}`);
          break;
        default:
          break;
      }
    }
    return s;
  }

  /** A group key from above: into the ring, the entitlement sweep first; false if it must not go on. */
  private admitGroupKey(s: NodeStep, payload: Uint8Array): boolean {
    const a = this.keys.admit(payload);
    if (!a.ok) {
      this.agent.stats.drop(`group-key-${a.cause}`);
      // An originator we do not know yet (it joined after us): the parent's state names it.
      if (a.cause === 'unknown-originator' && this.state === 'attached') s.out.push({ kind: 'parent-control', request: { op: 'catch-up', memberId: this.uplink.memberId } });
      return false;
    }
    mergeInto(s, a.step);
    this.uplink.heldGroupEpoch = this.keys.ring.epoch;
    return true;
  }

  /** An expulsion below made the pending next group key void: ask the controller for a fresh one. */
  private requestVoid(s: NodeStep): void {
    if (this.keys.hasPendingNext() && this.state === 'attached') {
      s.out.push({ kind: 'parent-control', request: { op: 'void', epoch: this.keys.ring.next(this.clock.now())!.epoch } });
    }
  }

  /** A child intermediary relays a void request: pass it up. */
  relayVoid(epoch: number): NodeStep {
    const s = emptyStep();
    if (this.state === 'attached') s.out.push({ kind: 'parent-control', request: { op: 'void', epoch } });
    return s;
  }

  /** A datagram heard on our own subgroup: method-1 data from a member goes up. */
  onSubgroup(bytes: Uint8Array): NodeStep {
    const r = this.data.receive(bytes);
    if (!r.ok) return emptyStep();
    const s: NodeStep = { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] };
    this.up(s, r.unit, r.method);
    return s;
  }

  /** Method 2 from a member: multicast it signed, and send it up. */
  onUnicast(bytes: Uint8Array): NodeStep {
    const r = this.data.receiveUp(bytes);
    if (!r.ok) return emptyStep();
    const s: NodeStep = { out: [], events: [], received: [{ unit: r.unit, method: r.method }] };
    if (r.unit.contentType === ContentType.GroupKey) {
      let payload: Uint8Array;
      try {
        payload = this.data.open(r.unit);
      } catch {
        return s;
      }
      if (!this.admitGroupKey(s, payload)) return s;
    }
    s.out.push(this.data.send(r.unit, 2));
    this.up(s, r.unit, r.method);
    return s;
  }

  tick(): NodeStep {
    const s = withStep(this.agent.tick());
    this.afterRemovalInPlace(s);
    if (this.state === 'attached' && this.clock.now() - this.lastParentRefresh >= (this.uplink.grant?.refreshMs ?? Infinity)) {
      this.lastParentRefresh = this.clock.now();
      s.out.push({ kind: 'parent-control', request: { op: 'refresh', memberId: this.uplink.memberId } });
    }
    return s;
  }

  /**
   * The intermediary is going away (not the group): it leaves its parent. Its members notice
   * the silence (no heartbeats) and rejoin, here once it is back or wherever discovery sends them.
   */
  shutdown(): NodeStep {
    const s = emptyStep();
    if (this.state === 'attached') this.detach(s);
    this.state = 'detached';
    return s;
  }

  private up(s: NodeStep, unit: DataUnit, method: DataMethod): void {
    if (this.state !== 'attached' || !this.uplink.isJoined) {
      this.agent.stats.drop('no-parent');
      return;
    }
    if (method === 1 && !this.uplink.hasKey) {
      this.agent.stats.drop('no-parent-key');
      return;
    }
    const o: Outbound = this.uplink.forward(unit, method);
    s.out.push(o.kind === 'agent' ? { kind: 'parent-agent', bytes: o.bytes } : { kind: 'parent-subgroup', bytes: (o as { bytes: Uint8Array }).bytes });
    this.agent.stats.forwarded++;
  }

  private ensureParent(s: NodeStep): void {
    if (this.state === 'detached' && this.agent.members.size > 0 && !this.agent.isEnded) {
      this.state = 'joining';
      s.events.push({ type: 'parent', state: 'joining' });
      s.out.push({ kind: 'parent-control', request: { op: 'join', role: 'intermediary' } });
    }
  }

  private afterRemoval(step: Step): NodeStep {
    const s = withStep(step);
    this.afterRemovalInPlace(s);
    return s;
  }

  private afterRemovalInPlace(s: NodeStep): void {
    if (this.agent.members.size === 0 && this.state === 'attached') this.detach(s);
  }

  private detach(s: NodeStep): void {
    s.out.push({ kind: 'parent-control', request: { op: 'leave', memberId: this.uplink.memberId } });
    this.uplink.forget();
    this.state = 'detached';
    s.events.push({ type: 'parent', state: 'detached' });
  }

  private merge(s: NodeStep, step: Step): void {
    mergeInto(s, step);
  }
}
