/**
 * From a configured interface (a name, an address, or `::%name`) to what node:dgram wants for
 * multicast membership and sending: an IPv4 interface address, or `::%name` for IPv6 (the
 * scope carries the interface index). Pure: the interface list is passed in.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';
import { ValidationError } from '../errors.js';
import { stripZone, type Family } from './config.js';

export type InterfaceList = NodeJS.Dict<NetworkInterfaceInfo[]>;

export interface MulticastInterface {
  /** For addMembership / setMulticastInterface: `10.0.0.1`, or `::%eth0`. */
  socketInterface: string;
  /** The interface name, when known (IPv6 always). */
  name: string | undefined;
}

/**
 * Resolves `spec` for a group of `family`; undefined spec means "let the multicast route
 * choose". Throws ValidationError (`transport.interface`) naming what is wrong.
 */
export function resolveInterface(spec: string | undefined, family: Family, list: InterfaceList): MulticastInterface | undefined {
  if (spec === undefined) return undefined;
  const fail = (why: string) => new ValidationError('transport.interface', `interface: ${why}`);
  if (family === 4) {
    if (isIPv4(spec)) {
      const name = nameOfAddress(spec, list);
      if (!name) throw fail(`no local interface has the address ${spec}`);
      return { socketInterface: spec, name };
    }
    if (spec.includes(':') || spec.includes('%')) throw fail(`${spec} is not an IPv4 address or an interface name, for an IPv4 group`);
    const addr = list[spec]?.find((a) => a.family === 'IPv4')?.address;
    if (!list[spec]) throw fail(`no interface named ${spec}`);
    if (!addr) throw fail(`${spec} has no IPv4 address`);
    return { socketInterface: addr, name: spec };
  }
  // IPv6: the interface index is what counts, named through the scope.
  let name: string | undefined;
  const zone = spec.indexOf('%');
  if (zone >= 0) name = spec.slice(zone + 1);
  else if (isIPv6(spec)) name = nameOfAddress(spec, list);
  else if (isIPv4(spec)) throw fail(`${spec} is an IPv4 address, for an IPv6 group name the interface`);
  else name = spec;
  if (zone > 0 && !isIPv6(stripZone(spec))) throw fail(`${spec} is not an IPv6 address with a zone`);
  if (!name) throw fail(`no local interface has the address ${spec}`);
  if (!list[name]) throw fail(`no interface named ${name}`);
  return { socketInterface: `::%${name}`, name };
}

function nameOfAddress(address: string, list: InterfaceList): string | undefined {
  const want = stripZone(address).toLowerCase();
  for (const [name, addrs] of Object.entries(list)) {
    if (addrs?.some((a) => a.address.toLowerCase() === want)) return name;
  }
  return undefined;
}

/**
 * An IPv6 link-local address needs a zone to be used; without one, take the interface's.
 * Anything else is returned as given.
 */
export function withZone(address: string, iface: MulticastInterface | undefined): string {
  if (!isIPv6(address) || address.includes('%') || !iface?.name) return address;
  return address.toLowerCase().startsWith('fe80:') ? `${address}%${iface.name}` : address;
}
