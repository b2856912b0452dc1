/**
 * The control plane's routes (fastify over HTTPS with mutual TLS; DESIGN.md "Planes"). Every
 * route runs after the mTLS hook has set `request.identity`; every body is parsed by the zod
 * schema of src/wire/control.ts. Errors are JSON `{ error, reason }` with the right status:
 * 400 bad input, 403 refused by the ACL, 404 unknown member, 409 pending, 429 rate-limited.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IolusError, PolicyError, UsageError } from '../errors.js';
import type { MtlsServer } from '../pki/mtlsServer.js';
import type { Role } from '../pki/roles.js';
import { JoinRequest, LeaveRequest, RefreshRequest, type JoinGrant } from '../wire/control.js';
import type { KeyDaemon } from './daemon.js';

const MemberIdQuery = z.object({ memberId: z.coerce.number().int().min(1).max(0xffff_ffff) }).strict();
const DatagramQuery = z.object({ memberId: z.coerce.number().int().min(1).max(0xffff_ffff), scope: z.enum(['subgroup', 'agent']).optional() }).strict();
const VoidBody = z.object({ memberId: z.number().int().min(1).max(0xffff_ffff), epoch: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict();
const ExpelParams = z.object({ id: z.coerce.number().int().min(1).max(0xffff_ffff) }).strict();

function fail(reply: FastifyReply, status: number, error: string, reason: string): FastifyReply {
  return reply.code(status).send({ error, reason });
}

function parse<S extends z.ZodType>(schema: S, value: unknown, reply: FastifyReply): z.infer<S> | undefined {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data as z.infer<S>;
  fail(reply, 400, 'bad-request', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return undefined;
}

/** Maps the state machines' errors to HTTP. */
function refuse(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof PolicyError) return fail(reply, 403, 'forbidden', err.message);
  if (err instanceof UsageError) {
    if (err.code === 'agent.unknown-member') return fail(reply, 404, 'unknown-member', err.message);
    if (err.code === 'agent.pending') return fail(reply, 409, 'pending', err.message);
    if (err.code === 'agent.ended') return fail(reply, 410, 'ended', err.message);
    return fail(reply, 409, 'conflict', err.message);
  }
  if (err instanceof IolusError) return fail(reply, 400, 'bad-request', err.message);
  throw err;
}

function requireRole(req: FastifyRequest, reply: FastifyReply, roles: readonly Role[]): boolean {
  if (roles.includes(req.identity.role)) return true;
  fail(reply, 403, 'forbidden', `role ${req.identity.role} may not use ${req.routeOptions.url}; needs ${roles.join(' or ')}`);
  return false;
}

export function registerControlApi(app: MtlsServer, d: KeyDaemon): void {
  const group = d.config.group;

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      d.metrics.inc('iolus_http_bad_requests_total', 'Requests refused as malformed or oversized', { cause: 'oversized' });
      return fail(reply, 400, 'bad-request', `body larger than ${d.config.limits.bodyLimit} bytes`);
    }
    if (status < 500) {
      d.metrics.inc('iolus_http_bad_requests_total', 'Requests refused as malformed or oversized', { cause: 'malformed' });
      return fail(reply, 400, 'bad-request', err.message);
    }
    d.log.error({ err: err.message }, 'control handler failed');
    return fail(reply, 500, 'internal', 'internal error');
  });

  app.addHook('preHandler', async (req, reply) => {
    const p = req.params as { group?: string };
    if (p.group !== undefined && p.group !== group) return fail(reply, 404, 'unknown-group', `this agent serves ${group}, not ${p.group}`);
  });

  app.post('/v1/groups/:group/join', async (req, reply) => {
    const limited = d.joinLimiter.take(req.identity.principal, Date.now());
    if (!limited.ok) {
      d.metrics.inc('iolus_join_refused_total', 'Joins refused', { reason: 'rate-limited' });
      reply.header('retry-after', Math.ceil(limited.retryAfterMs / 1000));
      return fail(reply, 429, 'rate-limited', `too many joins from ${req.identity.principal}; retry in ${limited.retryAfterMs} ms`);
    }
    const body = parse(JoinRequest, req.body, reply);
    if (!body) return reply;
    if (body.group !== group) return fail(reply, 404, 'unknown-group', `this agent serves ${group}, not ${body.group}`);
    try {
      const grant: JoinGrant = await d.join(req.identity, body);
      return reply.send(grant);
    } catch (err) {
      d.metrics.inc('iolus_join_refused_total', 'Joins refused', { reason: err instanceof PolicyError ? 'acl' : 'other' });
      return refuse(reply, err);
    }
  });

  app.post('/v1/groups/:group/refresh', async (req, reply) => {
    const body = parse(RefreshRequest, req.body, reply);
    if (!body) return reply;
    try {
      return reply.send(d.refresh(req.identity.principal, body.memberId, body.subtree));
    } catch (err) {
      return refuse(reply, err);
    }
  });

  app.post('/v1/groups/:group/leave', async (req, reply) => {
    const body = parse(LeaveRequest, req.body, reply);
    if (!body) return reply;
    try {
      d.leave(req.identity.principal, body.memberId);
      return reply.code(204).send();
    } catch (err) {
      return refuse(reply, err);
    }
  });

  app.get('/v1/groups/:group/state', async (req, reply) => {
    const q = parse(MemberIdQuery, req.query, reply);
    if (!q) return reply;
    try {
      return reply.send(d.node.agent.catchUp(q.memberId, req.identity.principal));
    } catch (err) {
      return refuse(reply, err);
    }
  });

  app.get('/v1/groups/:group/events', async (req, reply) => {
    const q = parse(MemberIdQuery, req.query, reply);
    if (!q) return reply;
    const m = d.node.agent.members.get(q.memberId);
    if (!m || m.principal !== req.identity.principal) return fail(reply, 404, 'unknown-member', `no member ${q.memberId} of ${req.identity.principal}`);
    if (!d.sse) return fail(reply, 409, 'conflict', 'this subgroup does not use the sse transport');
    reply.hijack();
    d.sse.attach(q.memberId, reply.raw);
    return reply;
  });

  // An SSE member's datagram: the raw bytes, as a UDP member would send them.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/v1/groups/:group/datagram', async (req, reply) => {
    const q = parse(DatagramQuery, req.query, reply);
    if (!q) return reply;
    if (!Buffer.isBuffer(req.body) || req.body.length === 0) return fail(reply, 400, 'bad-request', 'body: one datagram as application/octet-stream');
    const m = d.node.agent.members.get(q.memberId);
    if (!m || m.principal !== req.identity.principal) return fail(reply, 404, 'unknown-member', `no member ${q.memberId} of ${req.identity.principal}`);
    if (!d.sse) return fail(reply, 409, 'conflict', 'this subgroup does not use the sse transport');
    const r = d.sse.receive(q.memberId, new Uint8Array(req.body), { ...(q.scope ? { scope: q.scope } : {}), address: req.ip });
    if (!r.ok) return fail(reply, 400, 'bad-request', `datagram refused: ${r.cause}`);
    return reply.code(202).send();
  });

  // A child intermediary expelled someone who held the pending next group key.
  app.post('/v1/groups/:group/void', async (req, reply) => {
    if (!requireRole(req, reply, ['intermediary'])) return reply;
    const body = parse(VoidBody, req.body, reply);
    if (!body) return reply;
    const m = d.node.agent.members.get(body.memberId);
    if (!m || m.principal !== req.identity.principal) return fail(reply, 404, 'unknown-member', `no member ${body.memberId} of ${req.identity.principal}`);
    d.voidFromChild(body.epoch);
    return reply.code(202).send({ accepted: true });
  });

  app.post('/v1/admin/roll', async (req, reply) => {
    if (!requireRole(req, reply, ['admin'])) return reply;
    try {
      return reply.send({ epoch: d.rollNow() });
    } catch (err) {
      return refuse(reply, err);
    }
  });

  app.get('/healthz', async (_req, reply) => reply.send(d.health()));

  app.get('/metrics', async (req, reply) => {
    if (!requireRole(req, reply, ['admin', 'controller', 'intermediary'])) return reply;
    return reply.type('text/plain; version=0.0.4').send(d.renderMetrics());
  });

  app.get('/v1/admin/members', async (req, reply) => {
    if (!requireRole(req, reply, ['admin'])) return reply;
    return reply.send({ members: d.memberList() });
  });

  app.post('/v1/admin/members/:id/expel', async (req, reply) => {
    if (!requireRole(req, reply, ['admin'])) return reply;
    const p = parse(ExpelParams, req.params, reply);
    if (!p) return reply;
    try {
      d.expel(p.id, req.identity.principal);
      return reply.send({ expelled: p.id, epoch: d.node.agent.epoch });
    } catch (err) {
      return refuse(reply, err);
    }
  });

  app.post('/v1/admin/rekey', async (req, reply) => {
    if (!requireRole(req, reply, ['admin'])) return reply;
    d.rekeyNow();
    return reply.send({ epoch: d.node.agent.epoch });
  });

  app.get('/v1/admin/tree', async (req, reply) => {
    if (!requireRole(req, reply, ['admin', 'controller', 'intermediary'])) return reply;
    return reply.send(await d.subtreeStatus());
  });
}
