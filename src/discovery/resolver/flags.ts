/**
 * The discovery flags shared by `iolus agent`, `iolus member` and `iolus resolve`:
 *
 *   --agent https://host:port     an explicit agent: wins over everything
 *   --mdns [--interface eth0]     ask the link (mDNS, `_iolus._tcp`)
 *   --directory https://host:port [--directory-ca file] [--site name]   ask the directory
 *
 * Without --agent, at least one of --mdns and --directory is needed.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import type { TlsMaterial } from '../../pki/tlsOptions.js';
import type { Logger } from '../../util/log.js';
import { SiteName } from '../directory/api.js';
import { AgentResolver } from './resolver.js';

const HttpsUrl = z.string().url().refine((u) => u.startsWith('https://'), 'an https:// URL');

/** node:util parseArgs options for the flags above. */
export const RESOLVE_FLAG_OPTIONS = {
  agent: { type: 'string' },
  mdns: { type: 'boolean' },
  interface: { type: 'string', multiple: true },
  directory: { type: 'string' },
  'directory-ca': { type: 'string' },
  site: { type: 'string' },
  'resolve-timeout': { type: 'string' },
} as const;

/** zod shape for the flags above (spread into a command's schema). */
export const ResolveFlagsShape = {
  agent: HttpsUrl.optional(),
  mdns: z.boolean().optional(),
  interface: z.array(z.string().regex(/^[A-Za-z0-9._@:-]{1,15}$/, 'an interface name')).optional(),
  directory: HttpsUrl.optional(),
  'directory-ca': z.string().min(1).optional(),
  site: SiteName.optional(),
  'resolve-timeout': z.coerce.number().int().min(100).max(60_000).optional(),
};

export type ResolveFlags = z.infer<z.ZodObject<typeof ResolveFlagsShape>>;

export const RESOLVE_USAGE = '(--agent https://host:port | --mdns [--interface eth0] | --directory https://host:port [--directory-ca f] [--site s])';

/** An AgentResolver for the flags (not started). Throws ValidationError when no source is given. */
export function resolverFromFlags(group: string, f: ResolveFlags, tls: TlsMaterial, logger?: Logger): AgentResolver {
  if (!f.agent && !f.mdns && !f.directory) {
    throw new ValidationError('resolve.source', `--agent: give the agent's URL, or find it with --mdns and/or --directory`);
  }
  if (!f.directory && (f['directory-ca'] || f.site)) throw new ValidationError('resolve.directory', '--directory-ca and --site need --directory');
  if (!f.mdns && f.interface) throw new ValidationError('resolve.mdns', '--interface needs --mdns');
  let ca: string | undefined;
  if (f['directory-ca']) {
    try {
      ca = readFileSync(f['directory-ca'], 'utf8');
    } catch (err) {
      throw new ValidationError('resolve.directory', `--directory-ca: ${(err as Error).message}`);
    }
  }
  const timeoutMs = f['resolve-timeout'];
  return new AgentResolver({
    group,
    ...(f.agent ? { agent: f.agent } : {}),
    ...(f.mdns ? { mdns: { ...(f.interface ? { interfaces: f.interface } : {}), ...(timeoutMs ? { timeoutMs } : {}) } } : {}),
    ...(f.directory ? { directory: { url: f.directory, ...(ca ? { ca } : {}), ...(f.site ? { site: f.site } : {}), ...(timeoutMs ? { timeoutMs } : {}) } } : {}),
  }, { tls, ...(logger ? { logger } : {}) });
}
