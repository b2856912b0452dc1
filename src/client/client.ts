/**
 * The member client library (paper §9: send(), receive(), getkey()): joins a group over mutual
 * TLS, listens on its subgroup's transport, refreshes, catches up on gaps, sends and receives
 * data (both methods), and leaves. A rejoin happens by itself when the agent forgot us (it
 * restarted); an expulsion or a refused entitlement ends the session.
 */
import { EventEmitter } from 'node:events';
import { ControlClient, ControlError } from './controlClient.js';
import { Member, type DataMethod, type MemberEvent } from './member.js';
import { openUplinkTransport, prepareUplink } from './uplink.js';
import { MemberKeys } from './memberKeys.js';
import type { DerivedKey } from './keyMaterial.js';
import type { HeldGroupKey } from './groupKeyRing.js';
import { deriveKey } from './keyMaterial.js';
import { UsageError } from '../errors.js';
import type { TlsMaterial } from '../pki/tlsOptions.js';
import type { MemberTransport } from '../transport/types.js';
import { systemClock } from '../util/clock.js';
import { createLogger, type Logger } from '../util/log.js';
import { ContentType, type Origin } from '../wire/data.js';
import type { JoinGrant } from '../wire/control.js';

export interface ConnectOptions {
  group: string;
  /** The agent's control-plane URL (https://host:port). */
  agent: string;
  tls: TlsMaterial;
  role?: 'member' | 'originator';
  /** The address the agent should send datagrams to (unicast fan-out). Default: the one the route to the agent picks. */
  localHost?: string;
  logger?: Logger;
  /** How long to keep retrying a rejoin before giving up (ms). */
  rejoinForMs?: number;
  /** Role originator: the Ed25519 public key its KGRP2 announcements are signed with. */
  originatorKey?: Uint8Array;
  /** Finds the agent to rejoin at when ours is gone or unreachable (src/discovery/resolver). */
  relocate?: (why: string) => Promise<string>;
}

export interface Delivery {
  payload: Uint8Array;
  origin: Origin;
  method: DataMethod;
  contentType: ContentType;
}

export type ClientState = 'joined' | 'rejoining' | 'removed' | 'ended' | 'left';

/** What `getKey` returns and `key` events carry: derived material, never KGRP2 itself. */
export interface KeyInfo extends DerivedKey {
  /** 'previous' (inside its grace window), 'current' or 'next', at the time of the call. */
  state: 'previous' | 'current' | 'next';
}

/**
 * Events: `data` (Delivery), `subgroup-key` (epoch), `state` (ClientState, reason), `group-data`
 * (content type GroupKey deliveries, for the group key ring), `error`.
 */
export class GroupClient extends EventEmitter {
  readonly member: Member;
  readonly keys: MemberKeys;
  private transport: MemberTransport | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastHeartbeat = Date.now();
  private catchUpRunning = false;
  private catchUpAgain = false;
  private state: ClientState = 'rejoining';
  private readonly queue: Delivery[] = [];
  private readonly waiters: ((d: IteratorResult<Delivery>) => void)[] = [];
  private readonly log: Logger;
  /**
   * Derived keys per held epoch and label: HKDF runs once per (epoch, label), not per getKey.
   * Keyed by the ring's entry, so a voided, expired or pruned epoch never answers from here.
   */
  private readonly derivedCache = new WeakMap<HeldGroupKey, Map<string, DerivedKey>>();

  private constructor(readonly opts: ConnectOptions, public control: ControlClient) {
    super();
    this.member = new Member(opts.group, systemClock);
    this.keys = new MemberKeys(this.member);
    this.log = opts.logger ?? createLogger('client', { group: opts.group });
  }

  static async connect(opts: ConnectOptions): Promise<GroupClient> {
    const control = new ControlClient({ url: opts.agent, group: opts.group, tls: opts.tls });
    const c = new GroupClient(opts, control);
    try {
      await c.join();
    } catch (err) {
      control.close();
      throw err;
    }
    return c;
  }

  get status(): ClientState {
    return this.state;
  }

  get grant(): JoinGrant | undefined {
    return this.member.grant;
  }

  private async join(): Promise<void> {
    const pre = await prepareUplink(this.control.url.hostname.replace(/^\[|\]$/g, ''), this.opts.localHost, this.log);
    let grant: JoinGrant;
    try {
      grant = await this.control.join({
        role: this.opts.role ?? 'member', endpoint: pre.endpoint,
        ...(this.opts.originatorKey ? { originatorKey: Buffer.from(this.opts.originatorKey).toString('base64') } : {}),
      });
    } catch (err) {
      await pre.unicast.stop();
      throw err;
    }
    await this.closeTransport();
    this.handle(this.member.acceptGrant(grant));
    this.afterKeys(this.keys.onGrant(grant));
    this.transport = await openUplinkTransport(grant, pre, this.control, this.log);
    this.transport.onDatagram((b) => this.handle(this.member.receive(b)));
    this.setState('joined', `member ${grant.memberId} of subgroup ${grant.subgroup.id}`);
    this.lastHeartbeat = Date.now();
    this.emit('grant', grant);
    this.armTimers(grant);
    // A batch window may hold our key back: fetch it once the window is likely over.
    if (!this.member.hasKey) this.catchUpSoon(grant.heartbeatMs);
  }

  private armTimers(grant: JoinGrant): void {
    clearInterval(this.refreshTimer);
    clearInterval(this.watchdog);
    this.refreshTimer = setInterval(() => void this.refresh(), grant.refreshMs);
    this.refreshTimer.unref();
    // Silence for three heartbeats: ask the agent directly (it may have restarted).
    this.watchdog = setInterval(() => {
      if (Date.now() - this.lastHeartbeat > 3 * grant.heartbeatMs) {
        this.lastHeartbeat = Date.now();
        void this.refresh();
      }
    }, grant.heartbeatMs);
    this.watchdog.unref();
  }

  private async refresh(): Promise<void> {
    if (this.state !== 'joined') return;
    try {
      await this.control.refresh(this.member.memberId);
    } catch (err) {
      if (err instanceof ControlError && err.status === 404) return this.rejoin('the agent no longer knows us');
      if (err instanceof ControlError && err.status === 403) return this.end('removed', err.message);
      if (this.opts.relocate && err instanceof ControlError && err.status === 0) return this.rejoin(`agent unreachable: ${err.message}`);
      this.log.warn({ err: (err as Error).message }, 'refresh failed; will retry');
    }
  }

  private async rejoin(why: string): Promise<void> {
    if (this.state === 'rejoining' || this.state === 'left') return;
    this.setState('rejoining', why);
    const deadline = Date.now() + (this.opts.rejoinForMs ?? 300_000);
    let wait = 250;
    while (this.status === 'rejoining' && Date.now() < deadline) {
      try {
        if (this.opts.relocate) this.moveTo(await this.opts.relocate(why));
        await this.join();
        return;
      } catch (err) {
        if (err instanceof ControlError && err.status === 403) return this.end('removed', err.message);
        this.log.warn({ err: (err as Error).message, retryMs: wait }, 'rejoin failed');
        await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random() / 2)));
        wait = Math.min(wait * 2, 10_000);
      }
    }
    if (this.status === 'rejoining') await this.end('removed', 'could not rejoin');
  }

  /** Discovery saw our agent leave (mDNS goodbye, directory expiry): rejoin wherever `relocate` says. */
  agentGone(why: string): void {
    if (this.state === 'joined') void this.rejoin(why);
  }

  private moveTo(url: string): void {
    if (new URL(url).origin === this.control.url.origin) return;
    this.log.info({ event: 'relocate', from: this.control.url.origin, to: url }, 'moving to another agent');
    this.control.close();
    this.control = new ControlClient({ url, group: this.opts.group, tls: this.opts.tls });
  }

  private handle(events: MemberEvent[]): void {
    for (const e of events) {
      switch (e.type) {
        case 'data': {
          const d: Delivery = { payload: e.payload!, origin: e.origin, method: e.method, contentType: e.contentType };
          if (e.contentType === ContentType.GroupKey) {
            const v = this.keys.onAnnouncement(d.payload);
            if (!v.ok && v.cause === 'unknown-originator') void this.catchUp(); // an originator that joined after us
            this.afterKeys([v]);
          } else this.deliver(d);
          break;
        }
        case 'subgroup-key':
          this.emit('subgroup-key', e.epoch);
          break;
        case 'heartbeat':
          this.lastHeartbeat = Date.now();
          this.emit('heartbeat', e);
          break;
        case 'catch-up':
          this.emit('gap', e.why);
          void this.catchUp();
          break;
        case 'removed':
          void this.end('removed', `subgroup rekeyed at epoch ${e.epoch} without us`);
          break;
        case 'end':
          void this.end('ended', 'GRP_END from the agent');
          break;
        case 'dropped':
          this.emit('dropped', e.cause);
          break;
      }
    }
  }

  private catchUpSoon(ms: number): void {
    setTimeout(() => void this.catchUp(), ms).unref();
  }

  /** One catch-up at a time; requests arriving meanwhile coalesce into one more. */
  async catchUp(): Promise<void> {
    if (this.catchUpRunning) {
      this.catchUpAgain = true;
      return;
    }
    this.catchUpRunning = true;
    try {
      do {
        this.catchUpAgain = false;
        if (this.state !== 'joined') return;
        try {
          const state = await this.control.state(this.member.memberId);
          this.handle(this.member.applyCatchUp(state));
          this.afterKeys(this.keys.onCatchUp(state));
          this.emit('catch-up', state);
        } catch (err) {
          if (err instanceof ControlError && err.status === 409) this.catchUpSoon(500);
          else if (err instanceof ControlError && err.status === 404) void this.rejoin('catch-up: the agent no longer knows us');
          else if (err instanceof ControlError && err.status === 403) void this.end('removed', err.message);
          else this.log.warn({ err: (err as Error).message }, 'catch-up failed');
        }
      } while (this.catchUpAgain);
    } finally {
      this.catchUpRunning = false;
    }
  }

  /** Emits `key` (the epoch and its validity, no key bytes) for each epoch newly held. */
  private afterKeys(verdicts: { ok: boolean; fresh?: boolean; epoch?: number }[]): void {
    for (const v of verdicts) {
      if (!v.ok || !v.fresh || v.epoch === undefined) continue;
      const k = this.keys.ring.byEpoch(v.epoch);
      if (k) this.emit('key', { epoch: k.epoch, notBefore: k.notBefore, notAfter: k.notAfter, graceMs: k.graceMs });
    }
  }

  /**
   * getkey() (paper §9): the key derived for `label` from the group key in force now, or of
   * `epoch`, or 'next' / 'previous'. Undefined when no such key is held.
   */
  getKey(opts: { label: string; epoch?: number | 'current' | 'next' | 'previous' }, now = Date.now()): KeyInfo | undefined {
    const h = this.heldKey(opts.epoch ?? 'current', now);
    return h && { ...this.derive(h.key, opts.label), state: h.state };
  }

  /** Which group key `epoch` names at `now`, and its state; no derivation, nothing copied. */
  heldKey(epoch: number | 'current' | 'next' | 'previous', now = Date.now()): { key: HeldGroupKey; state: KeyInfo['state'] } | undefined {
    const ring = this.keys.ring;
    let k: HeldGroupKey | undefined;
    if (epoch === 'current') k = ring.current(now);
    else if (epoch === 'next') k = ring.next(now);
    else if (epoch === 'previous') k = ring.previous(now);
    else k = ring.byEpoch(epoch);
    if (!k || now >= k.notAfter + k.graceMs) return undefined;
    return { key: k, state: now < k.notBefore ? 'next' : now < k.notAfter ? 'current' : 'previous' };
  }

  /** Every usable key for `label` (previous in grace, current, next), oldest first. */
  keysFor(label: string, now = Date.now()): DerivedKey[] {
    return this.keys.ring.usable(now).map((k) => this.derive(k, label));
  }

  /** The key derived for `label` from `k`, from the cache; the caller gets its own copy of the bytes (it may wipe them). */
  private derive(k: HeldGroupKey, label: string): DerivedKey {
    let byLabel = this.derivedCache.get(k);
    if (!byLabel) {
      byLabel = new Map();
      this.derivedCache.set(k, byLabel);
    }
    let d = byLabel.get(label);
    if (!d) {
      d = deriveKey(k, label);
      if (byLabel.size < 64) byLabel.set(label, d);
    }
    return { ...d, key: new Uint8Array(d.key), mki: new Uint8Array(d.mki) };
  }

  private deliver(d: Delivery): void {
    const w = this.waiters.shift();
    if (w) w({ value: d, done: false });
    else {
      this.queue.push(d);
      if (this.queue.length > 10_000) this.queue.shift(); // a reader that does not read loses the oldest
    }
    this.emit('data', d);
  }

  /** Sends application data to the whole group (method 1 by default). */
  send(payload: Uint8Array | string, method: DataMethod = 1, contentType = ContentType.Application): void {
    if (this.state !== 'joined' || !this.transport) throw new UsageError('client.not-joined', `cannot send while ${this.state}`);
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
    const o = this.member.send(bytes, method, contentType);
    if (o.kind === 'agent') this.transport.sendAgent(o.bytes);
    else if (o.kind === 'subgroup') this.transport.sendSubgroup(o.bytes);
  }

  /** Data from the group as it arrives, until the session ends. */
  async *receive(): AsyncGenerator<Delivery> {
    for (;;) {
      const q = this.queue.shift();
      if (q) {
        yield q;
        continue;
      }
      if (this.state === 'left' || this.state === 'removed' || this.state === 'ended') return;
      const r = await new Promise<IteratorResult<Delivery>>((resolve) => this.waiters.push(resolve));
      if (r.done) return;
      yield r.value;
    }
  }

  /** LEAVE (§6.4), then close everything. */
  async leave(): Promise<void> {
    const id = this.member.memberId;
    const wasJoined = this.state === 'joined';
    await this.end('left', 'leave');
    if (wasJoined) await this.control.leave(id).catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'leave failed'));
    this.control.close();
  }

  /** Closes without telling the agent (it will expire us). */
  async close(): Promise<void> {
    await this.end('left', 'closed');
    this.control.close();
  }

  private setState(s: ClientState, why: string): void {
    this.state = s;
    this.log.info({ event: 'state', state: s, why }, `member ${s}`);
    this.emit('state', s, why);
  }

  private async end(s: 'removed' | 'ended' | 'left', why: string): Promise<void> {
    // Removed, ended and left are final: a close() after removal must not relabel it 'left'.
    if (this.status === 'left' || this.status === 'removed' || this.status === 'ended') return;
    this.setState(s, why);
    clearInterval(this.refreshTimer);
    clearInterval(this.watchdog);
    await this.closeTransport();
    this.member.forget();
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  private async closeTransport(): Promise<void> {
    const t = this.transport;
    this.transport = undefined;
    await t?.stop();
  }
}
