/**
 * Member: a sender/receiver in one subgroup (paper §6), as a pure state machine. It holds its
 * member key (KGSA-MBR), the subgroup key (KSGRP) and its agent's public key, and for each
 * datagram decides: verify the agent's signature, refuse replays and stale epochs, take a new
 * subgroup key, detect gaps (a heartbeat ahead of what it holds) and ask for catch-up, deliver
 * data exactly once.
 */
import { unwrapKey } from '../crypto/aead.js';
import { fromBase64, wipe } from '../crypto/bytes.js';
import { verifyBytes } from '../crypto/sign.js';
import { CryptoVerificationError, IolusError, UsageError } from '../errors.js';
import type { Outbound } from '../protocol/outbound.js';
import { encodeDataUnit, hopWindowKey, openDataUnit, originKey, sealDataUnit, unwrapDataUnit, type DataUnit } from '../protocol/dataUnit.js';
import { RecentSet } from './recentSet.js';
import type { Clock } from '../util/clock.js';
import { SequenceCounter } from '../util/sequence.js';
import type { CatchUpResponse, JoinGrant } from '../wire/control.js';
import { ContentType, type Origin } from '../wire/data.js';
import { AGENT_SENDER, groupIdFor, MessageType, SUITE_AES256GCM_ED25519, WIRE_VERSION, type Frame, type Header } from '../wire/header.js';
import { findLeaveEntry, leaveEntryAad, RekeyReason, type LeaveKeyUpdate } from '../wire/keyUpdate.js';
import { decodeMessage, type Message } from '../wire/message.js';
import { ReplayWindows } from './replayWindow.js';

export type DataMethod = 1 | 2;

export type MemberEvent =
  /** `payload` is absent when the member relays application data it does not consume (an intermediary's uplink). */
  | { type: 'data'; contentType: ContentType; origin: Origin; payload?: Uint8Array; method: DataMethod; unit: DataUnit }
  | { type: 'subgroup-key'; epoch: number; reason: RekeyReason | 'grant' | 'catch-up' }
  | { type: 'catch-up'; why: 'subgroup-epoch' | 'group-epoch' | 'missing-key' }
  /** A complete leave-scheme update without our entry: the agent removed us. */
  | { type: 'removed'; epoch: number }
  | { type: 'heartbeat'; epoch: number; groupEpoch: number }
  | { type: 'end' }
  | { type: 'dropped'; cause: string };

interface HeldKey {
  epoch: number;
  key: Uint8Array;
}

export class Member {
  readonly groupId: Uint8Array;
  memberId = 0;
  subgroupId = 0;
  private memberKey: Uint8Array | undefined;
  private agentPublicKey: Uint8Array | undefined;
  private key: HeldKey | undefined;
  private previousAfterJoin: HeldKey | undefined;
  private readonly windows = new ReplayWindows<string>();
  private readonly origins = new RecentSet();
  private readonly seq: SequenceCounter;
  private leaveParts: { epoch: number; seen: Set<number>; parts: number } | undefined;
  private ended = false;
  /** Newest KGRP2 epoch the owner holds; a heartbeat above it means an announcement was missed. */
  heldGroupEpoch = 0;
  grant: JoinGrant | undefined;

  /**
   * `relayOnly`: do not open application payloads, only authenticate the data key (an
   * intermediary forwards them; its members open them). Group-key announcements are opened.
   */
  constructor(readonly group: string, private readonly clock: Clock, private readonly opts: { relayOnly?: boolean } = {}) {
    this.groupId = groupIdFor(group);
    this.seq = new SequenceCounter(clock);
  }

  get epoch(): number {
    return this.key?.epoch ?? 0;
  }
  get hasKey(): boolean {
    return this.key !== undefined;
  }
  get isJoined(): boolean {
    return this.memberKey !== undefined && !this.ended;
  }
  get isEnded(): boolean {
    return this.ended;
  }
  /** For tests of containment: the subgroup key this member holds. */
  get subgroupKey(): Uint8Array | undefined {
    return this.key?.key;
  }

  /** Takes what the agent sent over the secure channel at JOIN. */
  acceptGrant(grant: JoinGrant): MemberEvent[] {
    if (grant.group !== this.group) throw new UsageError('member.group', `grant for ${grant.group}, not ${this.group}`);
    this.forget();
    this.grant = grant;
    this.memberId = grant.memberId;
    this.subgroupId = grant.subgroup.id;
    this.memberKey = fromBase64(grant.memberKey);
    this.agentPublicKey = fromBase64(grant.agent.publicKey);
    this.ended = false;
    if (grant.subgroup.key === undefined) return [];
    this.key = { epoch: grant.subgroup.epoch, key: fromBase64(grant.subgroup.key) };
    return [{ type: 'subgroup-key', epoch: grant.subgroup.epoch, reason: 'grant' }];
  }

  /** Takes the state fetched over the secure channel after a gap. */
  applyCatchUp(state: CatchUpResponse): MemberEvent[] {
    if (!this.memberKey) throw new UsageError('member.not-joined', 'not joined');
    if (state.subgroup.id !== this.subgroupId || state.subgroup.epoch < this.epoch) return [];
    if (state.subgroup.epoch === this.epoch) return [];
    this.setKey({ epoch: state.subgroup.epoch, key: fromBase64(state.subgroup.key) }, false);
    return [{ type: 'subgroup-key', epoch: state.subgroup.epoch, reason: 'catch-up' }];
  }

  /** Forgets every key (after a leave or removal). */
  forget(): void {
    wipe(this.memberKey);
    if (this.key) wipe(this.key.key);
    if (this.previousAfterJoin) wipe(this.previousAfterJoin.key);
    this.memberKey = undefined;
    this.key = undefined;
    this.previousAfterJoin = undefined;
    this.leaveParts = undefined;
  }

  /** One datagram from the subgroup. Never throws on what the network sends. */
  receive(bytes: Uint8Array): MemberEvent[] {
    if (!this.memberKey || this.ended) return [{ type: 'dropped', cause: 'not-joined' }];
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch (err) {
      return [{ type: 'dropped', cause: err instanceof IolusError ? 'malformed' : 'malformed' }];
    }
    const h = m.frame.header;
    if (h.subgroup !== this.subgroupId || !equalBytes(h.group, this.groupId)) return [{ type: 'dropped', cause: 'wrong-subgroup' }];
    if (m.frame.signed) {
      if (h.sender !== AGENT_SENDER) return [{ type: 'dropped', cause: 'bad-signature' }];
      if (!verifyBytes(this.agentPublicKey!, m.frame.signed.covered, m.frame.signed.signature)) return [{ type: 'dropped', cause: 'bad-signature' }];
    }
    const wkey = hopWindowKey(m.frame.signed !== undefined, h.sender, h.epoch);
    if (this.windows.check(wkey, h.sequence) !== 'new') return [{ type: 'dropped', cause: 'replay' }];
    try {
      const events = this.dispatch(m);
      // Only authenticated messages move the window (dispatch throws on a bad tag).
      this.windows.accept(wkey, h.sequence);
      return events;
    } catch (err) {
      if (err instanceof CryptoVerificationError) return [{ type: 'dropped', cause: 'bad-auth' }];
      throw err;
    }
  }

  private dispatch(m: Message): MemberEvent[] {
    const h = m.frame.header;
    switch (m.type) {
      case MessageType.JoinKeyUpdate: {
        if (h.epoch <= this.epoch) return [{ type: 'dropped', cause: 'stale' }];
        if (!this.key) return []; // a joiner in a batch gets K' in its own entry
        if (m.body.prevEpoch !== this.key.epoch) return [{ type: 'catch-up', why: 'subgroup-epoch' }];
        const next = unwrapKey(this.key.key, m.body.wrapped, m.frame.headerBytes);
        this.setKey({ epoch: h.epoch, key: next }, true);
        return [{ type: 'subgroup-key', epoch: h.epoch, reason: RekeyReason.Join }];
      }
      case MessageType.LeaveKeyUpdate:
        return this.onLeaveKeyUpdate(m.frame, m.body);
      case MessageType.Heartbeat: {
        const events: MemberEvent[] = [{ type: 'heartbeat', epoch: h.epoch, groupEpoch: m.body.groupEpoch }];
        if (h.epoch > this.epoch) events.push({ type: 'catch-up', why: this.key ? 'subgroup-epoch' : 'missing-key' });
        else if (m.body.groupEpoch > this.heldGroupEpoch) events.push({ type: 'catch-up', why: 'group-epoch' });
        return events;
      }
      case MessageType.DataMethod1:
      case MessageType.DataMethod2: {
        if (h.sender === this.memberId && m.type === MessageType.DataMethod1 && h.sender !== AGENT_SENDER) return [];
        // Group keys come from the agent (after its entitlement sweep), never from a peer.
        if (m.body.contentType === ContentType.GroupKey && h.sender !== AGENT_SENDER) return [{ type: 'dropped', cause: 'group-key-from-peer' }];
        const kek = this.keyForEpoch(h.epoch);
        if (!kek) {
          if (h.epoch > this.epoch) return [{ type: 'dropped', cause: 'future-epoch' }, { type: 'catch-up', why: 'subgroup-epoch' }];
          return [{ type: 'dropped', cause: 'stale' }];
        }
        const unit = unwrapDataUnit(m.frame, m.body, kek);
        // Relaying, the data key's tag (under the subgroup key) is the authentication that
        // matters; the payload is checked by whoever opens it (§6.5: never touch the payload).
        const open = !this.opts.relayOnly || unit.contentType !== ContentType.Application;
        const payload = open ? openDataUnit(this.groupId, unit) : undefined;
        if (!this.origins.add(originKey(unit.origin), this.clock.now())) return [{ type: 'dropped', cause: 'duplicate' }];
        const method: DataMethod = m.type === MessageType.DataMethod2 ? 2 : 1;
        return [payload ? { type: 'data', contentType: unit.contentType, origin: unit.origin, payload, method, unit } : { type: 'data', contentType: unit.contentType, origin: unit.origin, method, unit }];
      }
      case MessageType.DataUp:
        return [{ type: 'dropped', cause: 'not-for-members' }];
      case MessageType.GroupEnd:
        this.ended = true;
        return [{ type: 'end' }];
    }
  }

  private onLeaveKeyUpdate(f: Frame, u: LeaveKeyUpdate): MemberEvent[] {
    const epoch = f.header.epoch;
    if (epoch <= this.epoch) return []; // another part of an update we already have
    const mine = findLeaveEntry(u, this.memberId);
    if (mine) {
      const next = unwrapKey(this.memberKey!, mine.wrapped, leaveEntryAad(f.headerBytes, this.memberId));
      this.setKey({ epoch, key: next }, false);
      return [{ type: 'subgroup-key', epoch, reason: u.reason }];
    }
    if (u.partial) return [];
    if (!this.leaveParts || this.leaveParts.epoch !== epoch) this.leaveParts = { epoch, seen: new Set(), parts: u.parts };
    this.leaveParts.seen.add(u.part);
    if (this.leaveParts.seen.size < this.leaveParts.parts) return [];
    // Every part of a complete update, and none for us: we were removed (§6.4).
    this.forget();
    return [{ type: 'removed', epoch }];
  }

  private setKey(next: HeldKey, byJoin: boolean): void {
    if (this.previousAfterJoin) wipe(this.previousAfterJoin.key);
    this.previousAfterJoin = undefined;
    if (this.key) {
      if (byJoin) this.previousAfterJoin = this.key;
      else wipe(this.key.key);
    }
    this.key = next;
    this.leaveParts = undefined;
  }

  private keyForEpoch(epoch: number): Uint8Array | undefined {
    if (this.key?.epoch === epoch) return this.key.key;
    if (this.previousAfterJoin?.epoch === epoch) return this.previousAfterJoin.key;
    return undefined;
  }

  private header(type: MessageType.DataMethod1 | MessageType.DataUp): Header & { type: typeof type } {
    return {
      version: WIRE_VERSION, suite: SUITE_AES256GCM_ED25519, type, group: this.groupId, subgroup: this.subgroupId,
      sender: this.memberId, epoch: this.epoch, sequence: this.seq.next(), timestamp: this.clock.now(),
    };
  }

  /** Sends data: method 1 multicasts under the subgroup key, method 2 goes to the agent under the member key. */
  send(payload: Uint8Array, method: DataMethod = 1, contentType = ContentType.Application): Outbound {
    const origin: Origin = { subgroup: this.subgroupId, member: this.memberId, seq: this.seq.next() };
    return this.forward(sealDataUnit(this.groupId, contentType, origin, payload), method);
  }

  /** Sends a unit (ours or one an intermediary forwards up), rewrapping only its data key. */
  forward(unit: DataUnit, method: DataMethod): Outbound {
    if (!this.memberKey) throw new UsageError('member.not-joined', 'not joined');
    this.origins.add(originKey(unit.origin), this.clock.now());
    if (method === 2) {
      return { kind: 'agent', bytes: encodeDataUnit(this.header(MessageType.DataUp), unit, this.memberKey, noop) };
    }
    if (!this.key) throw new UsageError('member.no-key', 'no subgroup key yet');
    return { kind: 'subgroup', bytes: encodeDataUnit(this.header(MessageType.DataMethod1), unit, this.key.key, noop) };
  }
}

function noop(): void {}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
