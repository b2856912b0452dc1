/**
 * keyd: one agent of one group as a process (issue 3). It wires the pure state machines
 * (Controller or Intermediary) to the world: the control plane (fastify, mutual TLS), the
 * subgroup transport, the parent link of an intermediary, timers, logs and metrics. Protocol
 * decisions stay in the state machines; this file only carries messages and keeps time.
 */
import type { AddressInfo } from 'node:net';
import { PolicyError, UsageError, ValidationError } from '../errors.js';
import { checkEndpoint } from '../transport/fanout.js';
import { ipFamily } from '../transport/config.js';
import { decide, type Acl } from '../pki/acl.js';
import type { Identity } from '../pki/identity.js';
import { createMtlsServer, type MtlsServer } from '../pki/mtlsServer.js';
import { loadTlsMaterial, type TlsMaterial } from '../pki/tlsOptions.js';
import type { AgentTransport } from '../transport/types.js';
import { createLogger, type Logger } from '../util/log.js';
import { systemClock, type Clock } from '../util/clock.js';
import { MessageType } from '../wire/header.js';
import { RekeyReason } from '../wire/keyUpdate.js';
import { type JoinGrant, type JoinRequest, type TransportDescriptor } from '../wire/control.js';
import { generateSigningKey } from '../crypto/sign.js';
import type { Admission } from './admission.js';
import type { AgentEvent, AgentInit } from './agent.js';
import type { KeydConfig } from './config.js';
import { registerControlApi } from './controlApi.js';
import { Controller, type NodeStep } from './controller.js';
import { Intermediary } from './intermediary.js';
import { Metrics } from './metrics.js';
import { Ledger, type DeliveryRow } from './ledger.js';
import { join as joinPath } from 'node:path';
import { fromBase64 } from '../crypto/bytes.js';
import { ParentLink } from './parentLink.js';
import { RateLimiter } from './rateLimit.js';
import { openSubgroupTransport } from './subgroupTransport.js';
import type { SseHub } from '../transport/sse.js';
import { AgentDiscovery } from './discovery.js';

export interface DaemonDeps {
  clock?: Clock;
  logger?: Logger;
}

export class KeyDaemon {
  readonly node: Controller | Intermediary;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly joinLimiter: RateLimiter;
  readonly ledger: Ledger;
  sse: SseHub | undefined;
  private transport!: AgentTransport;
  private server!: MtlsServer;
  private parent: ParentLink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private discovery: AgentDiscovery | undefined;
  private readonly clock: Clock;
  private stopped = false;
  private acl: Acl;
  /** Ends of entitlement the parent delegated to us (bounds every member below). */
  private delegatedUntil: number | null = null;
  /** While a join is dispatched: its member id, and the ledger rows of the keys its grant carries. */
  private joining: { memberId: number; rows: DeliveryRow[] } | undefined;

  private constructor(readonly config: KeydConfig, private readonly tls: TlsMaterial, private readonly deps: DaemonDeps) {
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger('keyd', { group: config.group, agent: config.agent.name });
    this.metrics = new Metrics({ group: config.group, agent: config.agent.name });
    this.joinLimiter = new RateLimiter(config.limits.joinsPerMinute, config.limits.joinBurst);
    this.acl = config.acl;
    this.ledger = new Ledger(joinPath(config.state!.dir, 'ledger.sqlite'));
    const init: AgentInit = {
      group: config.group,
      name: config.agent.name,
      signing: generateSigningKey(),
      transport: { kind: 'memory', channel: 'pending' }, // replaced once the transport is open
      admit: (principal, role, now) => this.admit(principal, role, now),
      membershipTtlMs: config.subgroup.membershipTtl,
      ...(config.subgroup.refresh !== undefined ? { refreshMs: config.subgroup.refresh } : {}),
      heartbeatMs: config.subgroup.heartbeat,
      rekeyIntervalMs: config.subgroup.rekeyInterval,
      batchWindowMs: config.subgroup.batchWindow,
      maxMembers: config.subgroup.maxMembers,
      // Metering: a budget of epochs ("minutes" in the ACL) counts what the ledger recorded.
      entitledFor: (r, epoch, notBefore) => decide(this.acl, { principal: r.principal, role: r.role }, r.role, new Date(notBefore), () => this.ledger.epochsReceived(r.principal, epoch)).allow,
    };
    this.node = config.agent.role === 'controller' ? new Controller(init, this.clock) : new Intermediary(init, this.clock);
    const gk = config.groupKey;
    if (this.node instanceof Controller && gk.enabled) {
      this.node.enableGroupKeys({
        policy: { periodMs: gk.period, leadMs: gk.lead, graceMs: gk.grace, repeats: gk.repeats },
        method: gk.method, originator: gk.originator, floor: this.ledger.lastEpoch(),
      });
    }
  }

  /** Loads the TLS material and starts everything, or throws before anything listens. */
  static async start(config: KeydConfig, deps: DaemonDeps = {}): Promise<KeyDaemon> {
    const tls = await loadTlsMaterial(config.tls);
    const d = new KeyDaemon(config, tls, deps);
    await d.startInner();
    return d;
  }

  get url(): string {
    const a = this.server.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `https://${host}:${a.port}`;
  }

  get level(): number {
    return this.config.agent.level ?? (this.config.agent.role === 'controller' ? 0 : 1);
  }

  get transportDescriptor(): TransportDescriptor {
    return this.transport.descriptor;
  }

  private async startInner(): Promise<void> {
    const c = this.config;
    this.server = createMtlsServer({
      tls: this.tls,
      labels: c.tls,
      fastify: { logger: false, bodyLimit: c.limits.bodyLimit, connectionTimeout: 30_000, keepAliveTimeout: 65_000 },
    });
    this.server.server.on('tlsClientError', () => this.metrics.inc('iolus_tls_refused_total', 'TLS handshakes refused (no or bad client certificate)'));
    registerControlApi(this.server, this);
    const { transport, sse } = await openSubgroupTransport(c, this.log);
    this.transport = transport;
    this.sse = sse;
    this.node.agent.transport = transport.descriptor;
    transport.onDatagram((bytes) => this.onDatagram(bytes));
    await this.server.listen({ host: c.listen.host, port: c.listen.port });
    if (this.node instanceof Intermediary) {
      this.parent = new ParentLink(c, this.tls, this.node, (s) => this.dispatch(s), this.log, (until) => {
        this.delegatedUntil = until;
      }, () => this.url);
    }
    this.registerMetrics();
    this.discovery = await AgentDiscovery.start(c.discovery, this.tls, { group: c.group, name: c.agent.name, role: c.agent.role, level: this.level, url: this.url, members: () => this.node.agent.members.size, log: this.log });
    const tickMs = Math.max(20, Math.min(250, Math.floor(c.subgroup.heartbeat / 4)));
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
    this.log.info({ event: 'start', role: c.agent.role, url: this.url, transport: transport.descriptor, subgroup: this.node.agent.subgroupId }, 'agent started');
  }

  private tick(): void {
    if (this.stopped) return;
    try {
      this.dispatch(this.node.tick());
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'tick failed');
    }
  }

  private onDatagram(bytes: Uint8Array): void {
    if (this.stopped) return;
    // Method 2's first hop (DataUp) goes to the agent; everything else is subgroup traffic.
    const step = bytes.length > 2 && bytes[2] === MessageType.DataUp ? this.node.onUnicast(bytes) : this.node.onSubgroup(bytes);
    this.dispatch(step);
  }

  /** Carries out what a state machine asked for. */
  dispatch(step: NodeStep): void {
    // Ledger first: a recipient is on disk before its key leaves (kill -9 loses no billing).
    if (this.node instanceof Controller) {
      for (const e of this.node.drainCreated()) {
        this.ledger.recordEpoch(e);
        this.log.info({ event: 'group-key', epoch: e.epoch, notBefore: new Date(e.notBefore).toISOString(), notAfter: new Date(e.notAfter).toISOString(), voids: e.voids || undefined, reason: e.reason }, 'group key created');
      }
    }
    for (const e of step.events) this.onEvent(e);
    for (const o of step.out) {
      switch (o.kind) {
        case 'subgroup':
          this.transport.multicast(o.bytes);
          break;
        case 'parent-subgroup':
        case 'parent-agent':
        case 'parent-control':
          this.parent?.carry(o);
          break;
        case 'agent':
          break;
      }
    }
  }

  private onEvent(e: AgentEvent): void {
    switch (e.type) {
      case 'join':
        this.metrics.inc('iolus_joins_total', 'Members admitted', { role: e.role });
        this.log.info({ event: 'join', memberId: e.memberId, principal: e.principal, role: e.role }, 'member joined');
        break;
      case 'remove':
        this.transport.removeMember(e.memberId);
        this.metrics.inc('iolus_removals_total', 'Members removed', { cause: e.cause });
        this.log.info({ event: 'remove', memberId: e.memberId, principal: e.principal, cause: e.cause }, 'member removed');
        break;
      case 'rekey':
        this.metrics.inc('iolus_rekeys_total', 'Subgroup rekeys', { reason: RekeyReason[e.reason].toLowerCase() });
        this.log.info({ event: 'rekey', reason: RekeyReason[e.reason].toLowerCase(), epoch: e.epoch, wraps: e.wraps, messages: e.messages, bytes: e.bytes, members: e.members }, 'subgroup rekeyed');
        break;
      case 'refresh':
        this.log.debug({ event: 'refresh', memberId: e.memberId, principal: e.principal }, 'member refreshed');
        break;
      case 'parent':
        this.log.info({ event: 'parent', state: e.state }, `parent link ${e.state}`);
        break;
      case 'end':
        this.log.info({ event: 'end' }, 'GRP_END sent');
        break;
      case 'key-voided':
        this.ledger.voidEpoch(e.epoch);
        this.log.info({ event: 'group-key-voided', epoch: e.epoch }, 'pending group key voided');
        break;
      case 'key-delivered': {
        const rows = e.recipients.map((r) => ({ epoch: e.epoch, notBefore: e.notBefore, notAfter: e.notAfter, principal: r.principal, role: r.role, memberId: r.memberId, subtree: r.subtree }));
        // A joiner's keys leave in its grant, which waits for the group commit (join below); keys
        // that leave on the subgroup plane right after this are on disk first.
        const j = this.joining;
        const inGrant = j !== undefined && rows.every((r) => r.memberId === j.memberId);
        if (inGrant) j.rows.push(...rows);
        else this.ledger.recordDeliveries(rows);
        this.metrics.inc('iolus_group_key_deliveries_total', 'Group keys handed to members (ledger rows)', {}, e.recipients.length);
        // A joiner's grant is already logged by its 'member joined' line (and is in the ledger): debug only.
        if (inGrant) this.log.debug({ event: 'group-key-out', epoch: e.epoch, recipients: 1, memberId: j.memberId }, 'group key in a join grant');
        else this.log.info({ event: 'group-key-out', epoch: e.epoch, recipients: e.recipients.length }, 'group key sent on');
        break;
      }
    }
  }

  private admit(principal: string, role: JoinRequest['role'], now: number): Admission {
    // A budget is spent when the epochs it paid for are over, not when their keys went out: a
    // member stays until the sweep before the next epoch drops it (refreshes meanwhile succeed).
    const d = decide(this.acl, { principal, role }, role, new Date(now), () => this.ledger.epochsEnded(principal, now));
    if (!d.allow) return { ok: false, reason: d.reason };
    let until = d.until?.getTime() ?? null;
    if (this.delegatedUntil !== null) until = until === null ? this.delegatedUntil : Math.min(until, this.delegatedUntil);
    return { ok: true, until };
  }

  /**
   * JOIN from the control plane: the certificate's role must be the one asked for. The grant
   * (which carries the current group keys) resolves once the ledger has those deliveries on
   * disk; joins answered in the same turn share that commit.
   */
  async join(identity: Identity, req: JoinRequest): Promise<JoinGrant> {
    if (identity.role !== req.role) {
      throw new PolicyError('policy.role', `certificate of ${identity.principal} carries role ${identity.role}, the join asks for ${req.role}`);
    }
    const desc = this.transport.descriptor;
    if (desc.kind === 'unicast') {
      if (!req.endpoint) throw new ValidationError('join.endpoint', 'endpoint: this subgroup uses unicast fan-out, the join must give {host, port}');
      checkEndpoint(0, req.endpoint, ipFamily(desc.agentHost) ?? 4); // throws ValidationError naming what is wrong
    }
    if (req.role === 'originator') {
      if (!(this.node instanceof Controller)) throw new PolicyError('policy.originator', 'an originator joins the controller, not an intermediary');
      if (!req.originatorKey) throw new ValidationError('join.originator', 'originatorKey: an originator must give the Ed25519 key its announcements are signed with');
      if (this.config.groupKey.originator !== identity.principal) throw new PolicyError('policy.originator', `${identity.principal} is not the designated originator (${this.config.groupKey.originator})`);
      this.node.addOriginatorKey(fromBase64(req.originatorKey));
    }
    const opts = req.endpoint ? { endpoint: req.endpoint } : {};
    const replaced = this.node.agent.members.byPrincipalName(identity.principal)?.id;
    const { grant, step } = this.node instanceof Intermediary ? this.node.join(identity.principal, req.role, opts) : this.node.agent.join(identity.principal, req.role, opts);
    // A rejoin replaces the principal's old record: its transport entry (fan-out endpoint, SSE stream) goes too.
    if (replaced !== undefined && replaced !== grant.memberId) this.transport.removeMember(replaced);
    this.transport.addMember(grant.memberId, req.endpoint);
    const joining = { memberId: grant.memberId, rows: [] as DeliveryRow[] };
    this.joining = joining;
    try {
      this.dispatch({ ...step, received: [] } as NodeStep);
    } finally {
      this.joining = undefined;
    }
    let answer: JoinGrant = grant;
    if (req.role === 'intermediary') {
      const r = this.node.agent.members.get(grant.memberId);
      answer = { ...grant, delegation: { until: r?.entitledUntil ?? null, acl: this.acl.filter((e) => !e.roles.includes('intermediary')) } };
    }
    await this.ledger.recordDeliveriesSoon(joining.rows);
    return answer;
  }

  refresh(principal: string, memberId: number, subtree?: number): { expiresAt: number } {
    try {
      const { expiresAt, step } = this.node.agent.refresh(memberId, principal, subtree === undefined ? {} : { subtree });
      this.dispatch({ ...step, received: [] });
      return { expiresAt };
    } catch (err) {
      const step = (err as { step?: NodeStep }).step;
      if (step) this.dispatch({ ...step, received: [] });
      throw err;
    }
  }

  leave(principal: string, memberId: number): void {
    const step = this.node instanceof Intermediary ? this.node.leave(memberId, principal) : { ...this.node.agent.leave(memberId, principal), received: [] };
    this.dispatch(step);
  }

  expel(memberId: number, by: string): void {
    const r = this.node.agent.members.get(memberId);
    // Both kinds of node also void the pending next group key (the controller at once, an intermediary by asking up).
    const step = this.node.expel(memberId);
    this.log.info({ event: 'expel', memberId, principal: r?.principal, by }, 'member expelled');
    this.dispatch(step);
  }

  /** A child intermediary's expulsion voided the pending group key: at the controller make a fresh one, elsewhere pass it up. */
  voidFromChild(epoch: number): void {
    this.dispatch(this.node instanceof Controller ? this.node.voidPending(epoch) : this.node.relayVoid(epoch));
  }

  /** `iolus roll`: only the controller (the originator's home) can roll the group key. */
  rollNow(): number {
    if (!(this.node instanceof Controller)) throw new UsageError('roll.not-controller', 'roll the group key at the controller');
    this.dispatch(this.node.rollNow());
    return this.node.keys.ring.epoch;
  }

  rekeyNow(): void {
    this.dispatch({ ...this.node.agent.rekeyNow(), received: [] });
  }

  memberList() {
    return [...this.node.agent.members.values()].map((m) => ({
      id: m.id, principal: m.principal, role: m.role, joinedAt: m.joinedAt, expiresAt: m.expiresAt,
      entitledUntil: m.entitledUntil, pending: m.pending, ...(m.endpoint ? { endpoint: m.endpoint } : {}),
    }));
  }

  health() {
    const a = this.node.agent;
    return {
      status: a.isEnded ? 'ended' : 'ok',
      group: this.config.group,
      agent: this.config.agent.name,
      role: this.config.agent.role,
      level: this.level,
      subgroup: a.subgroupId,
      epoch: a.epoch,
      groupEpoch: a.groupKeys.epoch(),
      members: a.members.size,
      ...(this.node instanceof Intermediary ? { parent: { state: this.node.parentState, epoch: this.node.uplink.epoch, memberId: this.node.uplink.memberId } } : {}),
    };
  }

  async subtreeStatus(): Promise<unknown> {
    return { ...this.health(), transport: this.transport.descriptor, members: this.memberList().length, children: this.memberList().filter((m) => m.role === 'intermediary').map((m) => ({ principal: m.principal, memberId: m.id, expiresAt: m.expiresAt })) };
  }

  renderMetrics(): string {
    return this.metrics.render((m) => {
      for (const [cause, n] of this.droppedByCause()) m.counterFrom('iolus_messages_dropped_total', 'Incoming messages dropped, by cause', () => n, { cause });
    });
  }

  private registerMetrics(): void {
    const m = this.metrics;
    const a = this.node.agent;
    m.gauge('iolus_members', 'Current members of this subgroup', () => a.members.size);
    m.gauge('iolus_subgroup_epoch', 'Current subgroup key epoch', () => a.epoch);
    m.gauge('iolus_group_epoch', 'Newest group key (KGRP2) epoch held', () => a.groupKeys.epoch());
    m.counterFrom('iolus_key_wraps_total', 'Key wraps performed', () => a.stats.wraps);
    m.counterFrom('iolus_messages_out_total', 'Subgroup-plane messages sent', () => a.stats.messagesOut);
    m.counterFrom('iolus_forwarded_total', 'Data units forwarded up or down the tree', () => a.stats.forwarded);
    m.counterFrom('iolus_datagrams_in_total', 'Datagrams received on the subgroup transport', () => this.transport.counters.datagramsIn);
    if (this.node instanceof Intermediary) {
      const i = this.node;
      m.gauge('iolus_parent_attached', '1 when attached to the parent subgroup', () => (i.parentState === 'attached' ? 1 : 0));
    }
  }

  /** Dropped messages by cause: the state machines' and the transport's. */
  droppedByCause(): Map<string, number> {
    const out = new Map(this.node.agent.stats.dropped);
    for (const [k, v] of this.transport.counters.dropped) out.set(`transport-${k}`, (out.get(`transport-${k}`) ?? 0) + v);
    for (const [k, v] of this.parent?.droppedByTransport() ?? []) out.set(`parent-transport-${k}`, (out.get(`parent-transport-${k}`) ?? 0) + v);
    return out;
  }

  /**
   * SIGTERM: a controller sends GRP_END (§6.7); an intermediary leaves its parent. Both close
   * their sockets; the whole thing is bounded by `budgetMs`.
   */
  async stop(opts: { budgetMs?: number } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const budget = opts.budgetMs ?? 1500;
    const work = (async () => {
      await this.discovery?.stop(); // mDNS goodbye, directory unregister: members move on at once
      if (this.node instanceof Controller) {
        const step = this.node.agent.end();
        for (const o of step.out) if (o.kind === 'subgroup') this.transport.multicast(o.bytes);
        this.log.info({ event: 'end' }, 'GRP_END sent');
      } else {
        await this.parent?.shutdown();
      }
      await new Promise((r) => setTimeout(r, 50)); // let the last datagrams leave
      await this.transport.stop();
      await this.server.close();
      this.ledger.close();
    })();
    await Promise.race([work, new Promise((r) => setTimeout(r, budget))]);
    this.log.info({ event: 'stop' }, 'agent stopped');
  }
}
