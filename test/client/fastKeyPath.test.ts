/**
 * The key API's fast path (src/client/localAgent/fastKeyPath.ts) over real sockets, spoken to
 * byte by byte: keep-alive pulls answered directly, every other request handed to node:http on
 * the same connection with nothing lost or reordered (pipelined too), the same bytes of answer
 * either way, bad and oversized heads refused by node:http, and the API serving afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GroupClient } from '../../src/client/client.js';
import { MemberKeys } from '../../src/client/memberKeys.js';
import { Member } from '../../src/client/member.js';
import { KeyApi } from '../../src/client/localAgent/keyApi.js';
import { MAX_HEAD, parseHead } from '../../src/client/localAgent/fastKeyPath.js';
import { generateSigningKey } from '../../src/crypto/sign.js';
import { Originator } from '../../src/keyd/groupKey/originator.js';
import { systemClock } from '../../src/util/clock.js';

const GROUP = 'fastpath';
const LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';
const TOKEN = 'a-bearer-token-of-32-characters!';
const KEY = `/v1/key?label=${encodeURIComponent(LABEL)}&epoch=current`;

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A raw connection that reads whole HTTP/1.1 responses (content-length framed, or until close). */
class Conn {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly sock: net.Socket;

  constructor(where: string | number) {
    this.sock = typeof where === 'string' ? net.connect(where) : net.connect(where, '127.0.0.1');
    this.sock.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
    this.sock.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(text: string | Buffer): void {
    this.sock.write(text);
  }

  /** The next response; undefined if the connection closed first. */
  async read(): Promise<Response | undefined> {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [line, ...lines] = this.buf.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        const status = Number(line!.split(' ')[1]);
        const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
        if (len !== undefined && this.buf.length >= end + 4 + len) {
          const body = this.buf.toString('utf8', end + 4, end + 4 + len);
          this.buf = this.buf.subarray(end + 4 + len);
          return { status, headers, body };
        }
        if (len === undefined && this.closed) {
          const body = this.buf.toString('utf8', end + 4);
          this.buf = Buffer.alloc(0);
          return { status, headers, body };
        }
      } else if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

const get = (target: string, extra = '') => `GET ${target} HTTP/1.1\r\nHost: agent\r\n${extra}\r\n`;

describe('key API fast path', () => {
  let dir: string;
  let socketPath: string;
  let api: KeyApi;
  let status = 'joined';
  const conns: Conn[] = [];
  const open = (where: string | number = socketPath) => {
    const c = new Conn(where);
    conns.push(c);
    return c;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'iolus-fastpath-'));
    socketPath = join(dir, 'agent.sock');
    const signing = generateSigningKey();
    const member = new Member(GROUP, systemClock);
    const keys = new MemberKeys(member);
    keys.ring.setOriginators([signing.publicKey]);
    const client = Object.create(GroupClient.prototype) as GroupClient;
    Object.assign(client, { keys, member, opts: { group: GROUP }, derivedCache: new WeakMap() });
    status = 'joined';
    Object.defineProperty(client, 'status', { get: () => status });
    const o = new Originator(GROUP, signing, { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 }, 0);
    for (const b of o.tick(Date.now())) keys.onAnnouncement(b);
    api = new KeyApi(client, { socketPath, tcp: { host: '127.0.0.1', port: 0, token: TOKEN } });
    await api.start();
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) c.close();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses only the heads it answers', () => {
    expect(parseHead(`GET ${KEY} HTTP/1.1\r\nHost: a`)).toEqual({ target: KEY, authorization: undefined, close: false });
    expect(parseHead(`GET ${KEY} HTTP/1.1\r\nConnection: keep-alive, Close\r\nAuthorization: Bearer x`)).toEqual({ target: KEY, authorization: 'Bearer x', close: true });
    expect(parseHead(`GET ${KEY} HTTP/1.1\r\ncontent-length: 0`)).toBeDefined();
    for (const bad of [
      `POST ${KEY} HTTP/1.1`, `GET ${KEY} HTTP/1.0`, `GET /v1/status HTTP/1.1`, `GET /v1/key HTTP/1.1`, `get ${KEY} HTTP/1.1`,
      `GET ${KEY}  HTTP/1.1`, `GET ${KEY} HTTP/1.1\r\nContent-Length: 5`, `GET ${KEY} HTTP/1.1\r\nTransfer-Encoding: chunked`,
      `GET ${KEY} HTTP/1.1\r\nUpgrade: websocket`, `GET ${KEY} HTTP/1.1\r\nExpect: 100-continue`, `GET ${KEY} HTTP/1.1\r\n folded`,
      `GET ${KEY} HTTP/1.1\r\nno colon`, `GET ${KEY} HTTP/1.1\r\n: empty name`, `GET ${KEY} HTTP/1.1\r\nBad Name: x`,
      `GET ${KEY} HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b`, `GET ${KEY} HTTP/1.1\r\nX: a\nY: b`, `GET /v1/key?a b HTTP/1.1`,
    ]) expect(parseHead(bad), JSON.stringify(bad)).toBeUndefined();
  });

  it('answers keep-alive pulls itself, and hands other requests to node:http on the same connection', async () => {
    const c = open();
    c.write(get(KEY));
    const fast = (await c.read())!;
    expect(fast.status).toBe(200);
    expect(fast.headers['connection']).toBe('keep-alive');
    expect(fast.headers['date']).toMatch(/GMT$/);
    expect(fast.headers['content-type']).toBe('application/json');
    expect(JSON.parse(fast.body)).toMatchObject({ label: LABEL, state: 'current' });
    for (let i = 0; i < 20; i++) {
      c.write(get(KEY));
      expect((await c.read())!.body).toBe(fast.body);
    }
    // The same answer through node:http (HTTP/1.0 is not the fast path's), byte for byte.
    const slow = open();
    slow.write(`GET ${KEY} HTTP/1.0\r\n\r\n`);
    const s = (await slow.read())!;
    expect([s.status, s.body, s.headers['content-type']]).toEqual([200, fast.body, fast.headers['content-type']]);
    // Another route on the fast connection: node:http takes it over and answers everything after.
    c.write(get('/v1/status'));
    const st = (await c.read())!;
    expect(st.status).toBe(200);
    expect(JSON.parse(st.body)).toMatchObject({ group: GROUP, state: 'joined' });
    c.write(get(KEY));
    expect((await c.read())!.body).toBe(fast.body);
    c.write(get('/v1/nothing'));
    expect((await c.read())!.status).toBe(404);
    expect(api.pulls).toBe(23);
  });

  it('keeps pipelined requests in order across the hand-off, split at any byte', async () => {
    const batch = get(KEY) + get(KEY) + get('/v1/status') + get(KEY) + get(`/v1/key?label=srtp/NOPE`) + get(KEY, 'Connection: close\r\n');
    for (const split of [1, 7, batch.indexOf('/v1/status'), batch.length - 3]) {
      const c = open();
      c.write(batch.slice(0, split));
      await new Promise((r) => setTimeout(r, 5));
      c.write(batch.slice(split));
      const statuses: number[] = [];
      for (let r = await c.read(); r; r = await c.read()) statuses.push(r.status);
      expect(statuses, `split at ${split}`).toEqual([200, 200, 200, 200, 400, 200]);
      expect(c.closed).toBe(true);
    }
  });

  it('closes after a pull that asks to close', async () => {
    const c = open();
    c.write(get(KEY, 'Connection: close\r\n') + get(KEY));
    const r = (await c.read())!;
    expect([r.status, r.headers['connection']]).toEqual([200, 'close']);
    expect(await c.read()).toBeUndefined();
  });

  it('leaves errors to node:http: not joined, no key, bad token, a body, a method', async () => {
    const c = open();
    c.write(get(`/v1/key?label=${encodeURIComponent(LABEL)}&epoch=next`));
    expect((await c.read())!.status).toBe(404);
    c.write(`POST ${KEY} HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc`);
    expect((await c.read())!.status).toBe(405);
    status = 'removed';
    const d = open();
    d.write(get(KEY));
    const r = (await d.read())!;
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'not-joined' });
    status = 'joined';
    const port = api.tcpPort!;
    const t = open(port);
    t.write(get(KEY));
    expect((await t.read())!.status).toBe(401);
    const u = open(port);
    u.write(get(KEY, `Authorization: Bearer ${TOKEN}\r\n`));
    expect((await u.read())!.status).toBe(200);
    u.write(get(KEY, `Authorization: Bearer ${TOKEN.slice(0, -1)}?\r\n`));
    expect((await u.read())!.status).toBe(401);
  });

  it('survives garbage and oversized heads, and serves afterwards', async () => {
    for (let i = 0; i < 30; i++) {
      const g = open();
      g.write(randomBytes(1 + (i * 37) % 600));
      g.write('\r\n\r\n');
      const r = await g.read();
      if (r) expect(r.status).toBeGreaterThanOrEqual(400);
      g.close();
    }
    const big = open();
    big.write(`GET ${KEY} HTTP/1.1\r\nX-Pad: ${'a'.repeat(MAX_HEAD * 2)}`);
    const r = await big.read();
    if (r) expect(r.status).toBe(431);
    else expect(big.closed).toBe(true);
    const big2 = open();
    big2.write(`GET ${KEY} HTTP/1.1\r\nHost: a\r\nX-Pad: ${'a'.repeat(MAX_HEAD + 100)}\r\n\r\n`);
    const r2 = await big2.read();
    expect(r2?.status, 'a head over the fast path\'s limit but within node:http\'s is answered by node:http').toBe(200);
    const c = open();
    c.write(get(KEY));
    expect((await c.read())!.status).toBe(200);
  });
});
