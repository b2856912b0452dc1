/**
 * SapAnnouncer: repeats each session's announcement on the SAP group at the RFC 2974 §3.1 pace
 * (interval.ts), with the reconsideration step of §3.1 (at tn the time is recomputed and the
 * packet sent only if the new tn has passed), announces a changed description at once under a
 * new message identifier hash after a deletion of the old version (§6: "a session deletion
 * message SHOULD be sent for the old version"), and sends a deletion when a session ends or the
 * announcer stops (§4, explicit deletion).
 *
 * Not done: listening to other announcers to count their sessions (the interval counts ours
 * only), authentication headers (§8), IPv6 SAP groups.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../util/log.js';
import { silentLogger } from '../../util/log.js';
import { encodeSapPacket, SDP_MIME } from './packet.js';
import { baseIntervalMs, nextTransmission, RFC_MIN_INTERVAL_MS, DEFAULT_BANDWIDTH_BPS } from './interval.js';

/** Where packets go: a UDP socket on the SAP group (socket.ts), or a fake in tests. */
export interface SapSender {
  send(packet: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface SapAnnouncerInit {
  /** The announcer's address (SAP originating source). */
  origin: string;
  /** bit/s for all announcements on the group. */
  bandwidth?: number;
  /** Floor of the interval (ms); RFC 2974 says 300 s. */
  minIntervalMs?: number;
  /** A changed session is re-announced at most this often (ms). */
  minChangeGapMs?: number;
}

export interface SapAnnouncerComponents {
  sender: SapSender;
  logger?: Logger;
  random?: () => number;
  now?: () => number;
}

export interface SapAnnouncerStats {
  announcements: number;
  deletions: number;
  sendErrors: number;
}

interface Session {
  key: string;
  payload: string;
  originLine: string;
  msgIdHash: number;
  bytes: number;
  /** Last transmission. */
  tp: number;
  /** New or changed: goes out when the timer fires, without reconsideration. */
  urgent: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class SapAnnouncer {
  readonly stats: SapAnnouncerStats = { announcements: 0, deletions: 0, sendErrors: 0 };
  private readonly sessions = new Map<string, Session>();
  private readonly hashes = new Set<number>();
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly bandwidth: number;
  private readonly minIntervalMs: number;
  private readonly minChangeGapMs: number;
  private stopped = false;

  constructor(private readonly init: SapAnnouncerInit, private readonly components: SapAnnouncerComponents) {
    this.log = components.logger ?? silentLogger();
    this.random = components.random ?? Math.random;
    this.now = components.now ?? Date.now;
    this.bandwidth = init.bandwidth ?? DEFAULT_BANDWIDTH_BPS;
    this.minIntervalMs = init.minIntervalMs ?? RFC_MIN_INTERVAL_MS;
    this.minChangeGapMs = init.minChangeGapMs ?? 1000;
  }

  /** The base interval now (ms), from our sessions' count and mean size. */
  get intervalMs(): number {
    const list = [...this.sessions.values()];
    const mean = list.length === 0 ? 0 : list.reduce((n, s) => n + s.bytes, 0) / list.length;
    return baseIntervalMs(list.length, mean, this.bandwidth, this.minIntervalMs);
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * Announces `payload` (an SDP description whose o= line is `originLine`) as session `key`: at
   * once if new or changed, then periodically. An unchanged payload changes nothing.
   */
  set(key: string, payload: string, originLine: string): void {
    if (this.stopped) return;
    const old = this.sessions.get(key);
    if (old && old.payload === payload) return;
    const msgIdHash = this.allocateHash(payload, old?.msgIdHash);
    const bytes = this.packet('announce', msgIdHash, payload).length;
    const session: Session = { key, payload, originLine, msgIdHash, bytes, tp: old?.tp ?? -Infinity, urgent: true, timer: undefined };
    if (old) {
      clearTimeout(old.timer);
      this.hashes.delete(old.msgIdHash);
      void this.transmit('delete', old.msgIdHash, old.originLine);
    }
    this.sessions.set(key, session);
    // A change goes out at once, unless the session was sent less than minChangeGapMs ago.
    const at = Math.max(this.now(), session.tp + this.minChangeGapMs);
    this.arm(session, at);
  }

  /** Ends session `key` with a deletion packet. */
  delete(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    clearTimeout(s.timer);
    this.sessions.delete(key);
    this.hashes.delete(s.msgIdHash);
    void this.transmit('delete', s.msgIdHash, s.originLine);
  }

  has(key: string): boolean {
    return this.sessions.has(key);
  }

  /** Stops the timers; with `withdraw` (default) sends a deletion for every session first. */
  async stop(options: { withdraw?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const sends: Promise<void>[] = [];
    for (const s of this.sessions.values()) {
      clearTimeout(s.timer);
      if (options.withdraw ?? true) sends.push(this.transmit('delete', s.msgIdHash, s.originLine));
    }
    this.sessions.clear();
    await Promise.all(sends);
    await this.components.sender.close();
  }

  private arm(s: Session, at: number): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => this.fire(s), Math.max(0, at - this.now()));
    s.timer.unref?.();
  }

  /** §3.1: at tn, recompute tn from tp; send if it has passed, else wait for the new tn. */
  private fire(s: Session): void {
    if (this.stopped || this.sessions.get(s.key) !== s) return;
    const now = this.now();
    const due = s.urgent ? now : nextTransmission(s.tp, this.intervalMs, this.random);
    if (due > now) return this.arm(s, due);
    s.tp = now;
    s.urgent = false;
    void this.transmit('announce', s.msgIdHash, s.payload);
    this.arm(s, nextTransmission(s.tp, this.intervalMs, this.random));
  }

  private packet(type: 'announce' | 'delete', msgIdHash: number, payload: string): Uint8Array {
    return encodeSapPacket({ type, msgIdHash, origin: this.init.origin, payloadType: SDP_MIME, payload: type === 'delete' ? `${payload}\r\n` : payload });
  }

  private async transmit(type: 'announce' | 'delete', msgIdHash: number, payload: string): Promise<void> {
    try {
      await this.components.sender.send(this.packet(type, msgIdHash, payload));
      if (type === 'announce') this.stats.announcements++;
      else this.stats.deletions++;
    } catch (err) {
      this.stats.sendErrors++;
      this.log.warn({ err: (err as Error).message, type }, 'SAP packet not sent');
    }
  }

  /** A 16-bit hash of the payload, non-zero, unused by our other sessions and unlike `previous` (§6). */
  private allocateHash(payload: string, previous: number | undefined): number {
    let h = createHash('sha256').update(payload).digest().readUInt16BE(0);
    for (let i = 0; i < 0x10000; i++) {
      if (h !== 0 && h !== previous && !this.hashes.has(h)) {
        this.hashes.add(h);
        return h;
      }
      h = (h + 1) & 0xffff;
    }
    throw new RangeError('no free SAP message identifier hash');
  }
}
