/**
 * What every transport does with a datagram before anything else looks at it: a size check
 * (every datagram from the network is untrusted), counting by cause, and handing it to the
 * handlers so that a throwing handler never breaks a socket's receive loop.
 */
import { MAX_MESSAGE_LENGTH } from '../wire/codec.js';
import type { Logger } from '../util/log.js';
import type { TransportCounters } from './types.js';

/** Drop causes every transport uses (counters.dropped keys). */
export const DropCause = {
  /** A zero-length datagram. */
  Empty: 'empty',
  /** Longer than MAX_MESSAGE_LENGTH (65,000 bytes). */
  Oversized: 'oversized',
  /** From an address and port that is no member's endpoint (unicast fan-out). */
  UnknownSource: 'unknown-source',
  /** POSTed for a member the hub does not know (SSE). */
  UnknownMember: 'unknown-member',
  /** An SSE client's buffer was over its bound: the event was not queued. */
  SlowClient: 'slow-client',
  /** An SSE event that is not a datagram, or whose data is not base64. */
  BadEvent: 'bad-event',
  /** An SSE line longer than the bound (its event is discarded). */
  LineTooLong: 'line-too-long',
  /** A send that failed (socket error, closed stream, refused POST). */
  SendError: 'send-error',
  /** Too many sends in flight (SSE member POSTs). */
  SendBacklog: 'send-backlog',
  /** Sent while the transport was not running. */
  NotRunning: 'not-running',
  /** An error event on a socket or stream (not tied to one datagram). */
  SocketError: 'socket-error',
  /** A handler threw (a bug upstream; the transport goes on). */
  HandlerError: 'handler-error',
} as const;
export type DropCause = (typeof DropCause)[keyof typeof DropCause];

export function countDrop(counters: TransportCounters, cause: string, n = 1): void {
  counters.dropped.set(cause, (counters.dropped.get(cause) ?? 0) + n);
}

/** Counts an arriving datagram; returns the cause if it must be dropped for its size. */
export function admit(counters: TransportCounters, bytes: Uint8Array): DropCause | undefined {
  counters.datagramsIn++;
  counters.bytesIn += bytes.length;
  const cause = sizeProblem(bytes);
  if (cause) countDrop(counters, cause);
  return cause;
}

export function sizeProblem(bytes: Uint8Array): DropCause | undefined {
  if (bytes.length === 0) return DropCause.Empty;
  if (bytes.length > MAX_MESSAGE_LENGTH) return DropCause.Oversized;
  return undefined;
}

/** A plain Uint8Array over a Buffer's bytes (no copy): what handlers get from every transport. */
export function plain(bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

/** Counts an outgoing datagram. */
export function countOut(counters: TransportCounters, bytes: Uint8Array): void {
  counters.datagramsOut++;
  counters.bytesOut += bytes.length;
}

/** Sum of every drop cause. */
export function totalDropped(counters: TransportCounters): number {
  let n = 0;
  for (const v of counters.dropped.values()) n += v;
  return n;
}

/** A plain-object copy of the counters (for logs, metrics and the test driver). */
export function snapshot(counters: TransportCounters): { datagramsIn: number; datagramsOut: number; bytesIn: number; bytesOut: number; dropped: Record<string, number> } {
  return { ...counters, dropped: Object.fromEntries(counters.dropped) };
}

/** The registered handlers of a transport; each is called in turn, and one that throws is logged and counted. */
export class Handlers<A extends unknown[]> {
  private readonly list: ((...args: A) => void)[] = [];

  constructor(
    private readonly counters: TransportCounters,
    private readonly log: Logger,
  ) {}

  add(handler: (...args: A) => void): void {
    this.list.push(handler);
  }

  get size(): number {
    return this.list.length;
  }

  emit(...args: A): void {
    for (const h of this.list) {
      try {
        h(...args);
      } catch (err) {
        countDrop(this.counters, DropCause.HandlerError);
        this.log.error({ err }, 'datagram handler threw');
      }
    }
  }
}
