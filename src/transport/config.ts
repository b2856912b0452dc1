/**
 * Agent-side configuration of a subgroup transport (zod 4; errors name the field), and the
 * address rules every transport shares.
 *
 * Multicast groups are scoped, never global:
 * - IPv4: administratively scoped 239.0.0.0/8 only (RFC 2365).
 * - IPv6: transient groups, ff1X:: (or unicast-prefix-based ff3X::, RFC 3306), of scope
 *   2 link-local, 4 admin-local, 5 site-local or 8 organization-local (RFC 4291 §2.7,
 *   RFC 7346). Permanently assigned groups (ff0X::) belong to IANA, interface-local ones
 *   (scope 1) never leave the host, global ones (scope E) are refused like IPv4 outside 239/8.
 *   ff12:: (link-local) needs no router and works on one segment: give an interface when the
 *   host has several; ff15:: (site-local) needs multicast routing beyond the segment.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { ValidationError } from '../errors.js';

export type Family = 4 | 6;

/** Allowed IPv6 multicast scopes (the last nibble of the first hextet). */
const IPV6_SCOPES: ReadonlyMap<string, string> = new Map([
  ['2', 'link-local'],
  ['4', 'admin-local'],
  ['5', 'site-local'],
  ['8', 'organization-local'],
]);

/** The address without an IPv6 zone (`fe80::1%eth0` → `fe80::1`). */
export function stripZone(address: string): string {
  const i = address.indexOf('%');
  return i < 0 ? address : address.slice(0, i);
}

/** 4, 6, or undefined for anything that is not an IP literal (a zone is allowed on IPv6). */
export function ipFamily(address: string): Family | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(stripZone(address))) return 6;
  return undefined;
}

/** Why `address` may not be a subgroup's multicast group, or undefined if it may. */
export function multicastGroupProblem(address: string): string | undefined {
  if (isIPv4(address)) {
    return address.split('.')[0] === '239' ? undefined : `${address} is not an administratively scoped IPv4 group (239.0.0.0/8)`;
  }
  if (address.includes('%')) return 'a multicast group takes no zone: name the interface in `interface`';
  if (!isIPv6(address)) return `${address} is not an IPv4 or IPv6 address`;
  const first = address.toLowerCase().split(':')[0] ?? '';
  if (first.length !== 4 || !first.startsWith('ff')) return `${address} is not an IPv6 multicast address (ff00::/8)`;
  const flags = first[2];
  const scope = first[3] ?? '';
  if (flags !== '1' && flags !== '3') {
    return `${address}: use a transient IPv6 group (ff1X:: or unicast-prefix-based ff3X::), not flags ${flags}`;
  }
  if (!IPV6_SCOPES.has(scope)) {
    return `${address}: IPv6 scope ${scope} not allowed (2 link-local, 4 admin-local, 5 site-local, 8 organization-local)`;
  }
  return undefined;
}

/** Scope name of an accepted IPv6 group, e.g. 'link-local' (undefined for IPv4). */
export function ipv6Scope(group: string): string | undefined {
  if (!isIPv6(group)) return undefined;
  return IPV6_SCOPES.get(group.toLowerCase().slice(3, 4));
}

const UNREACHABLE = new BlockList();
UNREACHABLE.addAddress('0.0.0.0', 'ipv4');
UNREACHABLE.addAddress('255.255.255.255', 'ipv4');
UNREACHABLE.addSubnet('224.0.0.0', 4, 'ipv4');
UNREACHABLE.addAddress('::', 'ipv6');
UNREACHABLE.addSubnet('ff00::', 8, 'ipv6');

/** True for 0.0.0.0, ::, and multicast or broadcast addresses: nothing a datagram socket can be reached at. */
export function isUnreachableUnicast(address: string): boolean {
  const a = stripZone(address);
  if (isIPv4(a)) return UNREACHABLE.check(a, 'ipv4');
  if (isIPv6(a)) return UNREACHABLE.check(a, 'ipv6');
  return false;
}

/** An IPv6 link-local address without a zone: unusable until it says which link. */
function needsZone(address: string): boolean {
  return !address.includes('%') && isIPv6(address) && /^fe[89ab]/i.test(address);
}

const Port = z.number().int().min(1).max(65_535);
/** Port 0: any free port; the descriptor tells the real one once started. */
const BindPort = z.number().int().min(0).max(65_535);
const Ttl = z.number().int().min(0).max(255);
/** An interface by name (`eth0`), by address (`10.0.0.1`, `fe80::1%eth0`), or `::%eth0`. */
export const InterfaceSpec = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.:%@-]+$/, 'an interface name or address');

export const MulticastGroup = z.string().superRefine((s, ctx) => {
  const p = multicastGroupProblem(s);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

/** An IP literal a socket can bind to and a member can send to. */
export const UnicastHost = z.string().max(64).superRefine((s, ctx) => {
  if (!ipFamily(s)) ctx.addIssue({ code: 'custom', message: `${s} is not an IP address (an agent binds an address literal)` });
  else if (isUnreachableUnicast(s)) ctx.addIssue({ code: 'custom', message: `${s} is not a unicast address members can send to` });
});

export const MulticastConfig = z.object({
  kind: z.literal('multicast'),
  /** The group: 239.X.Y.Z, or ff1X::/ff3X:: (see the header). */
  address: MulticastGroup,
  port: Port,
  /** IPv4 TTL / IPv6 hop limit of what the agent multicasts (default 1: this link only). */
  ttl: Ttl.optional(),
  /** Where to join and send; default: whatever the multicast route says. */
  interface: InterfaceSpec.optional(),
  /** The agent's datagram socket (method-2 data), also the source of its multicasts. */
  agentHost: UnicastHost,
  agentPort: BindPort,
  /** Hear our own multicasts (default true: members on this host hear the agent). */
  loopback: z.boolean().default(true),
}).strict().superRefine((c, ctx) => {
  if (needsZone(c.agentHost) && c.interface === undefined) {
    ctx.addIssue({ code: 'custom', path: ['agentHost'], message: `${c.agentHost} is link-local: give it a zone (${c.agentHost}%eth0) or set interface` });
  }
});

export const UnicastConfig = z.object({
  kind: z.literal('unicast'),
  /** The agent's datagram socket: members send there, and it sends to each member from there. */
  host: UnicastHost,
  port: BindPort,
  /** Deliver datagrams from addresses that are no member's endpoint (default false: drop them). */
  acceptUnknownSources: z.boolean().default(false),
}).strict().superRefine((c, ctx) => {
  if (needsZone(c.host)) ctx.addIssue({ code: 'custom', path: ['host'], message: `${c.host} is link-local: give it a zone (${c.host}%eth0)` });
});

export const SseConfig = z.object({
  kind: z.literal('sse'),
  /** The event stream's path on the control plane (default: given by the daemon). */
  path: z.string().min(1).max(200).regex(/^\/[A-Za-z0-9._~:/?#[\]@!$&'()*+,;=%-]*$/, 'an absolute URL path').optional(),
  heartbeatMs: z.number().int().min(100).max(300_000).default(15_000),
  /** A stream whose unsent bytes exceed this drops new events (counted as slow-client). */
  maxBufferedBytes: z.number().int().min(64 * 1024).max(256 * 1024 * 1024).default(1024 * 1024),
}).strict();

export const MemoryConfig = z.object({
  kind: z.literal('memory'),
  channel: z.string().min(1).max(200),
}).strict();

/** How an agent serves its subgroup plane (the daemon's `transport:` config section). */
export const AgentTransportConfig = z.discriminatedUnion('kind', [MulticastConfig, UnicastConfig, SseConfig, MemoryConfig]);
export type AgentTransportConfig = z.output<typeof AgentTransportConfig>;
export type AgentTransportConfigInput = z.input<typeof AgentTransportConfig>;
export type MulticastConfig = z.output<typeof MulticastConfig>;
export type MulticastConfigInput = z.input<typeof MulticastConfig>;
export type UnicastConfig = z.output<typeof UnicastConfig>;
export type UnicastConfigInput = z.input<typeof UnicastConfig>;
export type SseConfig = z.output<typeof SseConfig>;
export type SseConfigInput = z.input<typeof SseConfig>;

/**
 * Parses with a schema; a failure becomes a ValidationError (`transport.config`) with one
 * problem per field, each `<what>.<path>: <why>`.
 */
export function parseTransportConfig<S extends z.ZodType>(schema: S, input: unknown, what = 'transport'): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ValidationError(
    'transport.config',
    r.error.issues.map((i) => `${what}${i.path.length ? '.' + i.path.join('.') : ''}: ${i.message}`),
  );
}
