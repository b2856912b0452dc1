/**
 * The directory's HTTP API (JSON over HTTPS with mutual TLS): the zod schemas the server parses
 * every input with and the client parses every answer with.
 *
 *   POST   /v1/groups/:group/agents   register or refresh the calling agent  (agent certificate of the group's CA)
 *   DELETE /v1/groups/:group/agents   unregister the calling agent
 *   GET    /v1/groups/:group/agents   lookup: the group's agents, nearest first  (?site=<name>&limit=<n>)
 *   GET    /v1/groups                 sd-style view: every group the caller may see, with its agents
 *   GET    /v1/health                 constant answer (liveness; the benchmark's baseline)
 *   GET    /v1/stats                  counters (registrations, lookups, refusals by cause)
 *
 * Errors are `{ error, reason }`: 400 bad-request, 401 unauthenticated, 403 forbidden,
 * 404 unknown-group, 429 capacity.
 */
import { z } from 'zod';
import { GroupName } from '../../wire/control.js';

export { GroupName };

export const SiteName = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/, 'a site name: letters, digits, dot, dash, underscore; at most 64');

/** An agent's control-plane origin: `https://host:port`, nothing else. */
export const AgentUrl = z.string().max(300).refine((s) => {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return false;
  }
  return u.protocol === 'https:' && u.hostname !== '' && u.username === '' && u.password === '' && (u.pathname === '/' || u.pathname === '') && u.search === '' && u.hash === '' && !s.endsWith('/');
}, 'an https:// origin (https://host:port, no path, query or credentials)');

export const Fingerprint = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 fingerprint: 64 lower-case hex digits');

export const GroupParams = z.strictObject({ group: GroupName });

export const RegisterRequest = z.strictObject({
  url: AgentUrl,
  /** Depth in the tree, controller 0 (keyd's agent.level). */
  level: z.number().int().min(0).max(32),
  /** Current members of the agent's subgroup: its load. */
  members: z.number().int().min(0).max(100_000_000).default(0),
  /** Seconds; the directory clamps it to its configured bounds and answers what it kept. */
  ttl: z.number().int().min(1).max(86_400),
  /** The agent's site, if it knows it (otherwise the directory places it by address). */
  site: SiteName.optional(),
});
export type RegisterRequest = z.input<typeof RegisterRequest>;

export const RegisterResponse = z.object({
  group: GroupName,
  principal: z.string(),
  /** `added`, `updated` or `refreshed`. */
  status: z.enum(['added', 'updated', 'refreshed']),
  /** The TTL the directory kept (s). */
  ttl: z.number(),
  expiresInMs: z.number(),
});
export type RegisterResponse = z.infer<typeof RegisterResponse>;

export const LookupQuery = z.strictObject({
  /** The asker's site, if it knows it (otherwise the directory places it by address). */
  site: SiteName.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export const AgentEntry = z.object({
  principal: z.string(),
  role: z.enum(['controller', 'intermediary']),
  url: z.string(),
  level: z.number(),
  members: z.number(),
  site: z.string().nullable(),
  fingerprint: Fingerprint,
  expiresInMs: z.number(),
  /** Where the agent stands from the asker: its site, its network prefix, or elsewhere. */
  tier: z.enum(['site', 'prefix', 'elsewhere']),
});
export type AgentEntry = z.infer<typeof AgentEntry>;

export const LookupResponse = z.object({
  group: GroupName,
  asker: z.object({ address: z.string().nullable(), site: z.string().nullable() }),
  agents: z.array(AgentEntry),
});
export type LookupResponse = z.infer<typeof LookupResponse>;

export const ListResponse = z.object({
  groups: z.array(z.object({ group: GroupName, agents: z.array(AgentEntry) })),
});
export type ListResponse = z.infer<typeof ListResponse>;

export const StatsResponse = z.object({
  registrations: z.number(),
  groups: z.number(),
  lookups: z.number(),
  registers: z.number(),
  unregisters: z.number(),
  expired: z.number(),
  refused: z.record(z.string(), z.number()),
});
export type StatsResponse = z.infer<typeof StatsResponse>;

export const ErrorBody = z.object({ error: z.string(), reason: z.string() });

/** zod issues as one line: `field: why; field: why`. */
export function issuesText(error: z.ZodError, what = 'body'): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : what}: ${i.message}`).join('; ');
}
