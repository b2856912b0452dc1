/**
 * Unicast fan-out bookkeeping (paper footnote 6: "multicast ... can be emulated using unicast"):
 * which member listens at which endpoint, who sent a datagram, and who gets its reflection.
 * No sockets here; udpUnicast.ts and sse.ts do the sending.
 */
import { isIPv4 } from 'node:net';
import { ValidationError } from '../errors.js';
import { MessageType } from '../wire/header.js';
import { ipFamily, isUnreachableUnicast, stripZone, type Family } from './config.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** Where a datagram should go when a member sends it to its agent. */
export type Scope = 'subgroup' | 'agent';

/**
 * The default routing of a datagram a member sent to its agent when the transport cannot tell
 * sendSubgroup from sendAgent (one UDP port for both): everything is reflected to the
 * subgroup except method 2's first hop (DataUp, wire type at byte 2), which is for the agent
 * alone (paper §6.5). This reads one byte and checks nothing: the receivers verify.
 */
export function defaultScope(bytes: Uint8Array): Scope {
  return bytes.length > 2 && bytes[2] === MessageType.DataUp ? 'agent' : 'subgroup';
}

/** Lower-case, without zone, IPv4-mapped IPv6 as IPv4: how rinfo and a join's endpoint compare. */
export function normalizeAddress(address: string): string {
  const a = stripZone(address).toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped?.[1] && isIPv4(mapped[1]) ? mapped[1] : a;
}

export function endpointKey(host: string, port: number): string {
  return `${normalizeAddress(host)}|${port}`;
}

/**
 * Checks a member's endpoint before the agent sends to it: an IP literal of the socket's
 * family, a unicast address, a port. Throws ValidationError (`transport.endpoint`) naming the
 * problem, so the daemon can refuse the join.
 */
export function checkEndpoint(memberId: number, endpoint: Endpoint | undefined, family: Family): Endpoint {
  const what = `member ${memberId} endpoint`;
  if (!endpoint) throw new ValidationError('transport.endpoint', `${what}: required by unicast fan-out (JoinRequest.endpoint)`);
  const f = ipFamily(endpoint.host);
  if (!f) throw new ValidationError('transport.endpoint', `${what}.host: ${endpoint.host} is not an IP address`);
  if (f !== family) throw new ValidationError('transport.endpoint', `${what}.host: ${endpoint.host} is IPv${f}, the agent's socket is IPv${family}`);
  if (isUnreachableUnicast(endpoint.host)) throw new ValidationError('transport.endpoint', `${what}.host: ${endpoint.host} is not a unicast address`);
  if (!Number.isInteger(endpoint.port) || endpoint.port < 1 || endpoint.port > 65_535) {
    throw new ValidationError('transport.endpoint', `${what}.port: ${endpoint.port} is not a port`);
  }
  return { host: endpoint.host, port: endpoint.port };
}

/** Member endpoints, both ways. One endpoint belongs to one member: a later join takes it over. */
export class FanoutTable {
  private readonly byMember = new Map<number, Endpoint>();
  private readonly byEndpoint = new Map<string, number>();

  get size(): number {
    return this.byMember.size;
  }

  /** Registers (or moves) a member; returns the member that held this endpoint before, if another. */
  add(memberId: number, endpoint: Endpoint): number | undefined {
    this.remove(memberId);
    const key = endpointKey(endpoint.host, endpoint.port);
    const previous = this.byEndpoint.get(key);
    if (previous !== undefined) this.byMember.delete(previous);
    this.byMember.set(memberId, endpoint);
    this.byEndpoint.set(key, memberId);
    return previous;
  }

  remove(memberId: number): boolean {
    const e = this.byMember.get(memberId);
    if (!e) return false;
    this.byMember.delete(memberId);
    this.byEndpoint.delete(endpointKey(e.host, e.port));
    return true;
  }

  has(memberId: number): boolean {
    return this.byMember.has(memberId);
  }

  endpointOf(memberId: number): Endpoint | undefined {
    return this.byMember.get(memberId);
  }

  /** The member whose endpoint a datagram came from. */
  memberAt(address: string, port: number): number | undefined {
    return this.byEndpoint.get(endpointKey(address, port));
  }

  /** Every member's endpoint but the sender's: where a reflected datagram goes. */
  *targets(exceptMemberId?: number): IterableIterator<Endpoint> {
    for (const [id, e] of this.byMember) if (id !== exceptMemberId) yield e;
  }
}
