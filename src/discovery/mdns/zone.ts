/**
 * The records one advertised DNS-SD service owns (RFC 6763 §4-§9) on one interface:
 *
 *   _services._dns-sd._udp.local PTR _iolus._tcp.local          (shared, §9)
 *   _iolus._tcp.local            PTR <instance>._iolus._tcp.local (shared, §4.1)
 *   <instance>._iolus._tcp.local SRV 0 0 <port> <host>.local     (unique, §5)
 *   <instance>._iolus._tcp.local TXT txtvers=1 group=… …          (unique, §6)
 *   <host>.local                 A/AAAA <interface addresses>     (unique, RFC 6762 §6.2)
 *
 * Unique records carry the cache-flush bit (RFC 6762 §10.2); shared ones must not.
 */
import type { AaaaRecord, ARecord, MdnsRecord, PtrRecord, SrvRecord, TxtRecord } from './record.js';
import { instanceName, SERVICES_META_QUERY, serviceTypeName } from './names.js';

export interface ServiceSpec {
  /** Instance label (RFC 6763 §4.1.1): user-visible, no dots. */
  instance: string;
  /** e.g. `_iolus._tcp`. */
  type: string;
  /** Fully qualified host name the SRV points at, e.g. `iolus-box.local`. */
  host: string;
  port: number;
  txt: Buffer[];
  ttl: {
    /** SRV and A/AAAA: records naming the host (RFC 6762 §10: 120 s recommended). */
    host: number;
    /** PTR and TXT (RFC 6762 §10 recommends 75 min; we default lower, see config.ts). */
    service: number;
  };
}

/** Addresses to publish for the host on one interface. */
export interface HostAddresses {
  ipv4: readonly string[];
  ipv6: readonly string[];
}

export interface ServiceRecords {
  meta: PtrRecord;
  ptr: PtrRecord;
  srv: SrvRecord;
  txt: TxtRecord;
}

export function serviceRecords(spec: ServiceSpec): ServiceRecords {
  const typeFqdn = serviceTypeName(spec.type);
  const name = instanceName(spec.instance, typeFqdn);
  return {
    meta: { name: SERVICES_META_QUERY, type: 'PTR', ttl: spec.ttl.service, flush: false, data: typeFqdn },
    ptr: { name: typeFqdn, type: 'PTR', ttl: spec.ttl.service, flush: false, data: name },
    srv: { name, type: 'SRV', ttl: spec.ttl.host, flush: true, data: { priority: 0, weight: 0, port: spec.port, target: spec.host } },
    txt: { name, type: 'TXT', ttl: spec.ttl.service, flush: true, data: spec.txt },
  };
}

export function addressRecords(host: string, addresses: HostAddresses, ttl: number): (ARecord | AaaaRecord)[] {
  return [
    ...addresses.ipv4.map((data): ARecord => ({ name: host, type: 'A', ttl, flush: true, data })),
    ...addresses.ipv6.map((data): AaaaRecord => ({ name: host, type: 'AAAA', ttl, flush: true, data })),
  ];
}

/** Everything the service answers for on one interface. */
export function zoneRecords(spec: ServiceSpec, addresses: HostAddresses): MdnsRecord[] {
  const s = serviceRecords(spec);
  return [s.ptr, s.srv, s.txt, ...addressRecords(spec.host, addresses, spec.ttl.host), s.meta];
}

/**
 * An announcement (RFC 6762 §8.3): all our records in the answer section, unsolicited.
 * The meta PTR is left out: it answers service-type enumeration only.
 */
export function announcementRecords(spec: ServiceSpec, addresses: HostAddresses): MdnsRecord[] {
  const s = serviceRecords(spec);
  return [s.ptr, s.srv, s.txt, ...addressRecords(spec.host, addresses, spec.ttl.host)];
}

/**
 * A goodbye (RFC 6762 §10.1): our records with TTL 0. Only the service's own records: the host
 * name may be shared with other agents of this machine and the meta PTR is shared by every
 * Iolus agent on the link (a goodbye for a shared record removes it for everyone); both simply
 * expire after their TTL.
 */
export function goodbyeRecords(spec: ServiceSpec): MdnsRecord[] {
  const s = serviceRecords(spec);
  return [s.ptr, s.srv, s.txt].map((r) => ({ ...r, ttl: 0 }));
}
