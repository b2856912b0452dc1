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
import { emptyStep, withStep, type NodeStep } from './controller.js';

export type ParentState = 'detached' | 'joining' | 'attached';

export class Intermediary {
  readonly agent: Agent;
  readonly data: AgentDataPlane;
  readonly uplink: Member;
  private state: ParentState = 'detached';
  private lastParentRefresh = 0;
  /** Parent-plane events the owner may want (gaps, removal, end). */
  lastUplinkEvents: MemberEvent[] = [];

  constructor(init: AgentInit, private readonly clock: Clock) {
    this.agent = new Agent(init, clock);
    this.data = new AgentDataPlane(this.agent);
    this.uplink = new Member(init.group, clock, { relayOnly: true });
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
    return this.afterRemoval(this.agent.expel(memberId));
  }

  /** The parent admitted us (over the control plane). */
  onParentGrant(grant: JoinGrant): NodeStep {
    this.uplink.acceptGrant(grant);
    this.state = 'attached';
    this.lastParentRefresh = this.clock.now();
    const s = emptyStep();
    s.events.push({ type: 'parent', state: 'attached' });
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
    return emptyStep();
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

  /** A datagram heard on our own subgroup: method-1 data from a member goes up. */
  onSubgroup(bytes: Uint8Array): NodeStep {
    const r = this.data.receive(bytes);
    if (!r.ok) return emptyStep();
    const s: NodeStep = { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] };
    this.up(s, r.unit, r.method);
    return s;
  }

  /** Method 2 from a member: the data plane multicasts it signed; we also send it up. */
  onUnicast(bytes: Uint8Array): NodeStep {
    const r = this.data.receiveUp(bytes);
    if (!r.ok) return emptyStep();
    const s: NodeStep = { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] };
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
    s.out.push(...step.out);
    s.events.push(...step.events);
  }
}
