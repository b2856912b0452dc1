/**
 * Candidates for the member's local agent, from each source, in the order they are tried. Pure.
 *
 * mDNS answers come from the member's own link, so every one of them is local; among them the
 * deepest agent first (§8.2: agents sit at the entrance of ever smaller networks, so the deepest
 * one on the link is the most local), then one on a subnet of ours, then the freshest. The
 * directory orders its own answers by locality (directory/locality.ts); we keep its order.
 */
import type { AgentCandidate } from '../mdns/instances.js';
import type { AgentEntry } from '../directory/api.js';
import { parseCidr, parseIp, sharePrefix } from '../directory/prefix.js';

export type Source = 'explicit' | 'mdns' | 'directory';

export interface Candidate {
  source: Source;
  url: string;
  /** What the hint says the agent's certificate is (checked at the handshake). */
  fingerprint?: string;
  role?: 'controller' | 'intermediary';
  level?: number;
  /** mDNS instance name or directory principal. */
  name?: string;
  /** How long the source still vouches for it (ms): the directory registration's remaining TTL. */
  expiresInMs?: number;
}

/** A URL host for an address: IPv4 as is, IPv6 in brackets; link-local IPv6 has no usable URL. */
function urlHost(address: string): string | undefined {
  if (!address.includes(':')) return address;
  if (address.includes('%') || /^fe[89ab]/i.test(address)) return undefined;
  return `[${address}]`;
}

/** One candidate per mDNS agent: its first address that makes a URL (IPv4 first). */
export function fromMdns(agents: readonly AgentCandidate[], ownCidrs: readonly string[] = []): Candidate[] {
  const nets = ownCidrs.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  const onOurSubnet = (a: AgentCandidate) => a.addresses.some((x) => {
    const ip = parseIp(x);
    return ip !== undefined && nets.some((n) => sharePrefix(ip, n, n.length));
  });
  return [...agents]
    .sort((a, b) => b.level - a.level || Number(onOurSubnet(b)) - Number(onOurSubnet(a)) || b.seenAt - a.seenAt || a.instance.localeCompare(b.instance))
    .flatMap((a) => {
      const host = a.addresses.map(urlHost).find((h) => h !== undefined);
      if (host === undefined) return [];
      return [{ source: 'mdns' as const, url: `https://${host}:${a.port}`, fingerprint: a.fingerprint, role: a.role, level: a.level, name: a.instance }];
    });
}

export function fromDirectory(agents: readonly AgentEntry[]): Candidate[] {
  return agents.map((a) => ({ source: 'directory' as const, url: a.url, fingerprint: a.fingerprint, role: a.role, level: a.level, name: a.principal, expiresInMs: a.expiresInMs }));
}

/** Drops repeats of a URL, keeping the first. */
export function dedupe(list: readonly Candidate[]): Candidate[] {
  const seen = new Set<string>();
  return list.filter((c) => (seen.has(c.url) ? false : (seen.add(c.url), true)));
}
