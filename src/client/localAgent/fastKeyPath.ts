/**
 * The key API's fast path. A pipeline pulls the same key query over and over on a keep-alive
 * connection; node:http spends most of a pull building request and response objects (about
 * 3× the cost of the answer itself here). This reads each request head off the socket,
 * and answers it directly when, and only when, it is exactly what we understand:
 *
 *   GET /v1/key?<query> HTTP/1.1, no body (no Transfer-Encoding, Content-Length absent or 0),
 *   no Upgrade or Expect, no folded header lines, the head under MAX_HEAD bytes,
 *   and the owner has a 200 answer for it (a valid query, a key held, authorized).
 *
 * Anything else (another route, an error to report, a bad query, HTTP/1.0, a malformed head)
 * goes, with the bytes read so far, to the node:http server, which answers it and keeps the
 * connection from then on. So the fast path never decides an error: node:http and the owner's
 * handler do, exactly as without it.
 */
import type http from 'node:http';
import type net from 'node:net';

/** Larger heads go to node:http (which refuses heads over its own limit with 431). */
export const MAX_HEAD = 8 * 1024;
/** An idle connection is closed after this long, as node:http's keepAliveTimeout would. */
export const IDLE_MS = 60_000;

export interface FastAnswer {
  type: string;
  body: string;
  /** The whole keep-alive response, kept by the fast path for the second its Date header names. */
  wire?: { second: number; text: string };
}

/** The owner's answer to `GET target`, or undefined to let node:http handle the request. */
export type FastAnswerFn = (target: string, authorization: string | undefined) => FastAnswer | undefined;

interface RequestHead {
  target: string;
  authorization: string | undefined;
  close: boolean;
}

const REQUEST_LINE = /^GET (\/v1\/key\?[\x21-\x7e]*) HTTP\/1\.1$/;

/** Parses a request head (without its final CRLF CRLF); undefined when it is not one we answer. */
export function parseHead(head: string): RequestHead | undefined {
  const lines = head.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0]!);
  if (!m) return undefined;
  let authorization: string | undefined;
  let close = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    // Folded lines, empty or nameless lines, bare LF or CR: node:http decides (it refuses them).
    if (colon <= 0 || line.charCodeAt(0) === 0x20 || line.charCodeAt(0) === 0x09 || /[\r\n\0]/.test(line)) return undefined;
    const name = line.slice(0, colon);
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) return undefined;
    const value = line.slice(colon + 1).trim();
    switch (name.toLowerCase()) {
      case 'content-length':
        if (value !== '0') return undefined;
        break;
      case 'transfer-encoding':
      case 'upgrade':
      case 'expect':
        return undefined;
      case 'authorization':
        if (authorization !== undefined) return undefined;
        authorization = value;
        break;
      case 'connection':
        if (/(^|[\s,])close($|[\s,])/i.test(value)) close = true;
        break;
    }
  }
  return { target: m[1]!, authorization, close };
}

let dateSecond = -1;
let dateText = '';

function response(a: FastAnswer, close: boolean): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (!close && a.wire?.second === second) return a.wire.text;
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  const text =
    `HTTP/1.1 200 OK\r\ncontent-type: ${a.type}\r\ncontent-length: ${Buffer.byteLength(a.body)}\r\n` +
    `cache-control: no-store\r\ndate: ${dateText}\r\nconnection: ${close ? 'close' : 'keep-alive'}\r\n\r\n${a.body}`;
  if (!close) a.wire = { second, text };
  return text;
}

const HEAD_END = Buffer.from('\r\n\r\n');

export class FastKeyPath {
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly server: http.Server, private readonly answer: FastAnswerFn) {}

  /** A connection accepted by the listening net.Server. */
  accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    let pending: Buffer = Buffer.alloc(0);
    const onError = (): void => {
      socket.destroy();
    };
    const onTimeout = (): void => {
      socket.destroy();
    };
    const handOff = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('timeout', onTimeout);
      socket.setTimeout(0);
      socket.pause();
      if (pending.length > 0) socket.unshift(pending);
      pending = Buffer.alloc(0);
      this.server.emit('connection', socket);
      socket.resume();
    };
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const end = pending.indexOf(HEAD_END);
        if (end < 0) {
          if (pending.length > MAX_HEAD) handOff();
          return;
        }
        const head = end <= MAX_HEAD ? parseHead(pending.toString('latin1', 0, end)) : undefined;
        const a = head && this.answer(head.target, head.authorization);
        if (!head || !a) return handOff();
        pending = pending.subarray(end + HEAD_END.length);
        socket.write(response(a, head.close));
        if (head.close) {
          socket.removeListener('data', onData);
          socket.end();
          return;
        }
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.setTimeout(IDLE_MS, onTimeout);
    socket.setNoDelay?.(true);
  }

  /** Closes every connection it accepted (handed off ones too). */
  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
