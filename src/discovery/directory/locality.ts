/**
 * The order in which the directory offers a group's agents to an asker (paper §8.3: a global
 * group name maps to the *local* agent). Pure.
 *
 *   1. tier: the asker's site (a configured site name, or the site whose prefixes hold its
 *      address), then the asker's network prefix (/24 IPv4, /64 IPv6 by default), then elsewhere;
 *   2. depth in the tree: inside the asker's site or prefix the deepest agent first, since agents
 *      sit at the entrance of ever smaller networks (§8.2) and the deepest one is the most local;
 *      elsewhere the shallowest first, the one nearest the root and so to everyone;
 *   3. load: fewest members first (reported by each agent when it refreshes);
 *   4. principal name, so that equal agents come in a stable order.
 */
import { inCidr, parseCidr, parseIp, sharePrefix, type Cidr, type IpAddress } from './prefix.js';

export type Tier = 'site' | 'prefix' | 'elsewhere';
const TIER_RANK: Record<Tier, number> = { site: 0, prefix: 1, elsewhere: 2 };

export interface SiteSpec {
  name: string;
  prefixes: readonly string[];
}

/** Configured sites and their prefixes; the longest matching prefix decides. */
export class SiteMap {
  private readonly entries: { site: string; cidr: Cidr }[] = [];

  constructor(sites: readonly SiteSpec[]) {
    for (const s of sites) {
      for (const p of s.prefixes) {
        const cidr = parseCidr(p);
        if (!cidr) throw new RangeError(`site ${s.name}: ${JSON.stringify(p)} is not an address prefix`);
        this.entries.push({ site: s.name, cidr });
      }
    }
    this.entries.sort((a, b) => b.cidr.length - a.cidr.length);
  }

  get names(): string[] {
    return [...new Set(this.entries.map((e) => e.site))];
  }

  siteOf(address: IpAddress | string | undefined): string | undefined {
    const ip = typeof address === 'string' ? parseIp(address) : address;
    if (!ip) return undefined;
    return this.entries.find((e) => inCidr(ip, e.cidr))?.site;
  }
}

export interface PrefixLengths {
  ipv4: number;
  ipv6: number;
}

export const DEFAULT_PREFIX_LENGTHS: PrefixLengths = { ipv4: 24, ipv6: 64 };

/** What the order needs to know of an agent. */
export interface Placed {
  principal: string;
  level: number;
  members: number;
  site: string | undefined;
  /** Where the agent is: its URL's address, else the address it registered from. */
  address: IpAddress | undefined;
}

export interface Asker {
  site: string | undefined;
  address: IpAddress | undefined;
}

export function tierOf(agent: Placed, asker: Asker, lengths: PrefixLengths = DEFAULT_PREFIX_LENGTHS): Tier {
  if (asker.site !== undefined && agent.site === asker.site) return 'site';
  const a = agent.address;
  const b = asker.address;
  if (a && b && a.family === b.family && sharePrefix(a, b, a.family === 4 ? lengths.ipv4 : lengths.ipv6)) return 'prefix';
  return 'elsewhere';
}

/** The agents in the order above, each with its tier. */
export function rankAgents<T extends Placed>(agents: readonly T[], asker: Asker, lengths: PrefixLengths = DEFAULT_PREFIX_LENGTHS): { agent: T; tier: Tier }[] {
  return agents
    .map((agent) => ({ agent, tier: tierOf(agent, asker, lengths) }))
    .sort((x, y) => {
      const t = TIER_RANK[x.tier] - TIER_RANK[y.tier];
      if (t !== 0) return t;
      const depth = x.tier === 'elsewhere' ? x.agent.level - y.agent.level : y.agent.level - x.agent.level;
      if (depth !== 0) return depth;
      if (x.agent.members !== y.agent.members) return x.agent.members - y.agent.members;
      return x.agent.principal < y.agent.principal ? -1 : x.agent.principal > y.agent.principal ? 1 : 0;
    });
}
