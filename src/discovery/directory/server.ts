/**
 * DirectoryServer: `iolus directory` (paper §8.3, solution 1: agents tell a well-known directory
 * when they start or stop serving a group; members ask it for their local agent). Fastify over
 * HTTPS, TLS 1.3; the API is in api.ts, the soft state in registry.ts, the order in locality.ts,
 * whom it trusts for which group in trust.ts, and it can announce the groups over SAP (../sap).
 *
 * Who may do what:
 *   - register / refresh / unregister: an agent (controller or intermediary) whose certificate
 *     comes from the CA of the group it registers for, names that group, and covers the host of
 *     the URL it registers (members will check exactly that when they connect);
 *   - look up, list: `lookups: members` (default) wants a certificate from the group's CA, any
 *     role: a newcomer has one, and strangers learn nothing about the deployment. `lookups:
 *     public` answers anyone, read-only: what a lookup returns (names, URLs, certificate
 *     fingerprints) is public, as an sd announcement is, and grants nothing, since a member still
 *     authenticates the agent it is sent to by its certificate. Choose it when SAP is on anyway.
 *
 * The TLS layer requests a client certificate but lets a connection without one (or with one
 * from a CA it does not know) finish the handshake, so that every refusal is an HTTP answer
 * with its reason, counted by cause, and a public lookup needs no certificate at all.
 * Every input is parsed by zod; nothing a client sends can throw out of a handler.
 */
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import { checkServerIdentity, TLSSocket, type PeerCertificate } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { PolicyError } from '../../errors.js';
import { isAgentRole, type AgentRole } from '../../pki/roles.js';
import { systemClock, type Clock } from '../../util/clock.js';
import { createLogger, type Logger } from '../../util/log.js';
import { GroupParams, issuesText, LookupQuery, RegisterRequest, type StatsResponse } from './api.js';
import type { DirectoryConfig } from './config.js';
import { SiteMap } from './locality.js';
import { LookupView } from './lookupView.js';
import { Registry } from './registry.js';
import type { Caller, GroupTrust } from './trust.js';
import { DirectorySap } from './sapBridge.js';
import type { SapSender } from '../sap/announcer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking, from the TLS connection (directory server only). */
    caller: Caller;
  }
}

type App = FastifyInstance<https.Server, IncomingMessage, ServerResponse, FastifyBaseLogger>;

export interface DirectoryInit {
  config: DirectoryConfig;
  /** PEM of the directory's own server certificate and key. */
  tls: { cert: string; key: string };
  trust: GroupTrust;
}

export interface DirectoryDeps {
  clock?: Clock;
  logger?: Logger;
  /** SAP packets go here instead of a UDP socket (tests). */
  sapSender?: SapSender;
}

type RefusalCause = 'no-certificate' | 'other-ca' | 'identity' | 'group-mismatch' | 'expired' | 'wrong-group' | 'not-agent' | 'url-not-certified' | 'malformed' | 'unknown-group' | 'capacity';

export class DirectoryServer {
  readonly registry: Registry;
  readonly log: Logger;
  private readonly counters = { lookups: 0, registers: 0, unregisters: 0, expired: 0 };
  private readonly refused = new Map<RefusalCause, number>();
  private readonly view: LookupView;
  private readonly clock: Clock;
  private app!: App;
  private sweeper: NodeJS.Timeout | undefined;
  private sap: DirectorySap | undefined;
  private stopped = false;

  private constructor(private readonly init: DirectoryInit, private readonly deps: DirectoryDeps) {
    const c = init.config;
    this.clock = deps.clock ?? systemClock;
    this.log = deps.logger ?? createLogger('directory');
    this.registry = new Registry({ maxAgentsPerGroup: c.registrations.maxAgentsPerGroup, maxRegistrations: c.registrations.maxRegistrations }, this.clock);
    this.view = new LookupView(this.registry, new SiteMap(c.sites), { ipv4: c.locality.ipv4PrefixLength, ipv6: c.locality.ipv6PrefixLength }, this.clock);
  }

  static async start(init: DirectoryInit, deps: DirectoryDeps = {}): Promise<DirectoryServer> {
    const d = new DirectoryServer(init, deps);
    await d.startInner();
    return d;
  }

  get url(): string {
    const a = this.app.server.address() as AddressInfo;
    return `https://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  stats(): StatsResponse {
    return {
      registrations: this.registry.size,
      groups: this.registry.groupNames().length,
      ...this.counters,
      refused: Object.fromEntries(this.refused),
    };
  }

  private async startInner(): Promise<void> {
    const c = this.init.config;
    const app = Fastify({
      logger: false,
      bodyLimit: c.limits.bodyLimit,
      routerOptions: { maxParamLength: 256 },
      connectionTimeout: 30_000,
      keepAliveTimeout: 65_000,
      forceCloseConnections: true,
      https: {
        cert: this.init.tls.cert,
        key: this.init.tls.key,
        ca: [...this.init.trust.caCertificates],
        minVersion: 'TLSv1.3',
        maxVersion: 'TLSv1.3',
        requestCert: true,
        rejectUnauthorized: false,
      },
    }) as unknown as App;
    this.app = app;
    app.server.on('tlsClientError', (err: NodeJS.ErrnoException) => this.log.debug({ code: err.code }, 'TLS handshake failed'));
    app.decorateRequest('caller', null as never);
    // Callback style (no promise per request): this runs on every request.
    app.addHook('onRequest', (req, _reply, done) => {
      const socket = req.raw.socket;
      req.caller = socket instanceof TLSSocket ? this.init.trust.callerOf(socket, this.clock.now()) : { kind: 'anonymous', reason: 'not a TLS connection' };
      done();
    });
    app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
      const status = err.statusCode ?? 500;
      if (status < 500) {
        this.refuse('malformed');
        const why = err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `body larger than ${c.limits.bodyLimit} bytes` : err.message;
        return fail(reply, 400, 'bad-request', why);
      }
      this.log.error({ err: err.message }, 'directory handler failed');
      return fail(reply, 500, 'internal', 'internal error');
    });
    app.setNotFoundHandler((req, reply) => fail(reply, 404, 'not-found', `no route ${req.method} ${req.url.slice(0, 100)}`));
    this.routes(app);

    if (c.sap.enabled) this.sap = await DirectorySap.start(c.sap, this.registry, this.deps.sapSender, this.log);
    this.registry.onChange((ch) => {
      if (ch.kind === 'removed') this.log.info({ event: ch.cause === 'expired' ? 'expired' : 'unregistered', group: ch.registration.group, principal: ch.registration.principal, url: ch.registration.url }, `agent ${ch.cause}`);
      else if (ch.kind !== 'refreshed') this.log.info({ event: 'registered', status: ch.kind, group: ch.registration.group, principal: ch.registration.principal, url: ch.registration.url, level: ch.registration.level, site: ch.registration.site }, 'agent registered');
    });
    const every = Math.max(100, Math.min(1000, Math.floor(c.registrations.minTtl / 2)));
    this.sweeper = setInterval(() => {
      this.counters.expired += this.registry.sweep().length;
    }, every);
    this.sweeper.unref();
    await app.listen({ host: c.listen.host, port: c.listen.port });
    this.log.info({ event: 'start', url: this.url, groups: this.init.trust.groups.length, lookups: c.lookups, sap: c.sap.enabled ? `${c.sap.address}:${c.sap.port}` : false }, 'directory started');
  }

  private routes(app: App): void {
    const c = this.init.config;
    app.get('/v1/health', async () => ({ status: 'ok' }));

    app.get('/v1/stats', async (req, reply) => {
      if (c.lookups !== 'public' && !this.certified(req, reply)) return reply;
      return this.stats();
    });

    // Before the body is read: strangers never get their body parsed.
    const agentOnly = { onRequest: (req: FastifyRequest, reply: FastifyReply, done: () => void) => { if (this.certified(req, reply)) done(); } };

    app.post('/v1/groups/:group/agents', agentOnly, async (req, reply) => {
      const group = this.groupParam(req, reply);
      if (group === undefined) return reply;
      const who = this.registrant(req, reply, group);
      if (!who) return reply;
      const body = this.parse(RegisterRequest, req.body, reply);
      if (!body) return reply;
      const host = new URL(body.url).hostname.replace(/^\[|\]$/g, '');
      const peer = (req.raw.socket as TLSSocket).getPeerCertificate() as PeerCertificate;
      const hostError = checkServerIdentity(host, peer);
      if (hostError) {
        this.refuse('url-not-certified');
        return fail(reply, 403, 'forbidden', `url ${body.url}: the certificate of ${who.identity.principal} does not name ${host}, so no member could connect there (${hostError.message})`);
      }
      const ttlMs = Math.min(c.registrations.maxTtl, Math.max(c.registrations.minTtl, body.ttl * 1000));
      let change;
      try {
        change = this.registry.upsert({
          group, principal: who.identity.principal, role: who.role, fingerprint: who.identity.fingerprint, url: body.url,
          level: body.level, members: body.members, site: body.site, source: req.socket.remoteAddress ?? '', ttlMs,
        });
      } catch (err) {
        if (!(err instanceof PolicyError)) throw err;
        this.refuse('capacity');
        return fail(reply, 429, 'capacity', err.message);
      }
      this.counters.registers++;
      return reply.code(change.kind === 'added' ? 201 : 200).send({ group, principal: who.identity.principal, status: change.kind, ttl: ttlMs / 1000, expiresInMs: ttlMs });
    });

    app.delete('/v1/groups/:group/agents', agentOnly, async (req, reply) => {
      const group = this.groupParam(req, reply);
      if (group === undefined) return reply;
      const who = this.registrant(req, reply, group);
      if (!who) return reply;
      const removed = this.registry.unregister(group, who.identity.principal);
      this.counters.unregisters++;
      return { group, principal: who.identity.principal, removed: removed !== undefined };
    });

    app.get('/v1/groups/:group/agents', async (req, reply) => {
      const group = this.groupParam(req, reply);
      if (group === undefined) return reply;
      if (!this.mayLookUp(req, reply, group)) return reply;
      const q = this.parse(LookupQuery, req.query, reply);
      if (!q) return reply;
      this.counters.lookups++;
      const place = this.view.placeOf(req.raw.socket as TLSSocket, req.socket.remoteAddress);
      return reply.type('application/json; charset=utf-8').send(this.view.answer(group, place, q.site ?? place.site, q.limit));
    });

    app.get('/v1/groups', async (req, reply) => {
      const caller = req.caller;
      if (c.lookups !== 'public' && !this.certified(req, reply)) return reply;
      const visible = this.registry.groupNames().filter((g) => c.lookups === 'public' || (caller.kind === 'certified' && caller.group === g));
      const place = this.view.placeOf(req.raw.socket as TLSSocket, req.socket.remoteAddress);
      return { groups: visible.map((g) => ({ group: g, agents: this.view.entries(g, place, place.site) })) };
    });
  }

  /** A certificate this directory accepts (any group, any role); otherwise answers 401/403. */
  private certified(req: FastifyRequest, reply: FastifyReply): boolean {
    const caller = req.caller;
    if (caller.kind === 'certified') return true;
    if (caller.kind === 'anonymous') {
      this.refuse('no-certificate');
      fail(reply, 401, 'unauthenticated', `${caller.reason}: present a certificate from your group's CA`);
    } else {
      this.refuse(caller.cause);
      fail(reply, 403, 'forbidden', caller.reason);
    }
    return false;
  }

  /** The agent registering for `group`: certificate of that group's CA, agent role. */
  private registrant(req: FastifyRequest, reply: FastifyReply, group: string): { identity: Extract<Caller, { kind: 'certified' }>['identity']; role: AgentRole } | undefined {
    const caller = req.caller;
    if (caller.kind !== 'certified') return undefined; // answered by the onRequest check
    if (caller.group !== group) {
      this.refuse('wrong-group');
      fail(reply, 403, 'forbidden', `${caller.identity.principal} is certified by the CA of group ${caller.group} and does not serve ${group}`);
      return undefined;
    }
    const role = caller.identity.role;
    if (!isAgentRole(role)) {
      this.refuse('not-agent');
      fail(reply, 403, 'forbidden', `${caller.identity.principal} carries role ${role}; only agents (controller, intermediary) register`);
      return undefined;
    }
    return { identity: caller.identity, role };
  }

  private mayLookUp(req: FastifyRequest, reply: FastifyReply, group: string): boolean {
    if (this.init.config.lookups === 'public') return true;
    if (!this.certified(req, reply)) return false;
    const caller = req.caller as Extract<Caller, { kind: 'certified' }>;
    if (caller.group === group) return true;
    this.refuse('wrong-group');
    fail(reply, 403, 'forbidden', `a certificate of group ${caller.group} cannot look up ${group}`);
    return false;
  }

  private groupParam(req: FastifyRequest, reply: FastifyReply): string | undefined {
    const p = this.parse(GroupParams, req.params, reply, 'group');
    if (!p) return undefined;
    if (!this.init.trust.serves(p.group)) {
      this.refuse('unknown-group');
      fail(reply, 404, 'unknown-group', `this directory does not serve group ${p.group}`);
      return undefined;
    }
    return p.group;
  }

  private parse<S extends z.ZodType>(schema: S, value: unknown, reply: FastifyReply, what = 'body'): z.output<S> | undefined {
    const r = schema.safeParse(value ?? {});
    if (r.success) return r.data as z.output<S>;
    this.refuse('malformed');
    fail(reply, 400, 'bad-request', issuesText(r.error, what));
    return undefined;
  }

  private refuse(cause: RefusalCause): void {
    this.refused.set(cause, (this.refused.get(cause) ?? 0) + 1);
  }

  /** Withdraws the SAP announcements, closes every connection. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.sweeper);
    await this.sap?.stop();
    await this.app.close();
    this.log.info({ event: 'stop' }, 'directory stopped');
  }
}

function fail(reply: FastifyReply, status: number, error: string, reason: string): FastifyReply {
  return reply.code(status).send({ error, reason });
}
