/**
 * Configuration of the mDNS transport, advertiser and browser (zod; errors name the field).
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { AgentRole, Fingerprint, GroupName } from './agentTxt.js';

export const TransportConfig = z.object({
  /** Interface names to use; default: every non-loopback interface that is up and has an address. */
  interfaces: z.array(z.string().min(1)).min(1).optional(),
  /** Also run over IPv6 (ff02::fb) where the interface has a link-local address. */
  ipv6: z.boolean().default(true),
  /** How long start() waits for the sockets (ms). */
  startTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
});
export type TransportConfig = z.output<typeof TransportConfig>;
export type TransportConfigInput = z.input<typeof TransportConfig>;

// RFC 6762 §10 recommends 120 s for records naming a host and 75 min for the others; an Iolus
// agent is soft state (paper §6.3), so PTR/TXT default to 120 s too: a crashed agent that sent
// no goodbye falls out of caches within two minutes.
const Ttl = z.number().int().min(1).max(4500);

export const AdvertiserConfig = z.object({
  group: GroupName,
  role: AgentRole,
  level: z.number().int().min(0).max(255),
  fingerprint: Fingerprint,
  /** The agent's control-plane (HTTPS) port: the SRV target port. */
  port: z.number().int().min(1).max(65535),
  /** Instance label; default `<group> <role> <host>:<port>` cut to 63 bytes. */
  instance: z.string().min(1).optional(),
  /** Host label or `name.local`; default `iolus-<hostname>`. */
  hostName: z.string().min(1).optional(),
  ttl: z.object({ host: Ttl.default(120), service: Ttl.default(120) }).prefault({}),
  /** Unsolicited announcements on start: at least two (RFC 6762 §8.3), at most eight. */
  announcements: z.number().int().min(2).max(8).default(3),
  /** Re-announce period (s); default 80% of the shortest TTL, so caches never run dry. */
  reannounceSeconds: z.number().min(1).max(3600).optional(),
});
export type AdvertiserConfig = z.output<typeof AdvertiserConfig>;
export type AdvertiserConfigInput = z.input<typeof AdvertiserConfig>;

export const BrowserConfig = z.object({
  /** Cache bound (records). */
  maxEntries: z.number().int().min(16).max(100_000).default(2048),
  /** Re-query records still of interest at 80-95% of their TTL (RFC 6762 §5.2). */
  maintain: z.boolean().default(true),
});
export type BrowserConfig = z.output<typeof BrowserConfig>;
export type BrowserConfigInput = z.input<typeof BrowserConfig>;

export const BrowseOptions = z.object({
  /** How long to look (ms). browse() always waits this long; resolve() returns earlier once it has an answer. */
  timeoutMs: z.number().int().min(1).max(600_000).default(3_000),
  signal: z.instanceof(AbortSignal).optional(),
});
export type BrowseOptions = z.input<typeof BrowseOptions>;

export const ResolveOptions = BrowseOptions.extend({
  /** After the first candidate, wait this long for others (shared answers come 20-120 ms apart, RFC 6762 §6). */
  settleMs: z.number().int().min(0).max(10_000).default(150),
  /** Answer from the cache when it already holds candidates for the group. */
  useCache: z.boolean().default(true),
});
export type ResolveOptions = z.input<typeof ResolveOptions>;

/** Parses with a schema; a failure becomes a ValidationError with one problem per field. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ValidationError(
    `mdns.config`,
    r.error.issues.map((i) => `${what}${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`),
  );
}
