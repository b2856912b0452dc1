/**
 * SSE: the hub behind a real node:http server on 127.0.0.1 (as the control API would mount
 * it), members reading through a minimal node:http client; reflection of POSTed datagrams,
 * heartbeats, disconnect cleanup, backpressure (drop and count), and the member's parsing of
 * garbage and its reconnects with backoff.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { MessageType } from '../../src/wire/header.js';
import { defaultPostPath, SseHub, SseMemberTransport, type SseHttpClient, type SseResponse } from '../../src/transport/sse.js';
import type { DatagramSource } from '../../src/transport/types.js';

const logger = silentLogger();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function frame(type: number, tag: number, length = 48): Uint8Array {
  const b = new Uint8Array(length).fill(tag);
  b[2] = type;
  return b;
}

/** What a control API route does with the hub (fastify: reply.hijack(); hub.attach(id, reply.raw)). */
async function serve(hub: SseHub) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const memberId = Number(url.searchParams.get('memberId'));
    if (req.method === 'GET' && url.pathname === '/g/events') {
      hub.attach(memberId, res); // answers 404 itself for a non-member
      return;
    }
    if (req.method === 'POST' && url.pathname === '/g/datagram') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const scope = url.searchParams.get('scope');
        const r = hub.receive(memberId, Buffer.concat(chunks), scope === 'subgroup' || scope === 'agent' ? { scope } : {});
        res.writeHead(r.ok ? 204 : 400).end();
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function httpClient(base: string): SseHttpClient {
  return {
    async *stream(path, signal) {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = http.get(base + path, { signal }, resolve);
        req.on('error', reject);
      });
      if (res.statusCode !== 200) {
        res.resume();
        throw new Error(`HTTP ${res.statusCode}`);
      }
      yield* res as AsyncIterable<Buffer>;
    },
    post(path, body) {
      return new Promise((resolve, reject) => {
        const req = http.request(base + path, { method: 'POST', headers: { 'content-length': body.length } }, (res) => {
          res.resume();
          if (res.statusCode && res.statusCode < 300) resolve();
          else reject(new Error(`HTTP ${res.statusCode}`));
        });
        req.on('error', reject);
        req.end(body);
      });
    },
  };
}

async function hubWithMembers(n: number, init: { heartbeatMs?: number } = {}) {
  const hub = new SseHub({ path: '/g/events', ...init }, { logger });
  await hub.start();
  cleanups.push(() => hub.stop());
  const heard: { bytes: Uint8Array; source: DatagramSource }[] = [];
  hub.onDatagram((bytes, source) => heard.push({ bytes, source }));
  const base = await serve(hub);
  const members: { t: SseMemberTransport; got: Uint8Array[] }[] = [];
  for (let id = 1; id <= n; id++) {
    hub.addMember(id);
    const t = new SseMemberTransport({ path: `/g/events?memberId=${id}` }, { client: httpClient(base), logger });
    const got: Uint8Array[] = [];
    t.onDatagram((b) => got.push(b));
    await t.start();
    cleanups.push(() => t.stop());
    await t.whenConnected();
    members.push({ t, got });
  }
  await until(() => hub.streamCount === n, 'streams attached');
  return { hub, heard, members, base };
}

describe('SseHub with SseMemberTransport over node:http', () => {
  it('streams multicast() to every member', async () => {
    const { hub, members } = await hubWithMembers(3);
    const big = frame(MessageType.LeaveKeyUpdate, 7, 65_000);
    hub.multicast(frame(MessageType.Heartbeat, 1));
    hub.multicast(big);
    await until(() => members.every((m) => m.got.length === 2), 'events');
    for (const m of members) {
      expect(Buffer.from(m.got[1]!).equals(big)).toBe(true); // (toEqual on 65,000 elements is slow)
      expect(m.t.counters.datagramsIn).toBe(2);
    }
    expect(hub.counters.datagramsOut).toBe(6);
  });

  it('reflects a POSTed method-1 datagram to the other members, not the sender; method 2 stays with the agent', async () => {
    const { hub, heard, members } = await hubWithMembers(3);
    const [a, b, c] = members as [typeof members[0], typeof members[0], typeof members[0]];
    const m1 = frame(MessageType.DataMethod1, 0x11);
    a.t.sendSubgroup(m1);
    await until(() => b.got.length === 1 && c.got.length === 1 && heard.length === 1, 'reflection');
    expect(heard[0]).toEqual({ bytes: m1, source: { address: 'sse', port: 0, memberId: 1 } });
    b.t.sendAgent(frame(MessageType.DataUp, 0x22));
    await until(() => heard.length === 2, 'method 2');
    // A POST without a scope is routed by the bytes: DataUp stays with the agent.
    expect(hub.receive(3, frame(MessageType.DataUp, 0x33))).toEqual({ ok: true, reflectedTo: 0 });
    expect(hub.receive(3, frame(MessageType.DataMethod1, 0x44))).toEqual({ ok: true, reflectedTo: 2 });
    await until(() => a.got.length === 1 && b.got.length === 2, 'unscoped method 1');
    await new Promise((r) => setTimeout(r, 50));
    expect(a.got.map((x) => x[3])).toEqual([0x44]);
    expect(c.got.map((x) => x[3])).toEqual([0x11]);
  });

  it('refuses POSTs that are empty, oversized, or from non-members, counting them', async () => {
    const { hub, heard } = await hubWithMembers(1);
    expect(hub.receive(1, new Uint8Array(0))).toEqual({ ok: false, cause: 'empty' });
    expect(hub.receive(1, new Uint8Array(65_001))).toEqual({ ok: false, cause: 'oversized' });
    expect(hub.receive(9, frame(MessageType.DataMethod1, 1))).toEqual({ ok: false, cause: 'unknown-member' });
    expect(Object.fromEntries(hub.counters.dropped)).toEqual({ empty: 1, oversized: 1, 'unknown-member': 1 });
    expect(heard).toEqual([]);
  });

  it('sends comment heartbeats, which members ignore', async () => {
    const { members } = await hubWithMembers(1, { heartbeatMs: 30 });
    await new Promise((r) => setTimeout(r, 150));
    expect(members[0]!.got).toEqual([]);
    expect(members[0]!.t.counters.dropped.size).toBe(0);
  });

  it('forgets a stream when the client goes, and ends it when the member is removed; the member reconnects', async () => {
    const { hub, members } = await hubWithMembers(2);
    await members[0]!.t.stop();
    await until(() => hub.streamCount === 1, 'disconnect cleanup');
    hub.removeMember(2);
    expect(hub.streamCount).toBe(0);
    // Member 2's stream ended: it reconnects, and is refused (404) until it is a member again.
    await until(() => members[1]!.t.stats.reconnects >= 1, 'reconnect attempt');
    hub.addMember(2);
    await until(() => hub.streamCount === 1, 'reattached', 5_000);
    hub.multicast(frame(MessageType.Heartbeat, 3));
    await until(() => members[1]!.got.length === 1, 'event after reconnect');
  });

  it('answers 404/503 and ends the response for non-members and before start; stop() ends every stream and is idempotent', async () => {
    const hub = new SseHub({ path: '/g/events' }, { logger });
    hub.addMember(1);
    const early = new FakeResponse();
    expect(hub.attach(1, early)).toBe(false);
    expect(early.head?.status).toBe(503);
    expect(early.writableEnded).toBe(true);
    await hub.start();
    const stranger = new FakeResponse();
    expect(hub.attach(2, stranger)).toBe(false);
    expect(stranger.head?.status).toBe(404);
    expect(stranger.written).toEqual([JSON.stringify({ error: 'no member 2 on this stream' })]);
    expect(stranger.writableEnded).toBe(true);
    expect(hub.attach(1, stranger)).toBe(false); // an ended response is left alone
    expect(hub.streamCount).toBe(0);
    const fake = new FakeResponse();
    expect(hub.attach(1, fake)).toBe(true);
    expect(fake.head).toEqual({ status: 200, headers: expect.objectContaining({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }) });
    await hub.stop();
    await hub.stop();
    expect(fake.writableEnded).toBe(true);
    expect(hub.streamCount).toBe(0);
  });
});

/** A response whose socket never drains: the backpressure case. */
class FakeResponse extends EventEmitter implements SseResponse {
  head: { status: number; headers: Record<string, string> } | undefined;
  written: string[] = [];
  writableLength = 0;
  writableEnded = false;
  destroyed = false;
  writeHead(status: number, headers: Record<string, string>) {
    this.head = { status, headers };
  }
  write(chunk: string): boolean {
    this.written.push(chunk);
    this.writableLength += chunk.length;
    return this.writableLength < 16_384;
  }
  end() {
    this.writableEnded = true;
    this.emit('close');
  }
}

describe('SseHub backpressure', () => {
  it('drops and counts events for a slow client while the others get everything', async () => {
    const hub = new SseHub({ path: '/e', maxBufferedBytes: 64 * 1024 }, { logger });
    await hub.start();
    cleanups.push(() => hub.stop());
    const slow = new FakeResponse();
    const fast = new FakeResponse();
    hub.addMember(1);
    hub.addMember(2);
    hub.attach(1, slow);
    hub.attach(2, fast);
    for (let i = 0; i < 10; i++) {
      hub.multicast(frame(MessageType.Heartbeat, i, 20_000));
      fast.writableLength = 0; // this one drains
    }
    // 20,000 bytes → 26,700 characters of base64 per event: the slow one holds 3 and drops 7.
    expect(fast.written.filter((w) => w.startsWith('event:'))).toHaveLength(10);
    expect(slow.written.filter((w) => w.startsWith('event:'))).toHaveLength(3);
    expect(hub.counters.dropped.get('slow-client')).toBe(7);
    expect(hub.counters.datagramsOut).toBe(13);
  });

  it('replaces a member\'s older stream with a newer one', async () => {
    const hub = new SseHub({ path: '/e' }, { logger });
    await hub.start();
    cleanups.push(() => hub.stop());
    hub.addMember(1);
    const first = new FakeResponse();
    const second = new FakeResponse();
    hub.attach(1, first);
    hub.attach(1, second);
    expect(first.writableEnded).toBe(true);
    expect(hub.streamCount).toBe(1);
    hub.multicast(frame(MessageType.Heartbeat, 1));
    expect(second.written.some((w) => w.startsWith('event:'))).toBe(true);
    expect(first.written.some((w) => w.startsWith('event:'))).toBe(false);
  });
});

describe('SseMemberTransport parsing and reconnects (fake client)', () => {
  it('parses chunks cut anywhere, counts garbage, reconnects with growing jittered delays', async () => {
    const b64 = Buffer.from([1, 2, 3]).toString('base64');
    const streams: (string | Uint8Array)[][] = [
      [': hi\n\nevent: datag', 'ram\ndata: ', b64.slice(0, 2), b64.slice(2) + '\n', '\n'],
      [new TextEncoder().encode(`event: datagram\ndata: ${b64}\n\nevent: other\ndata: x\n\n`), 'event: datagram\ndata: !!!!\n\n'],
      ['junk junk\n\n\n', `event: datagram\ndata: ${'A'.repeat(300)}\n\n`, `event: datagram\ndata: ${b64}\n\n`],
    ];
    const paths: string[] = [];
    let opened = 0;
    const client: SseHttpClient = {
      async *stream(path) {
        paths.push(path);
        const chunks = streams[opened++];
        if (!chunks) throw new Error('connection refused');
        for (const c of chunks) yield c;
      },
      post: async () => {},
    };
    const delays: number[] = [];
    const t = new SseMemberTransport({ path: '/e', maxLineLength: 200, backoff: { initialMs: 100, maxMs: 400 } }, {
      client, logger, random: () => 0.5,
      sleep: async (ms) => {
        delays.push(ms);
        if (delays.length > 6) void t.stop(); // not awaited: stop() waits for this loop
      },
    });
    const got: Uint8Array[] = [];
    t.onDatagram((b) => got.push(b));
    await t.start();
    await until(() => delays.length > 6, 'reconnect attempts');
    await t.stop();
    expect(got).toEqual([Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)]);
    expect(Object.fromEntries(t.counters.dropped)).toEqual({ 'bad-event': 2, 'line-too-long': 1 });
    expect(t.stats.connects).toBe(3);
    // Each opened stream resets the delay; failures double it up to the bound.
    expect(delays).toEqual([100, 100, 100, 200, 400, 400, 400]);
    expect(paths.every((p) => p === '/e')).toBe(true);
  });

  it('posts to the datagram path with the scope, bounds POSTs in flight, counts failures', async () => {
    const posted: string[] = [];
    const pending: (() => void)[] = [];
    const client: SseHttpClient = {
      async *stream(_path, signal) {
        yield ': open\n\n';
        await new Promise((r) => signal.addEventListener('abort', r));
      },
      post: (path) => {
        posted.push(path);
        if (path.includes('agent')) return Promise.reject(new Error('503'));
        return new Promise<void>((r) => pending.push(r));
      },
    };
    const t = new SseMemberTransport({ path: '/v1/groups/g/events?memberId=4', maxInFlight: 2 }, { client, logger });
    await t.start();
    await t.whenConnected();
    t.sendSubgroup(frame(MessageType.DataMethod1, 1));
    t.sendSubgroup(frame(MessageType.DataMethod1, 2));
    t.sendSubgroup(frame(MessageType.DataMethod1, 3)); // backlog
    for (const r of pending) r();
    await new Promise((r) => setTimeout(r, 0));
    t.sendAgent(frame(MessageType.DataUp, 4));
    t.sendSubgroup(new Uint8Array(0));
    await new Promise((r) => setTimeout(r, 0));
    await t.stop();
    expect(posted).toEqual([
      '/v1/groups/g/datagram?memberId=4&scope=subgroup',
      '/v1/groups/g/datagram?memberId=4&scope=subgroup',
      '/v1/groups/g/datagram?memberId=4&scope=agent',
    ]);
    expect(Object.fromEntries(t.counters.dropped)).toEqual({ 'send-backlog': 1, 'send-error': 1, empty: 1 });
    expect(defaultPostPath('/a/b/events')).toBe('/a/b/datagram');
  });
});

// Type check: the hub takes a real http.ServerResponse (fastify's reply.raw).
export const _acceptsServerResponse = (hub: SseHub, res: ServerResponse) => hub.attach(1, res);
