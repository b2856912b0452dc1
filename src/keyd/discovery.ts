/**
 * An agent making itself findable (paper §8.3): it advertises `_iolus._tcp` on its link over
 * mDNS and registers in the directory with a TTL, refreshing the registration (with its load)
 * every third of the TTL; on stop it says goodbye (TTL 0) and unregisters, so members move on at
 * once rather than when caches and registrations run out.
 *
 * keyd config, section `discovery` (all optional):
 *
 *   discovery:
 *     site: site-a                           # the directory's locality (else it places us by address)
 *     url: https://10.0.0.2:7443             # what to publish, if not https://<listen.host>:<port>
 *     mdns: { enabled: true, interfaces: [eth0], hostName: agent-a }
 *     directory: { url: https://10.0.0.9:7600, ca: directory-ca.crt, ttl: 30s }
 *
 * A directory that is down or refuses us never stops the agent: it logs why and tries again.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { fingerprint } from '../pki/fingerprint.js';
import type { TlsMaterial } from '../pki/tlsOptions.js';
import { duration } from '../util/duration.js';
import type { Logger } from '../util/log.js';
import { AgentUrl, SiteName } from '../discovery/directory/api.js';
import { DirectoryClient, DirectoryError } from '../discovery/directory/client.js';
import { MdnsAdvertiser } from '../discovery/mdns/advertiser.js';
import { MdnsTransport } from '../discovery/mdns/transport.js';
import { toHostLabel } from '../discovery/mdns/names.js';

export const DiscoveryConfig = z.strictObject({
  /** The control-plane URL to publish; default https://<listen.host>:<listen.port>. */
  url: AgentUrl.optional(),
  site: SiteName.optional(),
  mdns: z.strictObject({
    enabled: z.boolean().default(true),
    /** Interfaces to advertise on; default every non-loopback interface that is up. */
    interfaces: z.array(z.string().min(1)).min(1).optional(),
    /** mDNS host name (label or name.local); default iolus-<group>-<agent>. */
    hostName: z.string().min(1).optional(),
    ipv6: z.boolean().default(true),
  }).optional(),
  directory: z.strictObject({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'an https:// URL'),
    /** CA of the directory's certificate (file); default the group CA. */
    ca: z.string().min(1).optional(),
    ttl: duration({ min: 1000, max: 86_400_000 }).default(30_000),
  }).optional(),
});
export type DiscoveryConfig = z.output<typeof DiscoveryConfig>;

export interface AgentPlace {
  group: string;
  name: string;
  role: 'controller' | 'intermediary';
  level: number;
  /** The daemon's own URL (from the listening socket). */
  url: string;
  /** Current members of its subgroup (load, for the directory's order). */
  members: () => number;
  log: Logger;
}

export class AgentDiscovery {
  private link: MdnsTransport | undefined;
  private advertiser: MdnsAdvertiser | undefined;
  private directory: DirectoryClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly url: string;

  private constructor(private readonly config: DiscoveryConfig, private readonly tls: TlsMaterial, private readonly place: AgentPlace) {
    this.url = config.url ?? place.url;
  }

  /** Starts what the config asks for; undefined when it asks for nothing. */
  static async start(config: DiscoveryConfig | undefined, tls: TlsMaterial, place: AgentPlace): Promise<AgentDiscovery | undefined> {
    if (!config || (!config.directory && !config.mdns?.enabled)) return undefined;
    const d = new AgentDiscovery(config, tls, place);
    await d.startInner();
    return d;
  }

  private async startInner(): Promise<void> {
    const { config: c, place: p } = this;
    const log = p.log.child({ component: 'discovery' });
    if (c.mdns?.enabled) {
      const host = new URL(this.url).hostname;
      if (host === 'localhost' || host.startsWith('127.') || host === '[::1]') log.warn({ url: this.url }, 'advertising over mDNS an agent that listens on loopback only: set listen.host (or discovery.url)');
      this.link = new MdnsTransport({ ...(c.mdns.interfaces ? { interfaces: c.mdns.interfaces } : {}), ipv6: c.mdns.ipv6 }, { logger: log.child({ component: 'mdns' }) });
      await this.link.start();
      this.advertiser = new MdnsAdvertiser({
        group: p.group, role: p.role, level: p.level, fingerprint: fingerprint(this.tls.cert),
        port: Number(new URL(this.url).port || 443),
        hostName: c.mdns.hostName ?? `iolus-${toHostLabel(`${p.group}-${p.name}`)}`.slice(0, 63),
      }, { link: this.link, logger: log.child({ component: 'mdns.advertiser' }) });
      await this.advertiser.start();
    }
    if (c.directory) {
      const host = new URL(this.url).hostname;
      if (host === '0.0.0.0' || host === '[::]') {
        log.warn({ url: this.url }, 'not registering in the directory: listening on every address; set discovery.url');
        return;
      }
      let ca = this.tls.ca;
      if (c.directory.ca) {
        try {
          ca = readFileSync(c.directory.ca, 'utf8');
        } catch (err) {
          throw new ValidationError('config.discovery', `discovery.directory.ca: ${(err as Error).message}`);
        }
      }
      this.directory = new DirectoryClient({ url: c.directory.url, ca, cert: this.tls.cert, key: this.tls.key, timeoutMs: Math.min(5_000, c.directory.ttl / 3) });
      await this.register(log);
    }
  }

  /** Registers (or refreshes) and schedules the next refresh: a third of the TTL, sooner after a failure. */
  private async register(log: Logger): Promise<void> {
    const dir = this.directory;
    const ttl = this.config.directory!.ttl;
    if (!dir || this.stopped) return;
    let next = ttl / 3;
    try {
      const r = await dir.register(this.place.group, {
        url: this.url, level: this.place.level, members: this.place.members(), ttl: Math.ceil(ttl / 1000), ...(this.config.site ? { site: this.config.site } : {}),
      });
      if (r.status !== 'refreshed') log.info({ event: 'directory-registered', directory: dir.url.origin, url: this.url, status: r.status, ttl: r.ttl }, 'registered in the directory');
      next = (r.ttl * 1000) / 3;
    } catch (err) {
      const refused = err instanceof DirectoryError && err.status >= 400 && err.status < 500;
      log.warn({ event: refused ? 'directory-refused' : 'directory-unreachable', directory: dir.url.origin, status: err instanceof DirectoryError ? err.status : undefined, reason: (err as Error).message }, refused ? 'the directory refused our registration' : 'directory unreachable; will retry');
      if (!refused) next = Math.min(next, 2_000);
    }
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.register(log), Math.max(100, next));
    this.timer.unref();
  }

  /** mDNS goodbye and directory unregistration, within `budgetMs`. */
  async stop(budgetMs = 600): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    const work = Promise.allSettled([
      (async () => {
        await this.advertiser?.stop();
        await this.link?.stop();
      })(),
      (async () => {
        await this.directory?.unregister(this.place.group);
      })(),
    ]);
    await Promise.race([work, new Promise((r) => setTimeout(r, budgetMs).unref())]);
    this.directory?.close();
  }
}
