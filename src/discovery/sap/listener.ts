/**
 * SapListener: an sd-style session cache fed SAP packets (RFC 2974 §4-§5). A session is named by
 * its SDP origin (username, session id, network type, address: RFC 8866 §5.2) and the announcer's
 * address; a newer version replaces it, a deletion whose o= line names it removes it, and one
 * not heard for max(10 intervals, 1 h) times out. Pure: the caller feeds packets and the time.
 */
import { CodecError } from '../../errors.js';
import { decodeSapPacket, SDP_MIME } from './packet.js';
import { parseSdp, readGroupDescription, type SdpSession } from './sdp.js';

export interface HeardSession {
  /** origin address + SDP origin minus the version. */
  id: string;
  announcer: string;
  msgIdHash: number;
  sdp: SdpSession;
  text: string;
  /** The Iolus group it describes, if it is one. */
  group: ReturnType<typeof readGroupDescription>;
  heardAt: number;
}

export type SapEvent =
  | { kind: 'new' | 'modified'; session: HeardSession }
  | { kind: 'deleted'; id: string; announcer: string }
  | { kind: 'refused'; reason: string; from: string };

export interface SapListenerStats {
  packets: number;
  refused: number;
  announcements: number;
  deletions: number;
}

export class SapListener {
  readonly stats: SapListenerStats = { packets: 0, refused: 0, announcements: 0, deletions: 0 };
  private readonly sessions = new Map<string, HeardSession>();

  constructor(private readonly opts: { maxSessions?: number; timeoutMs?: number } = {}) {}

  list(): HeardSession[] {
    return [...this.sessions.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** One datagram; returns what it changed. Never throws on what the network sends. */
  receive(bytes: Uint8Array, from: string, now: number): SapEvent | undefined {
    this.stats.packets++;
    try {
      const p = decodeSapPacket(bytes);
      if (p.payloadType !== SDP_MIME) return this.refuse(`payload type ${p.payloadType}`, from);
      if (p.type === 'delete') {
        this.stats.deletions++;
        const line = p.payload.split(/\r?\n/).find((l) => l.startsWith('o='));
        if (!line) return this.refuse('deletion without an o= line', from);
        const id = sessionId(p.origin, line.slice(2));
        const held = this.sessions.get(id);
        // A deletion of an older version than the one held (it was modified since) changes nothing.
        if (!held || BigInt(held.sdp.origin.sessionVersion) > BigInt(line.slice(2).trim().split(' ')[2] ?? '0')) return undefined;
        this.sessions.delete(id);
        return { kind: 'deleted', id, announcer: p.origin };
      }
      this.stats.announcements++;
      const sdp = parseSdp(p.payload);
      const o = sdp.origin;
      const id = sessionId(p.origin, `${o.username} ${o.sessionId} ${o.sessionVersion} ${o.netType} ${o.addrType} ${o.address}`);
      const old = this.sessions.get(id);
      if (old && old.msgIdHash === p.msgIdHash && old.text === p.payload) {
        old.heardAt = now;
        return undefined;
      }
      if (old && BigInt(o.sessionVersion) < BigInt(old.sdp.origin.sessionVersion)) return undefined; // a stale copy
      if (!old && this.sessions.size >= (this.opts.maxSessions ?? 10_000)) return this.refuse('session cache full', from);
      const session: HeardSession = { id, announcer: p.origin, msgIdHash: p.msgIdHash, sdp, text: p.payload, group: readGroupDescription(sdp), heardAt: now };
      this.sessions.set(id, session);
      return { kind: old ? 'modified' : 'new', session };
    } catch (err) {
      if (err instanceof CodecError || err instanceof SyntaxError || err instanceof RangeError) return this.refuse((err as Error).message, from);
      throw err;
    }
  }

  /** Drops sessions not heard for the timeout; returns their ids. */
  expire(now: number): string[] {
    const timeout = this.opts.timeoutMs ?? 3_600_000;
    const gone: string[] = [];
    for (const [id, s] of this.sessions) {
      if (now - s.heardAt > timeout) {
        this.sessions.delete(id);
        gone.push(id);
      }
    }
    return gone;
  }

  private refuse(reason: string, from: string): SapEvent {
    this.stats.refused++;
    return { kind: 'refused', reason, from };
  }
}

/** The session's identity: announcer plus o= without its version (RFC 8866 §5.2). */
function sessionId(announcer: string, origin: string): string {
  const f = origin.trim().split(' ');
  if (f.length !== 6) throw new CodecError('sdp.origin', 'o= needs six fields');
  return `${announcer} ${f[0]} ${f[1]} ${f[3]} ${f[4]} ${f[5]}`;
}
