/**
 * The resource records DNS-SD needs (PTR, SRV, TXT, A, AAAA), as a closed, checked model.
 * `readRecord` turns whatever dns-packet decoded from the network into this model or refuses
 * it; `toWire` turns our records back into dns-packet answers.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Answer } from 'dns-packet';
import { normalizeName } from './names.js';

interface Common {
  /** Owner name, as received (compare with sameName). */
  name: string;
  /** Seconds; 0 is a goodbye (RFC 6762 §10.1). */
  ttl: number;
  /** Cache-flush bit: this host owns the whole RRset (RFC 6762 §10.2). */
  flush: boolean;
}
export interface PtrRecord extends Common { type: 'PTR'; data: string }
export interface SrvRecord extends Common { type: 'SRV'; data: { priority: number; weight: number; port: number; target: string } }
export interface TxtRecord extends Common { type: 'TXT'; data: Buffer[] }
export interface ARecord extends Common { type: 'A'; data: string }
export interface AaaaRecord extends Common { type: 'AAAA'; data: string }
export type MdnsRecord = PtrRecord | SrvRecord | TxtRecord | ARecord | AaaaRecord;
export type RecordType = MdnsRecord['type'];

export const RECORD_TYPES: readonly RecordType[] = ['PTR', 'SRV', 'TXT', 'A', 'AAAA'];
const MAX_TTL = 0xffffffff;

export function isRecordType(t: unknown): t is RecordType {
  return typeof t === 'string' && (RECORD_TYPES as readonly string[]).includes(t);
}

/** Canonical text of an IPv6 address (compressed, lower-case), so equal addresses compare equal. */
export function canonicalIPv6(address: string): string {
  const [addr = '', zone] = address.split('%', 2);
  const c = new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  return zone === undefined ? c : `${c}%${zone}`;
}

/** Canonical rdata, for identity: two records are "the same" (RFC 6762 §7.1, §10.2) if name, type and this match. */
export function rdataKey(r: MdnsRecord): string {
  switch (r.type) {
    case 'PTR':
      return normalizeName(r.data);
    case 'SRV':
      return `${r.data.priority} ${r.data.weight} ${r.data.port} ${normalizeName(r.data.target)}`;
    case 'TXT':
      return Buffer.concat(r.data.map((s) => Buffer.concat([Buffer.from([s.length]), s]))).toString('hex');
    case 'A':
      return r.data;
    case 'AAAA':
      return canonicalIPv6(r.data);
  }
}

/** Name and type: an RRset (RFC 6762 §10.2 flushes whole RRsets). */
export function rrsetKey(name: string, type: string): string {
  return `${normalizeName(name)}\u0000${type}`;
}

export function recordKey(r: MdnsRecord): string {
  return `${rrsetKey(r.name, r.type)}\u0000${rdataKey(r)}`;
}

export type ReadResult = { ok: true; record: MdnsRecord } | { ok: false; unsupported: boolean; reason: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 255;
const isU16 = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff;

/**
 * Checks one record decoded by dns-packet. Never throws: network data gets a reason instead.
 * Types we do not use (NSEC, HINFO, …) come back `unsupported`, not malformed.
 */
export function readRecord(raw: unknown): ReadResult {
  if (!isObject(raw)) return { ok: false, unsupported: false, reason: 'not a record' };
  const { name, type, ttl, data } = raw;
  if (!isRecordType(type)) return { ok: false, unsupported: true, reason: `type ${String(type)}` };
  if (raw.class !== 'IN') return { ok: false, unsupported: true, reason: `class ${String(raw.class)}` };
  if (!isName(name)) return { ok: false, unsupported: false, reason: 'bad owner name' };
  if (!Number.isInteger(ttl) || (ttl as number) < 0 || (ttl as number) > MAX_TTL) return { ok: false, unsupported: false, reason: 'bad ttl' };
  const common = { name, ttl: ttl as number, flush: raw.flush === true };
  switch (type) {
    case 'PTR':
      return isName(data) ? { ok: true, record: { ...common, type, data } } : { ok: false, unsupported: false, reason: 'bad PTR target' };
    case 'A':
      return typeof data === 'string' && isIPv4(data)
        ? { ok: true, record: { ...common, type, data } }
        : { ok: false, unsupported: false, reason: 'bad A address' };
    case 'AAAA':
      return typeof data === 'string' && isIPv6(data) && !data.includes('%')
        ? { ok: true, record: { ...common, type, data: canonicalIPv6(data) } }
        : { ok: false, unsupported: false, reason: 'bad AAAA address' };
    case 'SRV': {
      if (!isObject(data) || !isName(data.target) || !isU16(data.port) || !isU16(data.priority ?? 0) || !isU16(data.weight ?? 0)) {
        return { ok: false, unsupported: false, reason: 'bad SRV data' };
      }
      const srv = { priority: (data.priority as number | undefined) ?? 0, weight: (data.weight as number | undefined) ?? 0, port: data.port, target: data.target };
      return { ok: true, record: { ...common, type, data: srv } };
    }
    case 'TXT': {
      const list = Array.isArray(data) ? data : [data];
      const strings: Buffer[] = [];
      for (const s of list) {
        if (Buffer.isBuffer(s)) strings.push(s);
        else if (typeof s === 'string') strings.push(Buffer.from(s, 'utf8'));
        else return { ok: false, unsupported: false, reason: 'bad TXT data' };
      }
      return { ok: true, record: { ...common, type, data: strings } };
    }
  }
}

/** Our record as dns-packet encodes it: class IN, cache-flush bit as given. */
export function toWire(r: MdnsRecord): Answer {
  const base = { name: r.name, ttl: r.ttl, class: 'IN' as const, flush: r.flush };
  switch (r.type) {
    case 'PTR':
    case 'A':
    case 'AAAA':
      return { ...base, type: r.type, data: r.data };
    case 'SRV':
      return { ...base, type: 'SRV', data: { ...r.data } };
    case 'TXT':
      return { ...base, type: 'TXT', data: r.data };
  }
}

/** The same record with another TTL (goodbyes use 0, RFC 6762 §10.1). */
export function withTtl<R extends MdnsRecord>(r: R, ttl: number): R {
  return { ...r, ttl };
}
