/**
 * A whole Iolus tree in one process: a controller, intermediaries at any depth, members, all
 * wired through a MemoryNetwork (subgroup plane, with faults) and direct calls (the control
 * plane, reliable, as the secure channel is). Used by the scenario tests and benchmarks.
 */
import { generateSigningKey } from '../../src/crypto/sign.js';
import { Member, type DataMethod } from '../../src/client/member.js';
import { IolusError } from '../../src/errors.js';
import { admitAll, type Admit } from '../../src/keyd/admission.js';
import { withStep, Controller, type NodeStep } from '../../src/keyd/controller.js';
import { Intermediary } from '../../src/keyd/intermediary.js';
import type { AgentEvent, AgentInit } from '../../src/keyd/agent.js';
import type { Outbound } from '../../src/protocol/outbound.js';
import { FakeClock } from '../../src/util/clock.js';
import type { JoinGrant, JoinRole } from '../../src/wire/control.js';
import { ContentType, type Origin } from '../../src/wire/data.js';
import { MemoryNetwork, type Faults } from './memoryNetwork.js';
import { MemberKeys } from '../../src/client/memberKeys.js';

export interface TreeOptions {
  group?: string;
  seed?: number;
  faults?: Faults;
  agent?: Partial<Omit<AgentInit, 'group' | 'name' | 'signing' | 'transport'>>;
  admit?: Admit;
}

type AgentNode = Controller | Intermediary;

export interface Received {
  origin: Origin;
  payload: Uint8Array;
  contentType: ContentType;
  method: DataMethod;
}

export interface TreeMember {
  name: string;
  agent: string;
  member: Member;
  keys: MemberKeys;
  received: Received[];
  removed: boolean;
  ended: boolean;
}

export class Tree {
  readonly clock = new FakeClock();
  readonly net: MemoryNetwork;
  readonly group: string;
  readonly nodes = new Map<string, { node: AgentNode; parent?: string }>();
  readonly members = new Map<string, TreeMember>();
  readonly events: { node: string; event: AgentEvent }[] = [];
  private control: (() => void)[] = [];

  constructor(readonly opts: TreeOptions = {}) {
    this.group = opts.group ?? 'lecture.example';
    this.net = new MemoryNetwork(opts.seed ?? 1, opts.faults ?? {});
    this.addAgent('controller');
  }

  private init(name: string): AgentInit {
    return {
      group: this.group, name, signing: generateSigningKey(),
      transport: { kind: 'memory', channel: `sg:${name}` }, admit: this.opts.admit ?? admitAll,
      ...this.opts.agent,
    };
  }

  private addAgent(name: string, parent?: string): void {
    const node = parent === undefined ? new Controller(this.init(name), this.clock) : new Intermediary(this.init(name), this.clock);
    this.nodes.set(name, parent === undefined ? { node } : { node, parent });
    const cut = () => this.silent.has(name);
    this.net.subscribe(`sg:${name}`, `agent:${name}`, (b) => cut() || this.route(name, node.onSubgroup(b)));
    this.net.listen(`agent:${name}`, (b) => cut() || this.route(name, node.onUnicast(b)));
    if (node instanceof Intermediary && parent !== undefined) {
      this.net.subscribe(`sg:${parent}`, `uplink:${name}`, (b) => cut() || this.route(name, node.onParent(b)));
    }
  }

  get controller(): Controller {
    return this.nodes.get('controller')!.node as Controller;
  }

  node(name: string): AgentNode {
    const n = this.nodes.get(name)?.node;
    if (!n) throw new Error(`no agent ${name}`);
    return n;
  }

  intermediary(name: string): Intermediary {
    const n = this.node(name);
    if (!(n instanceof Intermediary)) throw new Error(`${name} is not an intermediary`);
    return n;
  }

  addIntermediary(name: string, parent: string): Intermediary {
    this.node(parent);
    this.addAgent(name, parent);
    return this.intermediary(name);
  }

  /** JOIN over the (reliable) control plane. */
  join(name: string, agentName: string, role: JoinRole = 'member'): TreeMember {
    let tm = this.members.get(name);
    if (!tm) {
      const member = new Member(this.group, this.clock);
      tm = { name, agent: agentName, member, keys: new MemberKeys(member), received: [], removed: false, ended: false };
    }
    tm.agent = agentName;
    tm.removed = false;
    this.members.set(name, tm);
    const { grant, step } = this.nodeJoin(agentName, name, role);
    tm.member.acceptGrant(grant);
    tm.keys.onGrant(grant);
    this.net.subscribe(`sg:${agentName}`, `member:${name}`, (b) => this.onMemberDatagram(tm, b));
    this.route(agentName, step);
    return tm;
  }

  /**
   * Bulk setup: many joins with the subgroup traffic they cause discarded, then every joiner
   * fetches the final state over the control plane (catch-up). Quadratic delivery avoided.
   */
  joinMany(names: string[], agentName: string): void {
    this.settle();
    for (const n of names) this.join(n, agentName);
    this.net.discard();
    for (const n of names) this.catchUp(this.mustMember(n));
    this.settle();
  }

  leave(name: string): void {
    const tm = this.mustMember(name);
    const n = this.node(tm.agent);
    const step = n instanceof Intermediary ? n.leave(tm.member.memberId, name) : withStep(n.agent.leave(tm.member.memberId, name));
    tm.member.forget();
    this.route(tm.agent, step);
  }

  /** Expels a member; it keeps listening (an attacker would). */
  expel(name: string): void {
    const tm = this.mustMember(name);
    const n = this.node(tm.agent);
    this.route(tm.agent, n.expel(tm.member.memberId));
  }

  send(name: string, payload: Uint8Array | string, method: DataMethod = 1): Origin {
    const tm = this.mustMember(name);
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
    const out = tm.member.send(bytes, method);
    this.routeMember(tm, out);
    return { subgroup: tm.member.subgroupId, member: tm.member.memberId, seq: 0 };
  }

  /** Runs the network and the control plane until nothing moves. */
  settle(): void {
    for (let round = 0; round < 1000; round++) {
      this.net.run();
      const work = this.control;
      this.control = [];
      if (work.length === 0) return;
      for (const w of work) w();
    }
    throw new Error('tree did not settle');
  }

  /** Members and agents cut off (partitioned, crashed): they hear nothing, send nothing, refresh nothing. */
  readonly silent = new Set<string>();

  /** Moves the clock and ticks every agent (timers: heartbeats, expiry, refresh, batches); members refresh when due. */
  tick(ms: number): void {
    this.clock.advance(ms);
    for (const tm of this.members.values()) {
      const g = tm.member.grant;
      if (!tm.member.isJoined || this.silent.has(tm.name) || !g) continue;
      const due = (this.lastRefresh.get(tm.name) ?? 0) + g.refreshMs;
      if (this.clock.now() < due) continue;
      this.lastRefresh.set(tm.name, this.clock.now());
      try {
        this.node(tm.agent).agent.refresh(tm.member.memberId, tm.name);
      } catch (err) {
        if (!(err instanceof IolusError)) throw err;
      }
    }
    for (const [name, { node }] of this.nodes) {
      if (this.silent.has(name)) continue;
      this.route(name, node.tick());
    }
    this.settle();
  }

  private readonly lastRefresh = new Map<string, number>();

  mustMember(name: string): TreeMember {
    const tm = this.members.get(name);
    if (!tm) throw new Error(`no member ${name}`);
    return tm;
  }

  private nodeJoin(agentName: string, principal: string, role: JoinRole): { grant: JoinGrant; step: NodeStep } {
    const n = this.node(agentName);
    if (n instanceof Intermediary) return n.join(principal, role);
    const { grant, step } = n.agent.join(principal, role);
    return { grant, step: withStep(step) };
  }

  private onMemberDatagram(tm: TreeMember, bytes: Uint8Array): void {
    if (this.silent.has(tm.name)) return;
    for (const e of tm.member.receive(bytes)) {
      if (e.type === 'data' && e.contentType === ContentType.GroupKey) {
        // An originator we have not heard of (it joined after us): the agent's state names it.
        if (!tm.keys.onAnnouncement(e.payload!).ok && tm.keys.ring.originatorKeys.length < 16) this.control.push(() => this.catchUp(tm));
      }
      else if (e.type === 'data') tm.received.push({ origin: e.origin, payload: e.payload!, contentType: e.contentType, method: e.method });
      else if (e.type === 'removed') tm.removed = true;
      else if (e.type === 'end') tm.ended = true;
      else if (e.type === 'catch-up') this.control.push(() => this.catchUp(tm));
    }
  }

  private catchUp(tm: TreeMember): void {
    if (!tm.member.isJoined) return;
    const n = this.node(tm.agent);
    try {
      const state = n.agent.catchUp(tm.member.memberId, tm.name);
      tm.member.applyCatchUp(state);
      tm.keys.onCatchUp(state);
    } catch (err) {
      if (!(err instanceof IolusError)) throw err;
      // Removed, or pending a batch: nothing to catch up on.
    }
  }

  private routeMember(tm: TreeMember, o: Outbound): void {
    if (o.kind === 'subgroup') this.net.multicast(`sg:${tm.agent}`, o.bytes);
    else if (o.kind === 'agent') this.net.unicast(`agent:${tm.agent}`, o.bytes);
  }

  route(from: string, step: NodeStep): void {
    if (this.silent.has(from)) return;
    for (const e of step.events) this.events.push({ node: from, event: e });
    const parent = this.nodes.get(from)?.parent;
    for (const o of step.out) {
      switch (o.kind) {
        case 'subgroup':
          this.net.multicast(`sg:${from}`, o.bytes);
          break;
        case 'parent-subgroup':
          this.net.multicast(`sg:${parent}`, o.bytes);
          break;
        case 'parent-agent':
          this.net.unicast(`agent:${parent}`, o.bytes);
          break;
        case 'parent-control':
          this.control.push(() => this.parentControl(from, parent!, o.request));
          break;
        case 'agent':
          throw new Error('agents do not unicast to an agent');
      }
    }
  }

  private parentControl(child: string, parent: string, req: Extract<Outbound, { kind: 'parent-control' }>['request']): void {
    const c = this.intermediary(child);
    const p = this.node(parent);
    try {
      switch (req.op) {
        case 'join': {
          const { grant, step } = this.nodeJoin(parent, child, req.role);
          this.route(child, c.onParentGrant(grant));
          this.route(parent, step);
          break;
        }
        case 'leave':
          this.route(parent, p instanceof Intermediary ? p.leave(req.memberId, child) : withStep(p.agent.leave(req.memberId, child)));
          break;
        case 'refresh':
          p.agent.refresh(req.memberId, child);
          break;
        case 'catch-up':
          this.route(child, c.onParentCatchUp(p.agent.catchUp(req.memberId, child)));
          break;
        case 'void':
          this.route(parent, p instanceof Intermediary ? p.relayVoid(req.epoch) : p.voidPending(req.epoch));
          break;
      }
    } catch (err) {
      if (!(err instanceof IolusError)) throw err;
      if (req.op === 'refresh' || req.op === 'catch-up') this.route(child, c.onParentLost());
    }
  }
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
