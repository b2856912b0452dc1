/**
 * IP addresses and network prefixes, for the directory's locality order: which site an address
 * is in (configured CIDR prefixes) and whether two addresses share a network prefix. Addresses
 * become bytes once; IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) is
 * read as IPv4, and a zone (`fe80::1%eth0`) is dropped.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr extends IpAddress {
  length: number;
  /** As written in the configuration. */
  text: string;
}

/** Bytes of an IPv4 or IPv6 address; undefined for anything else. */
export function parseIp(text: string): IpAddress | undefined {
  const s = text.trim().replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (isIPv4(s)) return { family: 4, bytes: Uint8Array.from(s.split('.').map(Number)) };
  if (!isIPv6(s)) return undefined;
  const bytes = ipv6Bytes(s);
  if (!bytes) return undefined;
  // RFC 4291 §2.5.5.2: an IPv4-mapped address is that IPv4 address.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return { family: 4, bytes: bytes.slice(12) };
  return { family: 6, bytes };
}

function ipv6Bytes(s: string): Uint8Array | undefined {
  let head = s;
  const tail: number[] = [];
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (v4) {
    tail.push(...v4[1]!.split('.').map(Number));
    head = s.slice(0, s.length - v4[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const [left = '', right, extra] = head.split('::');
  if (extra !== undefined) return undefined;
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const words = 8 - tail.length / 2;
  const fill = right === undefined ? 0 : words - l.length - r.length;
  if (fill < 0 || (right === undefined && l.length !== words)) return undefined;
  const all = [...l, ...new Array<number>(fill).fill(0), ...r];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  out.set(tail, 12);
  return out;
}

/** `10.1.0.0/16`, `fd00::/8`, or a single address (full length). Undefined if malformed. */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = '', len, extra] = text.trim().split('/');
  if (extra !== undefined) return undefined;
  const ip = parseIp(addr);
  if (!ip || addr.includes('%')) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const length = len === undefined ? max : Number(len);
  if (length > max) return undefined;
  return { ...ip, length, text: text.trim() };
}

/** Do the first `length` bits of two addresses of one family agree? */
export function sharePrefix(a: IpAddress, b: IpAddress, length: number): boolean {
  if (a.family !== b.family) return false;
  const full = length >> 3;
  for (let i = 0; i < full; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  const rest = length & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((a.bytes[full] ?? 0) & mask) === ((b.bytes[full] ?? 0) & mask);
}

export function inCidr(address: IpAddress, cidr: Cidr): boolean {
  return sharePrefix(address, cidr, cidr.length);
}

/** Canonical text of an address (IPv4 dotted; IPv6 as node prints it), for responses and logs. */
export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return [...ip.bytes].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0)).toString(16));
  // RFC 5952 §4.2: the longest run of two or more zero words becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}
