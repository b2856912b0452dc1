/**
 * The lookup answers, fast: the ordered agent list of a group depends only on the group's
 * registrations and on where the asker is (its site, and its network prefix), so it is ranked
 * and serialized once per (group, site, prefix) and kept until the group changes (a
 * registration, refresh, unregistration or expiry) or one of its agents' TTLs runs out. Per
 * request only the remaining lifetimes are written in. Where an asker is (its parsed address,
 * its site by address) is worked out once per connection.
 */
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../../util/clock.js';
import type { AgentEntry } from './api.js';
import { rankAgents, type PrefixLengths, type SiteMap, type Tier } from './locality.js';
import { formatIp, parseIp, type IpAddress } from './prefix.js';
import type { Registration, Registry } from './registry.js';

/** Where an asker is, from its connection. */
export interface AskerPlace {
  address: IpAddress | undefined;
  /** `null` or the address, as JSON. */
  addressJson: string;
  /** Site its address falls in, if any. */
  site: string | undefined;
  /** Its network prefix, e.g. `4:10.1.2.0/24` (empty when unknown). */
  prefixKey: string;
}

interface Fragment {
  /** JSON of the entry up to `"expiresInMs":`. */
  head: string;
  /** JSON after the number: `,"tier":"…"}`. */
  tail: string;
  expiresAt: number;
}

interface Ranked {
  fragments: Fragment[];
  entries: { registration: Registration; tier: Tier }[];
  /** Rebuild when the first of the agents expires. */
  validUntil: number;
}

const MAX_VIEWS_PER_GROUP = 4096;

export class LookupView {
  private readonly groups = new Map<string, Map<string, Ranked>>();
  private readonly places = new WeakMap<TLSSocket, AskerPlace>();

  constructor(
    private readonly registry: Registry,
    private readonly sites: SiteMap,
    private readonly lengths: PrefixLengths,
    private readonly clock: Clock,
  ) {
    registry.onChange((c) => this.groups.delete(c.registration.group));
  }

  /** Where the asker on `socket` is (computed once per connection). */
  placeOf(socket: TLSSocket | undefined, remoteAddress: string | undefined): AskerPlace {
    const cached = socket ? this.places.get(socket) : undefined;
    if (cached) return cached;
    const address = parseIp(remoteAddress ?? '');
    const place: AskerPlace = {
      address,
      addressJson: address ? JSON.stringify(formatIp(address)) : 'null',
      site: this.sites.siteOf(address),
      prefixKey: address ? prefixKey(address, address.family === 4 ? this.lengths.ipv4 : this.lengths.ipv6) : '',
    };
    if (socket) this.places.set(socket, place);
    return place;
  }

  /** The JSON text of a lookup answer. */
  answer(group: string, place: AskerPlace, site: string | undefined, limit?: number): string {
    const now = this.clock.now();
    const r = this.ranked(group, place, site, now);
    const list = limit === undefined ? r.fragments : r.fragments.slice(0, limit);
    let agents = '';
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      agents += `${i ? ',' : ''}${f.head}${Math.max(0, f.expiresAt - now)}${f.tail}`;
    }
    return `{"group":${JSON.stringify(group)},"asker":{"address":${place.addressJson},"site":${site === undefined ? 'null' : JSON.stringify(site)}},"agents":[${agents}]}`;
  }

  /** The same answer as objects (for the list view). */
  entries(group: string, place: AskerPlace, site: string | undefined): AgentEntry[] {
    const now = this.clock.now();
    return this.ranked(group, place, site, now).entries.map(({ registration: r, tier }) => ({ ...entryOf(r, this.sites), expiresInMs: Math.max(0, r.expiresAt - now), tier }));
  }

  private ranked(group: string, place: AskerPlace, site: string | undefined, now: number): Ranked {
    const key = `${site ?? ''}|${place.prefixKey}`;
    let views = this.groups.get(group);
    const hit = views?.get(key);
    if (hit && now < hit.validUntil) return hit;
    const regs = this.registry.agents(group);
    const placed = regs.map((r) => ({ ...r, site: r.site ?? this.sites.siteOf(r.address) }));
    const ranked = rankAgents(placed, { site, address: place.address }, this.lengths);
    const entries = ranked.map(({ agent, tier }) => ({ registration: regs.find((r) => r.principal === agent.principal)!, tier }));
    const fragments = entries.map(({ registration: r, tier }) => {
      const e = entryOf(r, this.sites);
      const head = JSON.stringify(e);
      return { head: `${head.slice(0, -1)},"expiresInMs":`, tail: `,"tier":"${tier}"}`, expiresAt: r.expiresAt };
    });
    const view: Ranked = { fragments, entries, validUntil: Math.min(Infinity, ...regs.map((r) => r.expiresAt)) };
    if (!views) {
      views = new Map();
      this.groups.set(group, views);
    }
    if (views.size >= MAX_VIEWS_PER_GROUP) views.clear();
    views.set(key, view);
    return view;
  }
}

function entryOf(r: Registration, sites: SiteMap): Omit<AgentEntry, 'expiresInMs' | 'tier'> {
  return { principal: r.principal, role: r.role, url: r.url, level: r.level, members: r.members, site: r.site ?? sites.siteOf(r.address) ?? null, fingerprint: r.fingerprint };
}

function prefixKey(ip: IpAddress, length: number): string {
  const bytes = ip.bytes.slice();
  for (let bit = length; bit < bytes.length * 8; bit++) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) & ~(0x80 >> (bit & 7));
  return `${ip.family}:${formatIp({ family: ip.family, bytes })}/${length}`;
}
