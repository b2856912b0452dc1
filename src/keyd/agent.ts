/**
 * Agent (GSA, paper §5): keys one subgroup. A pure state machine: fed requests, datagrams and
 * an injected clock, it returns the messages to send (`Step.out`) and what happened
 * (`Step.events`). The controller is an Agent at the root; an Intermediary wraps one.
 *
 * Membership: join (§6.2), refresh and soft-state expiry (§6.3), leave and expel (§6.4),
 * periodic rekey by the leave scheme (§6.6), batch rekeying (changes inside a window coalesce
 * into one rekey; window 0 is the paper's rekey per event), GRP_END (§6.7).
 */
import { randomKey, toBase64, wipe } from '../crypto/bytes.js';
import { signBytes, type SigningKey } from '../crypto/sign.js';
import { PolicyError, UsageError } from '../errors.js';
import type { Outbound } from '../protocol/outbound.js';
import type { Clock } from '../util/clock.js';
import { SequenceCounter } from '../util/sequence.js';
import { API_VERSION, type CatchUpResponse, type JoinGrant, type JoinRole, type TransportDescriptor } from '../wire/control.js';
import { EndReason, encodeGroupEnd } from '../wire/groupEnd.js';
import { AGENT_SENDER, groupIdFor, MessageType, subgroupIdFor, SUITE_AES256GCM_ED25519, WIRE_VERSION, type Header } from '../wire/header.js';
import { encodeHeartbeat } from '../wire/heartbeat.js';
import { RekeyReason } from '../wire/keyUpdate.js';
import type { Admit } from './admission.js';
import { AgentStats } from './agentStats.js';
import { MemberTable, type MemberRecord } from './memberTable.js';
import { OwnSignatures } from './ownSignatures.js';
import { buildJoinKeyUpdate, buildLeaveKeyUpdate, type RekeyContext, type SubgroupKey } from './rekey.js';

export interface AgentInit {
  group: string;
  /** The agent's own principal name. */
  name: string;
  signing: SigningKey;
  transport: TransportDescriptor;
  admit: Admit;
  subgroupId?: number;
  membershipTtlMs?: number;
  refreshMs?: number;
  heartbeatMs?: number;
  /** Periodic subgroup rekey (§6.6); 0 turns it off. */
  rekeyIntervalMs?: number;
  /** Batch rekeying window; 0 rekeys on every membership change. */
  batchWindowMs?: number;
  maxMembers?: number;
  /** How long an expelled principal stays barred from rejoining (default 10 min). */
  expelBanMs?: number;
  /**
   * Metering: may this member receive the group key of an epoch starting at `notBefore`?
   * (Beyond `entitledUntil`, which the agent checks itself: a budget of epochs, say.)
   */
  entitledFor?: (r: MemberRecord, epoch: number, notBefore: number) => boolean;
}

export type RemovalCause = 'leave' | 'expel' | 'expire' | 'entitlement';

export type AgentEvent =
  | { type: 'join'; memberId: number; principal: string; role: JoinRole }
  | { type: 'refresh'; memberId: number; principal: string; expiresAt: number }
  | { type: 'remove'; memberId: number; principal: string; role: JoinRole; cause: RemovalCause }
  | { type: 'rekey'; reason: RekeyReason; epoch: number; wraps: number; messages: number; bytes: number; members: number }
  | { type: 'end' }
  /** A pending group key was voided before activation (the ledger forgets its deliveries). */
  | { type: 'key-voided'; epoch: number }
  /** A group key went to these members (the usage ledger's input). */
  | { type: 'key-delivered'; epoch: number; notBefore: number; notAfter: number; recipients: { memberId: number; principal: string; role: JoinRole; subtree: number }[] }
  /** An intermediary's membership of its parent's subgroup. */
  | { type: 'parent'; state: 'joining' | 'attached' | 'detached' };

export interface Step {
  out: Outbound[];
  events: AgentEvent[];
}

/** The group keys (KGRP2) an agent holds, as its owner's GroupKeyRelay shows them. */
export interface GroupKeyView {
  /** Usable now (previous in grace, current, next), oldest first. */
  held(): { epoch: number; notBefore: number; notAfter: number; announcement: Uint8Array }[];
  epoch(): number;
  originators(): Uint8Array[];
  policy(): JoinGrant['groupKeyPolicy'];
}

const noGroupKeys: GroupKeyView = { held: () => [], epoch: () => 0, originators: () => [], policy: () => undefined };

const REMOVAL_REASON: Record<RemovalCause, RekeyReason> = {
  leave: RekeyReason.Leave,
  expel: RekeyReason.Expel,
  expire: RekeyReason.Expire,
  entitlement: RekeyReason.Expire,
};

export class Agent {
  readonly group: string;
  readonly groupId: Uint8Array;
  readonly subgroupId: number;
  readonly name: string;
  readonly stats = new AgentStats();
  readonly members = new MemberTable();
  readonly ttlMs: number;
  readonly refreshMs: number;
  readonly heartbeatMs: number;
  groupKeys: GroupKeyView = noGroupKeys;
  /** What joiners are told about the subgroup plane (the daemon sets it once its transport is open). */
  transport: TransportDescriptor;
  /** Batch rekeying window (ms); 0 rekeys on every change. May change at run time (config reload). */
  batchWindowMs: number;
  /** Periodic rekey interval (ms); 0 = off. May change at run time. */
  rekeyIntervalMs: number;

  private key: SubgroupKey;
  /** The key a join replaced: every holder is still a member, so data under it is still accepted. */
  private previousAfterJoin: SubgroupKey | undefined;
  private readonly seq: SequenceCounter;
  private batch: { openedAt: number; joins: Set<number>; reasons: Set<RekeyReason> } | undefined;
  private lastRekeyAt: number;
  private lastHeartbeatAt = -Infinity;
  private ended = false;
  private readonly rekeyCtx: RekeyContext;
  private readonly ownSignatures = new OwnSignatures();
  /** Expelled principals and until when they may not rejoin; expelled member ids (refresh answers "expelled"). */
  private readonly banned = new Map<string, number>();
  /** Members removed by the agent's decision (expel, entitlement): a refresh hears why, not "unknown". */
  private readonly gone = new Map<number, string>();

  private rememberGone(memberId: number, why: string): void {
    this.gone.set(memberId, why);
    if (this.gone.size > 100_000) this.gone.delete(this.gone.keys().next().value as number);
  }

  constructor(private readonly init: AgentInit, private readonly clock: Clock) {
    this.group = init.group;
    this.groupId = groupIdFor(init.group);
    this.name = init.name;
    this.subgroupId = init.subgroupId ?? subgroupIdFor(init.group, init.name);
    this.ttlMs = init.membershipTtlMs ?? 90_000;
    this.refreshMs = init.refreshMs ?? Math.floor(this.ttlMs / 3);
    this.heartbeatMs = init.heartbeatMs ?? 5_000;
    this.transport = init.transport;
    this.batchWindowMs = init.batchWindowMs ?? 0;
    this.rekeyIntervalMs = init.rekeyIntervalMs ?? 0;
    this.seq = new SequenceCounter(clock);
    this.key = { epoch: 1, key: randomKey() };
    this.lastRekeyAt = clock.now();
    this.rekeyCtx = {
      header: (type, epoch) => this.header(type, epoch),
      sign: (c) => this.sign(c),
      countWrap: () => {
        this.stats.wraps++;
      },
    };
  }

  get epoch(): number {
    return this.key.epoch;
  }

  now(): number {
    return this.clock.now();
  }

  /** The current subgroup key (for the owner's forwarding and for tests' containment checks). */
  get subgroupKey(): SubgroupKey {
    return this.key;
  }

  get publicKey(): Uint8Array {
    return this.init.signing.publicKey;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  header(type: MessageType, epoch = this.key.epoch): Header {
    return {
      version: WIRE_VERSION, suite: SUITE_AES256GCM_ED25519, type, group: this.groupId, subgroup: this.subgroupId,
      sender: AGENT_SENDER, epoch, sequence: this.seq.next(), timestamp: this.clock.now(),
    };
  }

  sign(covered: Uint8Array): Uint8Array {
    const signature = signBytes(this.init.signing, covered);
    this.ownSignatures.record(covered, signature);
    return signature;
  }

  /** Is this exactly a signature we made (our own multicast heard back)? Anything else needs verifying. */
  signedByUs(covered: Uint8Array, signature: Uint8Array): boolean {
    return this.ownSignatures.produced(covered, signature);
  }

  /** JOIN (§6.2): ACL check, a member key, and a rekey: {K'}K to the members, K' to the joiner. */
  join(principal: string, role: JoinRole, opts: { endpoint?: { host: string; port: number } } = {}): { grant: JoinGrant; step: Step } {
    this.assertRunning();
    const now = this.clock.now();
    const decision = this.init.admit(principal, role, now);
    if (!decision.ok) throw new PolicyError('policy.denied', decision.reason);
    if (decision.until !== null && decision.until <= now) throw new PolicyError('policy.entitlement', `entitlement of ${principal} ended`);
    const bannedUntil = this.banned.get(principal);
    if (bannedUntil !== undefined) {
      if (bannedUntil > now) throw new PolicyError('policy.expelled', `${principal} was expelled; it may rejoin after ${new Date(bannedUntil).toISOString()}`);
      this.banned.delete(principal);
    }
    const step: Step = { out: [], events: [] };
    const existing = this.members.byPrincipalName(principal);
    if (existing) {
      // A principal holds one membership: a rejoin replaces the old record (and its member key).
      this.members.remove(existing.id);
    } else if (this.members.size >= (this.init.maxMembers ?? 1_000_000)) {
      throw new PolicyError('policy.full', `subgroup is full (${this.members.size} members)`);
    }
    const batching = this.batchWindowMs > 0;
    const record: MemberRecord = {
      id: this.members.allocateId(), principal, role, memberKey: randomKey(), joinedAt: now,
      expiresAt: now + this.ttlMs, entitledUntil: decision.until, pending: batching,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    };
    if (batching) {
      this.members.add(record);
      this.openBatch(now).joins.add(record.id);
    } else {
      const before = this.stats.wraps;
      const prev = this.key;
      const next = this.nextKey();
      const hasOthers = this.members.size > 0;
      this.members.add(record);
      if (hasOthers) {
        const msg = buildJoinKeyUpdate(this.rekeyCtx, prev, next);
        this.emit(step, msg);
        this.rekeyEvent(step, RekeyReason.Join, this.stats.wraps - before, [msg]);
      } else {
        this.rekeyEvent(step, RekeyReason.Join, 0, []);
      }
      this.keepAfterJoin(prev);
    }
    step.events.push({ type: 'join', memberId: record.id, principal, role });
    const grant = this.grantFor(record);
    if (!record.pending) {
      const recipient = { memberId: record.id, principal, role, subtree: role === 'intermediary' ? 0 : 1 };
      for (const k of this.keysFor(record, now)) step.events.push({ type: 'key-delivered', epoch: k.epoch, notBefore: k.notBefore, notAfter: k.notAfter, recipients: [recipient] });
    }
    return { grant, step };
  }

  /** REFRESH (§6.3): extends the soft state, re-checking the ACL; a refused refresh removes the member. */
  refresh(memberId: number, principal: string, report: { subtree?: number } = {}): { expiresAt: number; step: Step } {
    this.assertRunning();
    const r = this.ownRecord(memberId, principal);
    const now = this.clock.now();
    const decision = this.init.admit(principal, r.role, now);
    if (!decision.ok || (decision.until !== null && decision.until <= now)) {
      const step = this.removeMember(memberId, 'entitlement');
      throw Object.assign(new PolicyError('policy.denied', decision.ok ? `entitlement of ${principal} ended` : decision.reason), { step });
    }
    r.entitledUntil = decision.until;
    r.expiresAt = now + this.ttlMs;
    if (report.subtree !== undefined && r.role === 'intermediary') r.subtree = report.subtree;
    return { expiresAt: r.expiresAt, step: { out: [], events: [{ type: 'refresh', memberId, principal, expiresAt: r.expiresAt }] } };
  }

  /** LEAVE (§6.4): one message with {K'}Kmember for each remaining member. */
  leave(memberId: number, principal: string): Step {
    this.ownRecord(memberId, principal);
    return this.removeMember(memberId, 'leave');
  }

  /** Expel (§6.4): like a leave, and never batched: the key changes now. The principal may not rejoin for a while. */
  expel(memberId: number): Step {
    const r = this.members.get(memberId);
    if (!r) throw new UsageError('agent.unknown-member', `no member ${memberId}`);
    this.banned.set(r.principal, this.clock.now() + (this.init.expelBanMs ?? 600_000));
    if (this.banned.size > 100_000) this.banned.delete(this.banned.keys().next().value as string);
    this.rememberGone(memberId, `member ${memberId} was expelled`);
    return this.removeMember(memberId, 'expel');
  }

  /** Lifts an expulsion ban early (admin). */
  pardon(principal: string): boolean {
    return this.banned.delete(principal);
  }

  /** Catch-up over the secure channel: the current subgroup key and group keys. */
  catchUp(memberId: number, principal: string): CatchUpResponse {
    const r = this.ownRecord(memberId, principal);
    if (r.pending) throw new UsageError('agent.pending', 'membership pending the batch rekey');
    return {
      subgroup: { id: this.subgroupId, epoch: this.key.epoch, key: toBase64(this.key.key) },
      groupKeys: this.keysFor(r).map((k) => toBase64(k.announcement)),
      originators: this.groupKeys.originators().map(toBase64),
      expiresAt: r.expiresAt,
    };
  }

  /** Timers: soft-state expiry, entitlements, the batch window, periodic rekey, heartbeats. */
  tick(): Step {
    const step: Step = { out: [], events: [] };
    if (this.ended) return step;
    const now = this.clock.now();
    const gone: [number, RemovalCause][] = [];
    for (const r of this.members.values()) {
      if (r.entitledUntil !== null && r.entitledUntil <= now) gone.push([r.id, 'entitlement']);
      else if (r.expiresAt <= now) gone.push([r.id, 'expire']);
    }
    if (gone.length > 0) {
      // Several expiries found by one tick coalesce into one rekey even without a batch window.
      for (const [id, cause] of gone) this.dropRecord(step, id, cause);
      const reasons = new Set(gone.map(([, c]) => REMOVAL_REASON[c]));
      if (this.batch) for (const r of reasons) this.batch.reasons.add(r);
      else this.rekeyLeaveScheme(step, reasons.size === 1 ? [...reasons][0]! : RekeyReason.Batch);
    }
    if (this.batch && now - this.batch.openedAt >= this.batchWindowMs) this.flushBatch(step);
    const interval = this.rekeyIntervalMs;
    if (interval > 0 && now - this.lastRekeyAt >= interval && !this.batch) this.rekeyLeaveScheme(step, RekeyReason.Periodic);
    if (now - this.lastHeartbeatAt >= this.heartbeatMs) this.emit(step, this.heartbeat());
    return step;
  }

  /**
   * Metering (paper §3, §11): before a group key for an epoch starting at `notBefore` goes
   * out, drop every member whose entitlement does not reach it, with one leave rekey, so they
   * never receive it.
   */
  dropUnentitled(epoch: number, notBefore: number): Step {
    const step: Step = { out: [], events: [] };
    const gone: number[] = [];
    for (const r of this.members.values()) {
      const ended = r.entitledUntil !== null && r.entitledUntil <= notBefore;
      if (ended || (this.init.entitledFor && !this.init.entitledFor(r, epoch, notBefore))) gone.push(r.id);
    }
    if (gone.length === 0) return step;
    for (const id of gone) this.dropRecord(step, id, 'entitlement');
    if (this.batch) this.flushBatch(step, RekeyReason.Expire);
    else this.rekeyLeaveScheme(step, RekeyReason.Expire);
    return step;
  }

  /**
   * The group keys `r` may hold: those whose epoch its entitlement reaches. A joiner (`joinedAt`)
   * gets none whose period ended before it came (a previous key in its grace window): nothing
   * from before its time, and nothing billed that it cannot use.
   */
  private keysFor(r: MemberRecord, joinedAt?: number): { epoch: number; notBefore: number; notAfter: number; announcement: Uint8Array }[] {
    return this.groupKeys.held().filter((k) => (joinedAt === undefined || k.notAfter > joinedAt)
      && (r.entitledUntil === null || r.entitledUntil > k.notBefore)
      && (!this.init.entitledFor || this.init.entitledFor(r, k.epoch, k.notBefore)));
  }

  /** The members a group key reaches now, for the ledger (pending joiners hold no subgroup key yet). */
  keyRecipients(): { memberId: number; principal: string; role: JoinRole; subtree: number }[] {
    const out: { memberId: number; principal: string; role: JoinRole; subtree: number }[] = [];
    for (const r of this.members.values()) {
      if (!r.pending) out.push({ memberId: r.id, principal: r.principal, role: r.role, subtree: r.role === 'intermediary' ? (r.subtree ?? 0) : 1 });
    }
    return out;
  }

  /** How many members the whole subtree below this agent holds (an intermediary reports it up). */
  subtreeSize(): number {
    let n = 0;
    for (const r of this.members.values()) n += r.role === 'intermediary' ? (r.subtree ?? 0) : 1;
    return n;
  }

  /** A periodic-style rekey on demand (admin). */
  rekeyNow(): Step {
    const step: Step = { out: [], events: [] };
    if (this.batch) this.flushBatch(step);
    else this.rekeyLeaveScheme(step, RekeyReason.Periodic);
    return step;
  }

  heartbeat(): Uint8Array {
    this.lastHeartbeatAt = this.clock.now();
    return encodeHeartbeat(this.header(MessageType.Heartbeat), { groupEpoch: this.groupKeys.epoch(), intervalMs: this.heartbeatMs }, (c) => this.sign(c));
  }

  /** GRP_END (§6.7), signed; the agent accepts nothing afterwards. */
  end(reason: EndReason = EndReason.Shutdown): Step {
    const step: Step = { out: [], events: [{ type: 'end' }] };
    if (this.ended) return { out: [], events: [] };
    this.emit(step, encodeGroupEnd(this.header(MessageType.GroupEnd), { reason }, (c) => this.sign(c)));
    this.ended = true;
    return step;
  }

  emit(step: Step, bytes: Uint8Array): void {
    this.stats.messagesOut++;
    this.stats.bytesOut += bytes.length;
    step.out.push({ kind: 'subgroup', bytes });
  }

  private removeMember(memberId: number, cause: RemovalCause): Step {
    const step: Step = { out: [], events: [] };
    this.dropRecord(step, memberId, cause);
    const reason = REMOVAL_REASON[cause];
    if (cause !== 'expel' && this.batchWindowMs > 0) {
      this.openBatch(this.clock.now()).reasons.add(reason);
    } else if (this.batch) {
      this.flushBatch(step, reason);
    } else {
      this.rekeyLeaveScheme(step, reason);
    }
    return step;
  }

  private dropRecord(step: Step, memberId: number, cause: RemovalCause): void {
    const r = this.members.remove(memberId);
    if (!r) return;
    if (cause === 'entitlement') this.rememberGone(memberId, `entitlement of ${r.principal} ended`);
    this.batch?.joins.delete(memberId);
    step.events.push({ type: 'remove', memberId, principal: r.principal, role: r.role, cause });
  }

  private openBatch(now: number) {
    this.batch ??= { openedAt: now, joins: new Set(), reasons: new Set() };
    return this.batch;
  }

  /** Ends the batch window with one rekey covering every change inside it. */
  private flushBatch(step: Step, forced?: RekeyReason): void {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    for (const id of b.joins) {
      const r = this.members.get(id);
      if (r) r.pending = false;
    }
    if (b.reasons.size > 0) {
      // Someone left: only the leave scheme keeps the new key from them. Joiners are recipients too.
      this.rekeyLeaveScheme(step, forced ?? (b.reasons.size === 1 ? [...b.reasons][0]! : RekeyReason.Batch));
      return;
    }
    if (b.joins.size === 0) return;
    // Joins only: {K'}K to those who held K, and K' to each joiner under its member key.
    const before = this.stats.wraps;
    const prev = this.key;
    const next = this.nextKey();
    const msgs: Uint8Array[] = [];
    if (this.members.size > b.joins.size) msgs.push(buildJoinKeyUpdate(this.rekeyCtx, prev, next));
    const joiners = [...b.joins].sort((x, y) => x - y).flatMap((id) => {
      const r = this.members.get(id);
      return r ? [{ id, memberKey: r.memberKey }] : [];
    });
    msgs.push(...buildLeaveKeyUpdate(this.rekeyCtx, next, joiners, RekeyReason.Join, true));
    for (const m of msgs) this.emit(step, m);
    this.rekeyEvent(step, RekeyReason.Batch, this.stats.wraps - before, msgs);
    this.keepAfterJoin(prev);
  }

  /** The leave scheme (§6.4, §6.6): a fresh key wrapped for each remaining member. */
  private rekeyLeaveScheme(step: Step, reason: RekeyReason): void {
    const before = this.stats.wraps;
    const prev = this.key;
    const next = this.nextKey();
    const recipients: { id: number; memberKey: Uint8Array }[] = [];
    for (const r of this.members.values()) {
      r.pending = false;
      recipients.push({ id: r.id, memberKey: r.memberKey });
    }
    const msgs = buildLeaveKeyUpdate(this.rekeyCtx, next, recipients, reason);
    for (const m of msgs) this.emit(step, m);
    this.rekeyEvent(step, reason, this.stats.wraps - before, msgs);
    wipe(prev.key);
    this.keepAfterJoin(undefined);
  }

  private keepAfterJoin(prev: SubgroupKey | undefined): void {
    if (this.previousAfterJoin && this.previousAfterJoin !== prev) wipe(this.previousAfterJoin.key);
    this.previousAfterJoin = prev;
  }

  /** The subgroup key of `epoch` if data under it is acceptable: the current one, or the one a join replaced. */
  keyForEpoch(epoch: number): Uint8Array | undefined {
    if (epoch === this.key.epoch) return this.key.key;
    if (epoch === this.previousAfterJoin?.epoch) return this.previousAfterJoin.key;
    return undefined;
  }

  private nextKey(): SubgroupKey {
    this.key = { epoch: this.key.epoch + 1, key: randomKey() };
    this.lastRekeyAt = this.clock.now();
    return this.key;
  }

  private rekeyEvent(step: Step, reason: RekeyReason, wraps: number, msgs: Uint8Array[]): void {
    this.stats.countRekey(reason);
    step.events.push({
      type: 'rekey', reason, epoch: this.key.epoch, wraps, messages: msgs.length,
      bytes: msgs.reduce((n, m) => n + m.length, 0), members: this.members.size,
    });
  }

  private grantFor(r: MemberRecord): JoinGrant {
    return {
      version: API_VERSION,
      group: this.group,
      memberId: r.id,
      memberKey: toBase64(r.memberKey),
      subgroup: r.pending
        ? { id: this.subgroupId, epoch: this.key.epoch }
        : { id: this.subgroupId, epoch: this.key.epoch, key: toBase64(this.key.key) },
      agent: { name: this.name, publicKey: toBase64(this.publicKey) },
      originators: this.groupKeys.originators().map(toBase64),
      expiresAt: r.expiresAt,
      refreshMs: this.refreshMs,
      heartbeatMs: this.heartbeatMs,
      transport: this.transport,
      groupKeys: r.pending ? [] : this.keysFor(r, r.joinedAt).map((k) => toBase64(k.announcement)),
      ...(this.groupKeys.policy() ? { groupKeyPolicy: this.groupKeys.policy()! } : {}),
    };
  }

  /** The record of `memberId`, which must belong to `principal` (a member acts only for itself). */
  private ownRecord(memberId: number, principal: string): MemberRecord {
    const r = this.members.get(memberId);
    const why = r ? undefined : this.gone.get(memberId);
    if (why) throw new PolicyError('policy.removed', why);
    if (!r) throw new UsageError('agent.unknown-member', `no member ${memberId}`);
    if (r.principal !== principal) throw new PolicyError('policy.not-yours', `member ${memberId} is not ${principal}`);
    return r;
  }

  private assertRunning(): void {
    if (this.ended) throw new UsageError('agent.ended', 'the group has ended');
  }
}
