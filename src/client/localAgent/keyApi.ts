/**
 * The local agent's key API (issue 4): for programs that are not Node (GStreamer, ffmpeg, …).
 * HTTP on a Unix socket (mode 0600 in a 0700 directory), optionally also on 127.0.0.1 with a
 * bearer token; never on another address. Read-only: current, next, previous and by-epoch
 * keys for a label, in JSON, SDES, GStreamer hex or ffmpeg base64; an SSE stream of
 * rollovers; status.
 *
 *   GET /v1/key?label=srtp/AES_CM_128_HMAC_SHA1_80&epoch=current|next|previous|<n>&format=json|sdes|gst|ffmpeg[&mki=1]
 *   GET /v1/keys?label=…            every usable key (previous in grace, current, next)
 *   GET /v1/events                  server-sent events: `key` (a new epoch held), `activate` (a new epoch in force)
 *   GET /v1/status
 */
import http from 'node:http';
import net from 'node:net';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import type { GroupClient } from '../client.js';
import { keyLengthForLabel } from '../keyMaterial.js';
import { formatKey, keyJson, KeyFormat } from './keyFormat.js';
import { ValidationError } from '../../errors.js';
import { FastKeyPath, type FastAnswer } from './fastKeyPath.js';

const Label = z.string().min(1).max(128).regex(/^[a-z0-9][a-z0-9_.\-/]*$/i, 'label: letters, digits, _ . - /').refine((l) => {
  try {
    keyLengthForLabel(l);
    return true;
  } catch {
    return false;
  }
}, 'label: unknown SRTP profile');
const Epoch = z.union([z.enum(['current', 'next', 'previous']), z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER)]);
const KeyQuery = z.object({ label: Label, epoch: Epoch.default('current'), format: KeyFormat.default('json'), mki: z.enum(['0', '1']).optional() }).strict();
const KeysQuery = z.object({ label: Label }).strict();

export interface KeyApiOptions {
  socketPath: string;
  /** Also listen on 127.0.0.1:<port> (or [::1]) with this bearer token. */
  tcp?: { host: string; port: number; token: string };
}

export class KeyApi {
  /** What listens: net servers whose connections go to the fast path first (fastKeyPath.ts). */
  private readonly servers: net.Server[] = [];
  private readonly fastPaths: FastKeyPath[] = [];
  private readonly streams = new Set<http.ServerResponse>();
  private activeEpoch = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Validated queries by their raw URL (a pipeline asks the same few over and over). */
  private readonly queries = new Map<string, z.infer<typeof KeyQuery>>();
  /** Formatted answers by epoch, label, format, MKI flag and state (an epoch's key never changes). */
  private readonly answers = new Map<string, { body: string; type: string }>();
  pulls = 0;

  constructor(private readonly client: GroupClient, private readonly opts: KeyApiOptions) {
    if (opts.tcp && net.isIP(opts.tcp.host) && !['127.0.0.1', '::1'].includes(opts.tcp.host)) {
      throw new ValidationError('agent.tcp', `--tcp: the key API listens on 127.0.0.1 or ::1 only, not ${opts.tcp.host}`);
    }
    if (opts.tcp && opts.tcp.token.length < 16) throw new ValidationError('agent.token', 'token: at least 16 characters');
  }

  async start(): Promise<void> {
    mkdirSync(dirname(this.opts.socketPath), { recursive: true, mode: 0o700 });
    rmSync(this.opts.socketPath, { force: true });
    await this.listen(false, (s) => s.listen(this.opts.socketPath));
    chmodSync(this.opts.socketPath, 0o600);
    if (this.opts.tcp) await this.listen(true, (s) => s.listen(this.opts.tcp!.port, this.opts.tcp!.host));
    this.client.on('key', (k: { epoch: number; notBefore: number; notAfter: number }) => this.broadcast('key', { epoch: k.epoch, notBefore: new Date(k.notBefore).toISOString(), notAfter: new Date(k.notAfter).toISOString() }));
    this.client.on('state', (state: string, why: string) => this.broadcast('state', { state, why }));
    this.timer = setInterval(() => this.checkActivation(), 100);
    this.timer.unref();
  }

  /** One listener: a net server feeding the fast path, which hands what it does not answer to node:http. */
  private async listen(tcp: boolean, bind: (s: net.Server) => void): Promise<void> {
    const web = http.createServer((req, res) => this.handle(req, res, tcp));
    web.keepAliveTimeout = 60_000;
    const fast = new FastKeyPath(web, (target, authorization) => this.fastAnswer(target, authorization, tcp));
    const server = net.createServer((socket) => fast.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.removeListener('error', reject);
        resolve();
      });
      bind(server);
    });
    this.servers.push(server);
    this.fastPaths.push(fast);
  }

  get tcpPort(): number | undefined {
    const s = this.servers[1];
    const a = s?.address();
    return a && typeof a === 'object' ? a.port : undefined;
  }

  private checkActivation(): void {
    const cur = this.client.keys.ring.current(Date.now());
    if (cur && cur.epoch !== this.activeEpoch) {
      this.activeEpoch = cur.epoch;
      this.broadcast('activate', { epoch: cur.epoch, notBefore: new Date(cur.notBefore).toISOString(), notAfter: new Date(cur.notAfter).toISOString() });
    }
  }

  private broadcast(event: string, data: unknown): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of this.streams) res.write(text);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, tcp: boolean): void {
    const send = (status: number, body: unknown) => sendText(res, status, JSON.stringify(body), 'application/json');
    if (tcp && !this.authorized(req)) return send(401, { error: 'unauthenticated', reason: 'bearer token required' });
    if (req.method !== 'GET') return send(405, { error: 'method', reason: 'read-only API: GET only' });
    const raw = req.url ?? '/';
    // A key query seen before (a pipeline asks the same few over and over): no URL or schema work.
    const known = this.queries.get(raw);
    if (known) return this.key(res, known);
    const url = new URL(raw, 'http://local');
    const query = Object.fromEntries(url.searchParams);
    if (url.pathname === '/v1/status') {
      const now = Date.now();
      const ring = this.client.keys.ring;
      return send(200, {
        group: this.client.opts.group, state: this.client.status, memberId: this.client.member.memberId,
        subgroupEpoch: this.client.member.epoch, groupEpoch: ring.epoch, current: ring.current(now)?.epoch ?? null, next: ring.next(now)?.epoch ?? null,
      });
    }
    if (url.pathname === '/v1/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': iolus local agent\n\n');
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    if (this.client.status !== 'joined') return this.notJoined(res);
    if (url.pathname === '/v1/key') {
      const q = KeyQuery.safeParse(query);
      if (!q.success) return send(400, { error: 'bad-request', reason: q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      return this.key(res, this.remember(raw, q.data));
    }
    if (url.pathname === '/v1/keys') {
      const q = KeysQuery.safeParse(query);
      if (!q.success) return send(400, { error: 'bad-request', reason: q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      const now = Date.now();
      this.pulls++;
      return send(200, { keys: this.client.keysFor(q.data.label, now).map((d) => keyJson({ ...d, state: now < d.notBefore ? 'next' : now < d.notAfter ? 'current' : 'previous' })) });
    }
    return send(404, { error: 'not-found', reason: `no route ${url.pathname}` });
  }

  private notJoined(res: http.ServerResponse): void {
    sendText(res, 503, JSON.stringify({ error: 'not-joined', reason: `no membership of ${this.client.opts.group} (${this.client.status})` }), 'application/json');
  }

  /**
   * The fast path's question: a 200 answer to `GET target`, or undefined (node:http then
   * handles the request through `handle`, which reports any error).
   */
  private fastAnswer(target: string, authorization: string | undefined, tcp: boolean): FastAnswer | undefined {
    if (tcp && !this.tokenMatches(authorization ?? '')) return undefined;
    if (this.client.status !== 'joined') return undefined;
    const q = this.queries.get(target) ?? this.parseKeyQuery(target);
    return q && this.keyAnswer(q);
  }

  /** A /v1/key target's query, validated and remembered; undefined when it is anything else. */
  private parseKeyQuery(target: string): z.infer<typeof KeyQuery> | undefined {
    const url = new URL(target, 'http://local');
    if (url.pathname !== '/v1/key') return undefined;
    const q = KeyQuery.safeParse(Object.fromEntries(url.searchParams));
    return q.success ? this.remember(target, q.data) : undefined;
  }

  /** Keeps a validated key query by its raw target (a pipeline asks the same few over and over). */
  private remember(target: string, q: z.infer<typeof KeyQuery>): z.infer<typeof KeyQuery> {
    if (this.queries.size >= 256) this.queries.clear();
    this.queries.set(target, q);
    return q;
  }

  /** The key held now for a validated query, formatted once per epoch, state and form; undefined when none is held. */
  private keyAnswer(q: z.infer<typeof KeyQuery>): FastAnswer | undefined {
    const now = Date.now();
    const held = this.client.heldKey(q.epoch, now);
    if (!held) return undefined;
    this.pulls++;
    const id = `${held.key.epoch}|${held.state}|${q.format}|${q.mki ?? ''}|${q.label}`;
    let a = this.answers.get(id);
    if (!a) {
      const k = this.client.getKey({ label: q.label, epoch: held.key.epoch }, now)!;
      const out = formatKey(k, q.format, { mki: q.mki === '1' });
      a = typeof out === 'string' ? { body: `${out}\n`, type: 'text/plain' } : { body: JSON.stringify(out), type: 'application/json' };
      if (this.answers.size >= 256) this.answers.clear();
      this.answers.set(id, a);
    }
    return a;
  }

  /** GET /v1/key through node:http. */
  private key(res: http.ServerResponse, q: z.infer<typeof KeyQuery>): void {
    if (this.client.status !== 'joined') return this.notJoined(res);
    const a = this.keyAnswer(q);
    if (!a) return sendText(res, 404, JSON.stringify({ error: 'no-key', reason: `no ${q.epoch} key held for epoch ${q.epoch}` }), 'application/json');
    sendText(res, 200, a.body, a.type);
  }

  private authorized(req: http.IncomingMessage): boolean {
    return this.tokenMatches(req.headers.authorization ?? '');
  }

  private tokenMatches(h: string): boolean {
    const want = Buffer.from(`Bearer ${this.opts.tcp!.token}`);
    const got = Buffer.from(h);
    return got.length === want.length && timingSafeEqual(got, want);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const r of this.streams) r.end();
    for (const f of this.fastPaths) f.destroyAll();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    rmSync(this.opts.socketPath, { force: true });
  }
}

function sendText(res: http.ServerResponse, status: number, text: string, type: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
