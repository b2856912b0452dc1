/**
 * Service instances assembled from cached records (RFC 6763 §4-§6): PTR (type → instance), SRV
 * (instance → host:port), TXT (instance attributes), A/AAAA (host → addresses); and, on top,
 * the Iolus agent candidates for one global group. Pure: reads a RecordCache at a given time.
 */
import type { CacheEntry, RecordCache } from './cache.js';
import type { RecordType } from './record.js';
import { instanceOf, serviceTypeName } from './names.js';
import { decodeTxt, type TxtValue } from './txt.js';
import { parseAgentTxt, type AgentRole } from './agentTxt.js';

export interface ServiceInstance {
  /** Instance label, e.g. `g1 intermediary box:7443`. */
  instance: string;
  /** Full service instance name. */
  name: string;
  /** Service type, e.g. `_iolus._tcp`. */
  type: string;
  /** SRV target. */
  host: string;
  port: number;
  /** IPv4 first; IPv6 link-local addresses carry their zone (`fe80::1%eth0`). */
  addresses: string[];
  /** TXT attributes, keys lower-case (RFC 6763 §6.4). */
  txt: Record<string, TxtValue>;
  /** Seconds until the first of its PTR/SRV/TXT records expires. */
  ttl: number;
  /** When we last heard any of its records (ms since the epoch). */
  seenAt: number;
}

/** What resolve() returns: an agent that says it serves the group. A hint: check its certificate. */
export interface AgentCandidate {
  instance: string;
  host: string;
  addresses: string[];
  /** Control-plane port (from SRV). */
  port: number;
  group: string;
  role: AgentRole;
  level: number;
  /** SHA-256 of its certificate, lower-case hex (TXT `fp`). */
  fingerprint: string;
  ttl: number;
  seenAt: number;
}

export interface Incomplete {
  name: string;
  /** Records still needed, and the host name when the A/AAAA are what is missing. */
  missing: { name: string; type: RecordType }[];
}

export interface InstanceView {
  complete: ServiceInstance[];
  incomplete: Incomplete[];
}

const newest = (entries: CacheEntry[]): CacheEntry | undefined => entries.reduce<CacheEntry | undefined>((a, e) => (!a || e.receivedAt > a.receivedAt ? e : a), undefined);

function scoped(e: CacheEntry): string {
  const a = e.record.data as string;
  // A link-local IPv6 address means nothing without its interface (RFC 4007 §11).
  return e.record.type === 'AAAA' && /^fe[89ab]/i.test(a) && e.interface ? `${a}%${e.interface}` : a;
}

/** Instances of `type` (`_iolus._tcp`) in the cache: complete ones, and what the others lack. */
export function instancesOf(cache: RecordCache, type: string, now: number): InstanceView {
  const typeFqdn = serviceTypeName(type);
  const view: InstanceView = { complete: [], incomplete: [] };
  const seen = new Set<string>();
  for (const ptr of cache.lookup(typeFqdn, 'PTR', now)) {
    if (ptr.record.type !== 'PTR') continue;
    const name = ptr.record.data;
    const label = instanceOf(name, typeFqdn);
    if (label === undefined || seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());

    // Lowest priority SRV wins (RFC 2782); ties: the freshest.
    const srvs = cache.lookup(name, 'SRV', now).sort((a, b) => {
      const pa = a.record.type === 'SRV' ? a.record.data.priority : 0;
      const pb = b.record.type === 'SRV' ? b.record.data.priority : 0;
      return pa - pb || b.receivedAt - a.receivedAt;
    });
    const srv = srvs[0];
    const txt = newest(cache.lookup(name, 'TXT', now));
    const missing: Incomplete['missing'] = [];
    if (!srv) missing.push({ name, type: 'SRV' });
    if (!txt) missing.push({ name, type: 'TXT' });
    let addresses: CacheEntry[] = [];
    if (srv && srv.record.type === 'SRV') {
      const target = srv.record.data.target;
      addresses = [...cache.lookup(target, 'A', now), ...cache.lookup(target, 'AAAA', now)];
      if (addresses.length === 0) missing.push({ name: target, type: 'A' }, { name: target, type: 'AAAA' });
    }
    if (missing.length > 0 || !srv || srv.record.type !== 'SRV' || !txt || txt.record.type !== 'TXT') {
      view.incomplete.push({ name, missing });
      continue;
    }
    const parts = [ptr, srv, txt];
    view.complete.push({
      instance: label,
      name,
      type,
      host: srv.record.data.target,
      port: srv.record.data.port,
      addresses: [...new Set(addresses.map(scoped))],
      txt: Object.fromEntries(decodeTxt(txt.record.data)),
      ttl: Math.min(...parts.map((e) => cache.remainingTtl(e, now))),
      seenAt: Math.max(...parts.map((e) => e.receivedAt), ...addresses.map((e) => e.receivedAt)),
    });
  }
  view.complete.sort((a, b) => a.instance.localeCompare(b.instance));
  return view;
}

export interface Rejected {
  instance: string;
  reason: string;
}

/**
 * Agents among the instances that advertise `group`. Instances with an unusable TXT record (not
 * Iolus, unknown txtvers, malformed) are returned in `rejected` with the reason, for the log.
 */
export function agentCandidates(instances: readonly ServiceInstance[], group: string): { candidates: AgentCandidate[]; rejected: Rejected[] } {
  const candidates: AgentCandidate[] = [];
  const rejected: Rejected[] = [];
  for (const s of instances) {
    const parsed = parseAgentTxt(new Map(Object.entries(s.txt)));
    if (!parsed.ok) {
      rejected.push({ instance: s.instance, reason: parsed.reason });
      continue;
    }
    if (parsed.value.group !== group) continue;
    candidates.push({
      instance: s.instance,
      host: s.host,
      addresses: s.addresses,
      port: s.port,
      group: parsed.value.group,
      role: parsed.value.role,
      level: parsed.value.level,
      fingerprint: parsed.value.fingerprint,
      ttl: s.ttl,
      seenAt: s.seenAt,
    });
  }
  return { candidates, rejected };
}
