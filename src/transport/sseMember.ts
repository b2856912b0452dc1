/**
 * The member side of the SSE subgroup plane (sse.ts has the agent's hub): reads the agent's
 * event stream through an injected HTTP client (the real one speaks mutual TLS; this file opens
 * no connection itself), parses it (sseParser.ts), reconnects with jittered exponential backoff
 * when the stream ends or fails, and POSTs its own datagrams with their scope.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import { newCounters, type MemberTransport, type TransportCounters } from './types.js';
import { admit, countDrop, countOut, DropCause, Handlers, sizeProblem } from './datagram.js';
import type { Scope } from './fanout.js';
import { decodeBase64, DEFAULT_MAX_LINE, SseParser, type SseEvent } from './sseParser.js';

type State = 'idle' | 'running' | 'stopped';

/** The member's HTTP client, as the SSE transport needs it (the real one speaks mutual TLS). */
export interface SseHttpClient {
  /**
   * GETs `path` as an event stream and yields the response body as it arrives, in chunks of
   * any size (text, or bytes in UTF-8); ends when the response ends; throws on an HTTP error.
   * Must stop when `signal` aborts. A node:http IncomingMessage is such an iterable.
   */
  stream(path: string, signal: AbortSignal): AsyncIterable<string | Uint8Array>;
  /** POSTs one datagram (the body's encoding is between the client and the control API). */
  post(path: string, body: Uint8Array): Promise<void>;
}

export interface SseMemberInit {
  /** descriptor.path */
  path: string;
  /** Where datagrams go (default: `path` with its last segment `datagram`); `scope=subgroup|agent` is appended. */
  postPath?: string;
  maxLineLength?: number;
  /** Reconnect delay: doubles from initialMs (default 250) to maxMs (default 30 s), ±25 % jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** POSTs in flight at most (default 64); beyond, datagrams are dropped (send-backlog). */
  maxInFlight?: number;
}

export interface SseMemberComponents {
  client: SseHttpClient;
  logger?: Logger;
  /** Waits between reconnects (tests pass a fake). Resolves early, or rejects, when the signal aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
  random?: () => number;
}

/** `/v1/groups/g/events?x=1` → `/v1/groups/g/datagram?x=1`. */
export function defaultPostPath(path: string): string {
  const q = path.indexOf('?');
  const base = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q);
  return `${base.slice(0, base.lastIndexOf('/') + 1)}datagram${query}`;
}

function withQuery(path: string, param: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}${param}`;
}

export class SseMemberTransport implements MemberTransport {
  readonly counters: TransportCounters = newCounters();
  /** Streams opened (a first chunk arrived) and reconnect attempts. */
  readonly stats = { connects: 0, reconnects: 0 };
  private readonly log: Logger;
  private readonly handlers: Handlers<[Uint8Array]>;
  private readonly parser: SseParser;
  private readonly postPath: string;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly maxInFlight: number;
  private readonly stopController = new AbortController();
  private inFlight = 0;
  private state: State = 'idle';
  private loop: Promise<void> | undefined;
  private connected: Promise<void>;
  private markConnected: () => void = () => {};

  constructor(private readonly init: SseMemberInit, private readonly components: SseMemberComponents) {
    this.log = components.logger ?? createLogger('transport.sse.member');
    this.handlers = new Handlers(this.counters, this.log);
    this.postPath = init.postPath ?? defaultPostPath(init.path);
    this.initialMs = init.backoff?.initialMs ?? 250;
    this.maxMs = init.backoff?.maxMs ?? 30_000;
    this.maxInFlight = init.maxInFlight ?? 64;
    this.parser = new SseParser({
      maxLineLength: init.maxLineLength ?? DEFAULT_MAX_LINE,
      onEvent: (e) => this.event(e),
      onProblem: (p) => countDrop(this.counters, p === 'line-too-long' ? DropCause.LineTooLong : p),
    });
    this.connected = new Promise((resolve) => (this.markConnected = resolve));
  }

  /** Starts reading the stream (in the background, reconnecting until stop()). */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `sse member cannot start from state ${this.state}`);
    this.state = 'running';
    this.loop = this.run();
  }

  /** Resolves once the first stream has delivered its first bytes. */
  whenConnected(): Promise<void> {
    return this.connected;
  }

  sendSubgroup(bytes: Uint8Array): void {
    this.post(bytes, 'subgroup');
  }

  sendAgent(bytes: Uint8Array): void {
    this.post(bytes, 'agent');
  }

  onDatagram(handler: (bytes: Uint8Array) => void): void {
    this.handlers.add(handler);
  }

  endpoint(): undefined {
    return undefined;
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.stopController.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    let delay = this.initialMs;
    const wait = this.components.sleep ?? ((ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }));
    const random = this.components.random ?? Math.random;
    while (this.state === 'running') {
      const decoder = new TextDecoder('utf-8');
      let opened = false;
      try {
        for await (const chunk of this.components.client.stream(this.init.path, this.stopController.signal)) {
          if (!opened) {
            opened = true;
            this.stats.connects++;
            delay = this.initialMs;
            this.markConnected();
          }
          this.parser.push(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
          if (this.state !== 'running') break;
        }
      } catch (err) {
        if (this.state === 'running') this.log.debug({ err }, 'event stream failed');
      }
      this.parser.end();
      if (this.state !== 'running') break;
      this.stats.reconnects++;
      const jittered = delay * (0.75 + 0.5 * random());
      this.log.debug({ delayMs: Math.round(jittered) }, 'event stream ended; reconnecting');
      await wait(jittered, this.stopController.signal).catch(() => undefined);
      delay = Math.min(delay * 2, this.maxMs);
    }
  }

  private event(e: SseEvent): void {
    if (e.event !== 'datagram') return void countDrop(this.counters, DropCause.BadEvent);
    const bytes = decodeBase64(e.data);
    if (!bytes) {
      this.counters.datagramsIn++;
      return void countDrop(this.counters, DropCause.BadEvent);
    }
    if (admit(this.counters, bytes)) return;
    this.handlers.emit(bytes);
  }

  private post(bytes: Uint8Array, scope: Scope): void {
    if (this.state !== 'running') return void countDrop(this.counters, DropCause.NotRunning);
    const p = sizeProblem(bytes);
    if (p) return void countDrop(this.counters, p);
    if (this.inFlight >= this.maxInFlight) return void countDrop(this.counters, DropCause.SendBacklog);
    this.inFlight++;
    countOut(this.counters, bytes);
    let sent: Promise<void>;
    try {
      sent = this.components.client.post(withQuery(this.postPath, `scope=${scope}`), bytes);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      () => this.inFlight--,
      (err: unknown) => {
        this.inFlight--;
        countDrop(this.counters, DropCause.SendError);
        this.log.debug({ err }, 'datagram POST failed');
      },
    );
  }
}
