/**
 * Which interfaces mDNS runs on, which addresses we publish there, and whether a packet's source
 * is on the local link (RFC 6762 §11). Pure over the shape of os.networkInterfaces().
 */
import { BlockList } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { ValidationError } from '../../errors.js';
import { canonicalIPv6 } from './record.js';
import type { HostAddresses } from './zone.js';

export type Family = 'IPv4' | 'IPv6';

export interface MdnsInterface {
  name: string;
  /** Address the IPv4 socket pair binds to (send socket), if IPv4 runs here. */
  ipv4?: string;
  /** Link-local address the IPv6 send socket binds to, if IPv6 runs here. */
  ipv6?: string;
  /** Addresses we publish in A/AAAA records for this interface. */
  publish: HostAddresses;
  /** CIDRs of the interface, for the on-link check. */
  cidrs: string[];
}

type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

const isLinkLocal6 = (a: string): boolean => /^fe[89ab][0-9a-f]:/i.test(a);

/**
 * The interfaces to use. `wanted` names them (each must exist and have an address); without it,
 * every non-internal interface with an address. mdns-server itself would skip nothing but
 * 2001:/2002: prefixes and would open one socket pair per address, which fails for a second
 * address of the same family; we pick one address per family.
 */
export function selectInterfaces(table: InterfaceTable, wanted: readonly string[] | undefined, ipv6: boolean): MdnsInterface[] {
  const names = wanted ?? Object.keys(table).filter((n) => (table[n] ?? []).some((a) => !a.internal));
  const out: MdnsInterface[] = [];
  const problems: string[] = [];
  for (const name of names) {
    const addrs = (table[name] ?? []).filter((a) => !a.internal);
    if (addrs.length === 0) {
      if (wanted) problems.push(`interfaces: '${name}' does not exist, is loopback, or has no address`);
      continue;
    }
    const v4 = addrs.filter((a) => a.family === 'IPv4').map((a) => a.address);
    const v6 = ipv6 ? addrs.filter((a) => a.family === 'IPv6').map((a) => canonicalIPv6(a.address)) : [];
    const link6 = v6.find(isLinkLocal6);
    const iface: MdnsInterface = {
      name,
      publish: { ipv4: v4, ipv6: v6 },
      cidrs: addrs.map((a) => a.cidr).filter((c): c is string => typeof c === 'string'),
      ...(v4[0] !== undefined ? { ipv4: v4[0] } : {}),
      ...(link6 !== undefined ? { ipv6: link6 } : {}),
    };
    if (iface.ipv4 === undefined && iface.ipv6 === undefined) {
      if (wanted) problems.push(`interfaces: '${name}' has no IPv4 or link-local IPv6 address`);
      continue;
    }
    out.push(iface);
  }
  if (problems.length > 0) throw new ValidationError('mdns.interfaces', problems);
  if (out.length === 0) throw new ValidationError('mdns.interfaces', 'interfaces: no usable interface (loopback cannot carry mDNS here)');
  return out;
}

/**
 * RFC 6762 §11: a packet from a source that is not on the receiving link is ignored. IPv6
 * link-local sources are on-link by definition; others must fall in one of the interface's prefixes.
 */
export function isOnLink(address: string, family: Family, iface: MdnsInterface): boolean {
  const bare = address.split('%')[0] ?? address;
  if (family === 'IPv6' && isLinkLocal6(bare)) return true;
  const list = new BlockList();
  for (const cidr of iface.cidrs) {
    const [net, len] = cidr.split('/');
    const type = net?.includes(':') ? 'ipv6' : 'ipv4';
    if (net === undefined || len === undefined || (type === 'ipv6') !== (family === 'IPv6')) continue;
    list.addSubnet(net, Number(len), type);
  }
  try {
    return list.check(bare, family === 'IPv6' ? 'ipv6' : 'ipv4');
  } catch {
    return false;
  }
}

/** The interface whose prefix contains `address`, to correct the library's attribution (see transport.ts). */
export function interfaceFor(address: string, family: Family, interfaces: readonly MdnsInterface[]): MdnsInterface | undefined {
  const onLink = interfaces.filter((i) => isOnLink(address, family, i));
  return onLink.length === 1 ? onLink[0] : undefined;
}

export function isOwnAddress(address: string, interfaces: readonly MdnsInterface[]): boolean {
  const bare = address.split('%')[0] ?? address;
  const norm = bare.includes(':') ? canonicalIPv6(bare) : bare;
  return interfaces.some((i) => i.publish.ipv4.includes(norm) || i.publish.ipv6.includes(norm));
}
