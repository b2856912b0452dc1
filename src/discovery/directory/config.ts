/**
 * Directory configuration: one YAML file, validated by zod before anything listens; a bad file
 * yields one line per problem naming the field. Relative paths are resolved against the file's
 * directory.
 *
 *   listen: { host: 10.0.0.1, port: 7600 }
 *   tls: { cert: directory.crt, key: directory.key }      # its own server certificate
 *   groups:                                                # group → its CA: trusted for that group only
 *     g1: { ca: pki-g1/ca.crt }
 *   sites:                                                 # locality: the asker's site first
 *     - { name: site-a, prefixes: [10.1.0.0/16] }
 *   locality: { ipv4PrefixLength: 24, ipv6PrefixLength: 64 }
 *   registrations: { minTtl: 5s, maxTtl: 1h, maxAgentsPerGroup: 256, maxRegistrations: 100000 }
 *   lookups: members        # or public (see server.ts)
 *   sap: { enabled: true, source: 10.0.0.1, address: 239.255.255.255 }
 */
import { readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { duration } from '../../util/duration.js';
import { GroupName, SiteName } from './api.js';
import { parseCidr, parseIp } from './prefix.js';

const Address = z.string().refine((s) => parseIp(s) !== undefined && !s.includes('%'), 'an IPv4 or IPv6 address');
const Prefix = z.string().refine((s) => parseCidr(s) !== undefined, 'an address prefix like 10.1.0.0/16 or fd00::/8');

/** RFC 2974 §3: the SAP address of the IPv4 administratively scoped range's top, or the global one. */
export const SAP_DEFAULT_ADDRESS = '239.255.255.255';
export const SAP_PORT = 9875;

export const SapConfig = z.strictObject({
  enabled: z.boolean().default(false),
  /** The directory's IPv4 address on the announcing interface: origin of the SAP header and SDP o=. */
  source: z.string().refine(isIPv4, 'an IPv4 address').optional(),
  address: z.string().refine((s) => isIPv4(s) && /^(22[4-9]|23\d)\./.test(s), 'an IPv4 multicast address').default(SAP_DEFAULT_ADDRESS),
  port: z.number().int().min(1).max(65_535).default(SAP_PORT),
  /** Multicast TTL; 1 keeps announcements on the link. */
  ttl: z.number().int().min(1).max(255).default(1),
  /** Bandwidth all announcements on the SAP group may use (RFC 2974 §3.1: 4000 bit/s unless configured). */
  bandwidth: z.number().int().min(100).max(10_000_000).default(4000),
  /** Floor of the announcement interval: RFC 2974 §3.1 says 300 s; shorter is for tests only. */
  minInterval: duration({ min: 100, max: 86_400_000 }).default(300_000),
}).superRefine((s, ctx) => {
  if (s.enabled && !s.source) ctx.addIssue({ code: 'custom', path: ['source'], message: 'SAP needs the IPv4 address to announce from' });
});

export const DirectoryConfig = z.strictObject({
  listen: z.strictObject({
    host: Address.default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(7600),
  }).prefault({}),
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }),
  groups: z.record(GroupName, z.strictObject({ ca: z.string().min(1) })).refine((g) => Object.keys(g).length > 0, 'list at least one group and its CA'),
  sites: z.array(z.strictObject({ name: SiteName, prefixes: z.array(Prefix).min(1) })).default([]),
  locality: z.strictObject({
    ipv4PrefixLength: z.number().int().min(0).max(32).default(24),
    ipv6PrefixLength: z.number().int().min(0).max(128).default(64),
  }).prefault({}),
  registrations: z.strictObject({
    minTtl: duration({ min: 1000, max: 86_400_000 }).default(5_000),
    maxTtl: duration({ min: 1000, max: 86_400_000 }).default(3_600_000),
    maxAgentsPerGroup: z.number().int().min(1).max(100_000).default(256),
    maxRegistrations: z.number().int().min(1).max(10_000_000).default(100_000),
  }).prefault({}),
  /** Who may look up: `members` (a certificate of the group's CA) or `public` (anyone; read-only). */
  lookups: z.enum(['members', 'public']).default('members'),
  sap: SapConfig.prefault({}),
  limits: z.strictObject({
    bodyLimit: z.number().int().min(256).max(1 << 20).default(16 * 1024),
  }).prefault({}),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
}).superRefine((c, ctx) => {
  if (c.registrations.minTtl > c.registrations.maxTtl) ctx.addIssue({ code: 'custom', path: ['registrations', 'minTtl'], message: 'above maxTtl' });
  const names = c.sites.map((s) => s.name);
  for (const [i, n] of names.entries()) if (names.indexOf(n) !== i) ctx.addIssue({ code: 'custom', path: ['sites', i, 'name'], message: `site ${n} is listed twice` });
});
export type DirectoryConfig = z.output<typeof DirectoryConfig>;
export type DirectoryConfigInput = z.input<typeof DirectoryConfig>;

function problemsOf(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
}

/** Parses a config object; paths inside are resolved against `baseDir`. Throws ValidationError. */
export function parseDirectoryConfig(raw: unknown, baseDir: string): DirectoryConfig {
  const r = DirectoryConfig.safeParse(raw);
  if (!r.success) throw new ValidationError('directory.config', problemsOf(r.error));
  const c = r.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  c.tls = { cert: abs(c.tls.cert), key: abs(c.tls.key) };
  for (const g of Object.values(c.groups)) g.ca = abs(g.ca);
  return c;
}

export function loadDirectoryConfig(path: string): DirectoryConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('directory.config', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : '';
    throw new ValidationError('directory.config', `${path}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ValidationError('directory.config', `${path}: expected a mapping at the top level`);
  return parseDirectoryConfig(raw, dirname(resolve(path)));
}
