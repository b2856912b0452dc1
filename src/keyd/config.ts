/**
 * keyd configuration: one YAML file per agent, validated by zod before anything starts. A bad
 * file yields one line per problem, each naming the field and why (exit code 2 in the CLI).
 * Relative paths are resolved against the file's directory.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { aclSchema } from '../pki/acl.js';
import { duration } from '../util/duration.js';
import { GroupName } from '../wire/control.js';
import { DiscoveryConfig } from './discovery.js';

const Port = z.number().int().min(1).max(65_535);
const PortOrZero = z.number().int().min(0).max(65_535);
const Address = z.string().refine((s) => isIP(s) !== 0, 'an IPv4 or IPv6 address');
const Name = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/, 'letters, digits, dot, dash, underscore; at most 64');

function isMulticastAddress(a: string): boolean {
  if (isIP(a) === 4) return a.startsWith('239.'); // admin-scoped only (RFC 2365)
  if (isIP(a) === 6) return /^ff[0-9a-f][1-8e]:/i.test(a);
  return false;
}

export const TransportConfig = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('multicast'),
    address: Address.refine(isMulticastAddress, 'an admin-scoped IPv4 group (239.0.0.0/8) or an IPv6 multicast group (ffXY::)'),
    port: Port,
    ttl: z.number().int().min(0).max(255).default(1),
    interface: Address.optional(),
  }).strict(),
  z.object({ kind: z.literal('unicast') }).strict(),
  z.object({ kind: z.literal('sse') }).strict(),
]);
export type TransportConfig = z.infer<typeof TransportConfig>;

export const KeydConfig = z.object({
  group: GroupName,
  agent: z.object({
    name: Name,
    role: z.enum(['controller', 'intermediary']),
    /** Depth in the tree (controller 0); advertised by discovery. */
    level: z.number().int().min(0).max(32).optional(),
  }).strict(),
  parent: z.object({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'an https:// URL'),
    rejoinMin: duration({ min: 10, max: 600_000 }).default(500),
    rejoinMax: duration({ min: 100, max: 3_600_000 }).default(30_000),
  }).strict().optional(),
  tls: z.object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) }).strict(),
  listen: z.object({
    host: Address.default('127.0.0.1'),
    port: PortOrZero.default(7443),
    /** UDP port for members' datagrams (method 2, and method 1 without multicast); 0 picks one. */
    datagramPort: PortOrZero.default(0),
    /** The address members should send datagrams to, if not listen.host (e.g. listen on 0.0.0.0). */
    advertiseHost: Address.optional(),
  }).strict().default({ host: '127.0.0.1', port: 7443, datagramPort: 0 }),
  subgroup: z.object({
    transport: TransportConfig.default({ kind: 'unicast' }),
    membershipTtl: duration({ min: 1000 }).default(90_000),
    refresh: duration({ min: 100 }).optional(),
    heartbeat: duration({ min: 100, max: 600_000 }).default(5_000),
    rekeyInterval: duration().default(0),
    batchWindow: duration({ max: 600_000 }).default(0),
    maxMembers: z.number().int().min(1).max(10_000_000).default(100_000),
  }).strict().default({ transport: { kind: 'unicast' }, membershipTtl: 90_000, heartbeat: 5_000, rekeyInterval: 0, batchWindow: 0, maxMembers: 100_000 }),
  acl: aclSchema.default([]),
  limits: z.object({
    joinsPerMinute: z.number().int().min(1).max(1_000_000).default(60),
    joinBurst: z.number().int().min(1).max(100_000).default(20),
    bodyLimit: z.number().int().min(1024).max(1 << 20).default(64 * 1024),
  }).strict().default({ joinsPerMinute: 60, joinBurst: 20, bodyLimit: 64 * 1024 }),
  /**
   * The group key service (paper §7), at the controller: KGRP2 rolls every `period`, made
   * `lead` before activation; `grace` keeps the previous key usable for decryption.
   */
  groupKey: z.object({
    enabled: z.boolean().default(true),
    period: duration({ min: 1000, max: 86_400_000 }).default(60_000),
    lead: duration({ min: 100 }).default(10_000),
    grace: duration().default(10_000),
    repeats: z.number().int().min(3).max(20).default(3),
    method: z.union([z.literal(1), z.literal(2)]).default(1),
    /** 'controller', or the principal of a member with role originator (the controller stands by). */
    originator: z.string().min(1).max(64).default('controller'),
  }).strict().default({ enabled: true, period: 60_000, lead: 10_000, grace: 10_000, repeats: 3, method: 1, originator: 'controller' }),
  /** Where the usage ledger (SQLite) lives. Default: .iolus/<group>/<agent> beside the config file. */
  state: z.object({ dir: z.string().min(1) }).strict().optional(),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
  /** mDNS advertisement and directory registration (src/keyd/discovery.ts). */
  discovery: DiscoveryConfig.optional(),
}).strict().superRefine((c, ctx) => {
  if (c.agent.role === 'intermediary' && !c.parent) ctx.addIssue({ code: 'custom', path: ['parent'], message: 'an intermediary needs parent.url' });
  if (c.agent.role === 'controller' && c.parent) ctx.addIssue({ code: 'custom', path: ['parent'], message: 'a controller has no parent' });
  if (c.parent && c.parent.rejoinMin > c.parent.rejoinMax) ctx.addIssue({ code: 'custom', path: ['parent', 'rejoinMin'], message: 'above rejoinMax' });
  if (c.groupKey.lead >= c.groupKey.period) ctx.addIssue({ code: 'custom', path: ['groupKey', 'lead'], message: 'must be shorter than groupKey.period' });
  if (c.subgroup.refresh !== undefined && c.subgroup.refresh >= c.subgroup.membershipTtl) {
    ctx.addIssue({ code: 'custom', path: ['subgroup', 'refresh'], message: 'must be shorter than membershipTtl' });
  }
});
export type KeydConfig = z.infer<typeof KeydConfig>;

/** Formats zod issues as one line each: `field.path: why`. */
export function problemsOf(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`);
}

/** Parses a config object; paths inside are resolved against `baseDir`. Throws ValidationError. */
export function parseKeydConfig(raw: unknown, baseDir: string): KeydConfig {
  const r = KeydConfig.safeParse(raw);
  if (!r.success) throw new ValidationError('config.invalid', problemsOf(r.error));
  const c = r.data;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  c.tls = { ca: abs(c.tls.ca), cert: abs(c.tls.cert), key: abs(c.tls.key) };
  c.state = { dir: abs(c.state?.dir ?? `.iolus/${c.group}/${c.agent.name}`) };
  if (c.discovery?.directory?.ca) c.discovery.directory.ca = abs(c.discovery.directory.ca);
  return c;
}

export function loadKeydConfig(path: string): KeydConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('config.read', `${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : '';
    throw new ValidationError('config.yaml', `${path}: not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ValidationError('config.yaml', `${path}: expected a mapping at the top level`);
  return parseKeydConfig(raw, dirname(resolve(path)));
}
