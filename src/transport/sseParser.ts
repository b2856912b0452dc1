/**
 * Server-sent events, both directions, with no I/O: formatting what the hub writes, and an
 * incremental parser for what a member reads (WHATWG HTML "Server-sent events", §9.2.6
 * "Interpreting an event stream"):
 *
 * - lines end in CRLF, LF or CR, and a CRLF may be split between two chunks;
 * - `field: value` drops one leading space; a line without a colon is a field with an empty
 *   value; `:` starts a comment; unknown fields are ignored; a leading BOM is skipped;
 * - `data` lines accumulate, joined by LF; a blank line dispatches the event (if it has data);
 *   an unterminated event at the end of the stream is discarded.
 *
 * Bounded: a line longer than maxLineLength is skipped to its end and its event discarded; so
 * is an event whose data grows beyond maxEventLength. The parser never holds more than about
 * maxLineLength + maxEventLength characters.
 */

export interface SseEvent {
  /** The `event` field, 'message' when absent. */
  event: string;
  data: string;
  /** The last `id` field seen, if any. */
  id?: string;
}

export type SseProblem = 'line-too-long' | 'event-too-long';

export interface SseParserOptions {
  onEvent: (event: SseEvent) => void;
  onComment?: (text: string) => void;
  onProblem?: (problem: SseProblem) => void;
  /** Longest line kept (characters, terminator excluded); default 128 Ki (a base64 datagram is ≤ 86,668). */
  maxLineLength?: number;
  /** Longest event data kept (characters); default maxLineLength. */
  maxEventLength?: number;
}

export const DEFAULT_MAX_LINE = 128 * 1024;

export class SseParser {
  private readonly maxLine: number;
  private readonly maxEvent: number;
  private line: string[] = [];
  private lineLength = 0;
  /** Skipping an over-long line until its terminator. */
  private skippingLine = false;
  /** The previous chunk ended in CR: an LF at the start of this one belongs to it. */
  private afterCR = false;
  private started = false;
  private eventType = '';
  private data: string[] = [];
  private dataLength = 0;
  private dataLines = 0;
  /** The current event lost a line or grew too long: drop it at dispatch. */
  private spoiled = false;
  private lastId: string | undefined;

  constructor(private readonly options: SseParserOptions) {
    this.maxLine = options.maxLineLength ?? DEFAULT_MAX_LINE;
    this.maxEvent = options.maxEventLength ?? this.maxLine;
  }

  /** Feeds a chunk of the stream (any size, split anywhere). */
  push(chunk: string): void {
    let start = 0;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.afterCR && chunk.charCodeAt(start) === 0x0a) start++;
    this.afterCR = false;
    const n = chunk.length;
    // Next CR and LF, each searched once per pass over the chunk (no rescans: linear time).
    let cr = chunk.indexOf('\r', start);
    let lf = chunk.indexOf('\n', start);
    let i = start;
    while (i < n) {
      if (cr >= 0 && cr < i) cr = chunk.indexOf('\r', i);
      if (lf >= 0 && lf < i) lf = chunk.indexOf('\n', i);
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) {
        this.appendPart(chunk, i, n);
        return;
      }
      this.appendPart(chunk, i, end);
      this.finishLine();
      if (end === cr) {
        if (end + 1 === n) {
          this.afterCR = true;
          return;
        }
        i = end + 1 === lf ? end + 2 : end + 1;
      } else {
        i = end + 1;
      }
    }
  }

  /** The stream ended: a partial line or event is discarded (a reconnect starts afresh). */
  end(): void {
    this.reset();
  }

  reset(): void {
    this.line = [];
    this.lineLength = 0;
    this.skippingLine = false;
    this.afterCR = false;
    this.started = false;
    this.clearEvent();
  }

  private appendPart(chunk: string, from: number, to: number): void {
    if (to <= from || this.skippingLine) return;
    this.lineLength += to - from;
    if (this.lineLength > this.maxLine) {
      this.skippingLine = true;
      this.line = [];
      this.spoiled = true;
      this.options.onProblem?.('line-too-long');
      return;
    }
    this.line.push(chunk.slice(from, to));
  }

  private finishLine(): void {
    if (this.skippingLine) {
      this.skippingLine = false;
      this.lineLength = 0;
      return;
    }
    const line = this.line.length === 1 ? this.line[0]! : this.line.join('');
    this.line = [];
    this.lineLength = 0;
    this.processLine(line);
  }

  private processLine(line: string): void {
    if (line === '') return this.dispatch();
    const colon = line.indexOf(':');
    if (colon === 0) {
      this.options.onComment?.(line.slice(1));
      return;
    }
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        if (this.spoiled) return;
        this.dataLength += value.length + (this.dataLines > 0 ? 1 : 0);
        if (this.dataLength > this.maxEvent) {
          this.spoiled = true;
          this.data = [];
          this.options.onProblem?.('event-too-long');
          return;
        }
        this.data.push(value);
        this.dataLines++;
        return;
      case 'event':
        this.eventType = value;
        return;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        return;
      default:
        return; // retry and unknown fields: nothing for us
    }
  }

  private dispatch(): void {
    if (!this.spoiled && this.dataLines > 0) {
      const e: SseEvent = { event: this.eventType || 'message', data: this.data.join('\n') };
      if (this.lastId !== undefined) e.id = this.lastId;
      this.clearEvent();
      this.options.onEvent(e);
      return;
    }
    this.clearEvent();
  }

  private clearEvent(): void {
    this.eventType = '';
    this.data = [];
    this.dataLength = 0;
    this.dataLines = 0;
    this.spoiled = false;
  }
}

/** One datagram as an SSE event: `event: datagram`, the bytes in base64. */
export function formatDatagramEvent(bytes: Uint8Array): string {
  return `event: datagram\ndata: ${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}\n\n`;
}

/** A comment line (heartbeats): ignored by every SSE client, keeps proxies and NATs awake. */
export function formatComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 to bytes, or undefined (wrong alphabet, length or padding). */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== (text.length / 4) * 3 - (text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0)) return undefined;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
