/**
 * The subgroup plane over server-sent events on the control plane (DESIGN.md "Planes"), for
 * members that get no datagrams at all: the agent writes each datagram to every member's event
 * stream (`event: datagram`, base64 data); a member POSTs its own, and the hub reflects
 * method-1 data to the other members.
 *
 * SseHub (agent side) owns no server: the control API (fastify) hands it a member's raw
 * response to stream to (attach) and a member's POSTed datagram (receive). SseMemberTransport
 * (member side, sseMember.ts, re-exported here) reads the stream through an injected HTTP
 * client and reconnects with backoff.
 */
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import type { TransportDescriptor } from '../wire/control.js';
import { newCounters, type AgentTransport, type DatagramSource, type TransportCounters } from './types.js';
import { admit, countDrop, countOut, DropCause, Handlers, plain, sizeProblem } from './datagram.js';
import { defaultScope, type Scope } from './fanout.js';
import { formatComment, formatDatagramEvent } from './sseParser.js';

/**
 * What the hub needs of a response: `http.ServerResponse` (fastify's `reply.raw`) has it all.
 */
export interface SseResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  /** Bytes queued and not yet handed to the socket: the backpressure measure. */
  readonly writableLength: number;
  readonly writableEnded: boolean;
  readonly destroyed: boolean;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface SseHubInit {
  /** The stream's path, as members are told in the join grant (descriptor.path). */
  path: string;
  /** Comment heartbeat period (default 15 s). */
  heartbeatMs?: number;
  /** A stream with more unsent bytes than this drops new events (default 1 MiB). */
  maxBufferedBytes?: number;
}

export interface SseHubComponents {
  logger?: Logger;
  /** Routing of a POST that does not say its scope (default: defaultScope). */
  scopeOf?: (bytes: Uint8Array) => Scope;
}

export interface ReceiveOptions {
  /** 'subgroup' (method 1: reflected) or 'agent' (method 2: not); default from the bytes. */
  scope?: Scope;
  /** The member's address, for the DatagramSource. */
  address?: string;
  port?: number;
}

export type ReceiveResult = { ok: true; reflectedTo: number } | { ok: false; cause: string };

interface Stream {
  memberId: number;
  res: SseResponse;
  /** Events dropped for this stream (slow client). */
  dropped: number;
}

type State = 'idle' | 'running' | 'stopped';

const HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  // Reverse proxies (nginx) buffer responses unless told not to.
  'x-accel-buffering': 'no',
};

export class SseHub implements AgentTransport {
  readonly counters: TransportCounters = newCounters();
  readonly descriptor: TransportDescriptor;
  private readonly heartbeatMs: number;
  private readonly maxBuffered: number;
  private readonly log: Logger;
  private readonly scopeOf: (bytes: Uint8Array) => Scope;
  private readonly handlers: Handlers<[Uint8Array, DatagramSource]>;
  private readonly members = new Set<number>();
  private readonly streams = new Map<number, Stream>();
  /**
   * Events for members without a stream (joined but not attached yet, or reconnecting), written
   * when it attaches: a member's first stream opens only after its join returns, and what the
   * subgroup sent meanwhile (a rekey, data) would otherwise be lost. Bounded by maxBufferedBytes.
   */
  private readonly held = new Map<number, { events: { event: string; bytes: Uint8Array }[]; size: number }>();
  private heartbeat: NodeJS.Timeout | undefined;
  private state: State = 'idle';

  constructor(init: SseHubInit, components: SseHubComponents = {}) {
    if (!init.path.startsWith('/')) throw new UsageError('transport.sse-path', `sse path ${init.path}: not an absolute path`);
    this.descriptor = { kind: 'sse', path: init.path };
    this.heartbeatMs = init.heartbeatMs ?? 15_000;
    this.maxBuffered = init.maxBufferedBytes ?? 1024 * 1024;
    this.log = components.logger ?? createLogger('transport.sse');
    this.scopeOf = components.scopeOf ?? defaultScope;
    this.handlers = new Handlers(this.counters, this.log);
  }

  /** Attached streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `sse hub cannot start from state ${this.state}`);
    this.state = 'running';
    this.heartbeat = setInterval(() => this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  multicast(bytes: Uint8Array): void {
    if (this.state !== 'running') return void countDrop(this.counters, DropCause.NotRunning);
    const p = sizeProblem(bytes);
    if (p) return void countDrop(this.counters, p);
    const event = formatDatagramEvent(bytes);
    for (const s of this.streams.values()) this.sendEvent(s, event, bytes);
    for (const id of this.members) if (!this.streams.has(id)) this.hold(id, event, bytes);
  }

  onDatagram(handler: (bytes: Uint8Array, source: DatagramSource) => void): void {
    this.handlers.add(handler);
  }

  addMember(memberId: number): void {
    this.members.add(memberId);
  }

  removeMember(memberId: number): void {
    this.members.delete(memberId);
    this.held.delete(memberId);
    const s = this.streams.get(memberId);
    if (s) this.close(s);
  }

  hasMember(memberId: number): boolean {
    return this.members.has(memberId);
  }

  /**
   * Streams the subgroup to a member over `res` (fastify: `reply.hijack()` first, then pass
   * `reply.raw`). Writes the headers and an opening comment; the stream lives until the client
   * goes, the member is removed, or the hub stops. A member has one stream: a new one replaces
   * the old. If the member is unknown (404) or the hub not running (503), it answers so, ends
   * the response and returns false: a hijacked response is never left hanging.
   */
  attach(memberId: number, res: SseResponse): boolean {
    if (res.destroyed || res.writableEnded) return false;
    if (this.state !== 'running' || !this.members.has(memberId)) {
      const [status, error] = this.state !== 'running' ? [503, 'the subgroup transport is not running'] : [404, `no member ${memberId} on this stream`];
      try {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.write(JSON.stringify({ error }));
        res.end();
      } catch {
        /* gone */
      }
      return false;
    }
    const old = this.streams.get(memberId);
    if (old) this.close(old);
    const stream: Stream = { memberId, res, dropped: 0 };
    res.on('close', () => this.detach(stream));
    res.on('error', (err) => {
      countDrop(this.counters, DropCause.SocketError);
      this.log.debug({ err, memberId }, 'event stream error');
      this.detach(stream);
    });
    try {
      res.writeHead(200, HEADERS);
      res.write(formatComment('iolus subgroup'));
    } catch (err) {
      this.log.debug({ err, memberId }, 'event stream closed before it opened');
      return false;
    }
    this.streams.set(memberId, stream);
    const held = this.held.get(memberId);
    this.held.delete(memberId);
    for (const h of held?.events ?? []) this.sendEvent(stream, h.event, h.bytes);
    return true;
  }

  /**
   * A datagram a member POSTed: checked for size and membership, reflected to every other
   * member's stream if it is for the subgroup, then handed to the handlers.
   */
  receive(memberId: number, bytes: Uint8Array, options: ReceiveOptions = {}): ReceiveResult {
    const cause = admit(this.counters, bytes);
    if (cause) return { ok: false, cause };
    if (this.state !== 'running' || !this.members.has(memberId)) {
      const c = this.state !== 'running' ? DropCause.NotRunning : DropCause.UnknownMember;
      countDrop(this.counters, c);
      return { ok: false, cause: c };
    }
    let reflectedTo = 0;
    if ((options.scope ?? this.scopeOf(bytes)) === 'subgroup') {
      const event = formatDatagramEvent(bytes);
      for (const s of this.streams.values()) {
        if (s.memberId !== memberId && this.sendEvent(s, event, bytes)) reflectedTo++;
      }
      for (const id of this.members) if (id !== memberId && !this.streams.has(id)) this.hold(id, event, bytes);
    }
    this.handlers.emit(plain(bytes), { address: options.address ?? 'sse', port: options.port ?? 0, memberId });
    return { ok: true, reflectedTo };
  }

  stop(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    this.state = 'stopped';
    clearInterval(this.heartbeat);
    this.held.clear();
    for (const s of [...this.streams.values()]) this.close(s);
    return Promise.resolve();
  }

  /** Keeps an event for a member without a stream; past the bound the oldest go (counted as slow-client). */
  private hold(memberId: number, event: string, bytes: Uint8Array): void {
    let h = this.held.get(memberId);
    if (!h) this.held.set(memberId, (h = { events: [], size: 0 }));
    h.events.push({ event, bytes });
    h.size += event.length;
    while (h.size > this.maxBuffered && h.events.length > 0) {
      h.size -= h.events.shift()!.event.length;
      countDrop(this.counters, DropCause.SlowClient);
    }
  }

  private sendEvent(s: Stream, event: string, bytes: Uint8Array): boolean {
    if (s.res.writableLength > this.maxBuffered) {
      s.dropped++;
      countDrop(this.counters, DropCause.SlowClient);
      return false;
    }
    if (!this.write(s, event)) return false;
    countOut(this.counters, bytes);
    return true;
  }

  private write(s: Stream, text: string): boolean {
    if (s.res.writableEnded || s.res.destroyed) {
      countDrop(this.counters, DropCause.SendError);
      this.detach(s);
      return false;
    }
    try {
      s.res.write(text);
      return true;
    } catch (err) {
      countDrop(this.counters, DropCause.SendError);
      this.log.debug({ err, memberId: s.memberId }, 'event stream write failed');
      this.close(s);
      return false;
    }
  }

  private beat(): void {
    const comment = formatComment('heartbeat');
    for (const s of [...this.streams.values()]) {
      if (s.res.writableLength <= this.maxBuffered) this.write(s, comment);
    }
  }

  private detach(s: Stream): void {
    if (this.streams.get(s.memberId) === s) this.streams.delete(s.memberId);
  }

  private close(s: Stream): void {
    this.detach(s);
    try {
      if (!s.res.writableEnded) s.res.end();
    } catch {
      /* already gone */
    }
  }
}

export { SseMemberTransport, defaultPostPath, type SseHttpClient, type SseMemberInit, type SseMemberComponents } from './sseMember.js';
