/**
 * DNS-SD TXT record key/value strings (RFC 6763 §6).
 *
 * A TXT record is a sequence of strings of at most 255 bytes each; DNS-SD reads each one as
 * `key=value` (value: opaque bytes, here UTF-8) or a bare `key` (a boolean attribute, §6.4).
 */
import { ValidationError } from '../../errors.js';

/** `true` stands for a key present without '=' (RFC 6763 §6.4). */
export type TxtValue = string | true;
export type TxtAttributes = ReadonlyMap<string, TxtValue>;

const MAX_STRING_BYTES = 255; // RFC 6763 §6.1: one length byte per string
// RFC 6763 §6.4: printable US-ASCII (0x20-0x7E) except '='.
const KEY = /^[\x20-\x3c\x3e-\x7e]+$/;

/**
 * Encodes attributes in the given order (RFC 6763 §6.7 wants `txtvers` first: put it first).
 * An empty set is one empty string: a TXT record must not be empty (§6.1).
 */
export function encodeTxt(attributes: Iterable<readonly [string, TxtValue]>): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (const [key, value] of attributes) {
    if (!KEY.test(key)) {
      throw new ValidationError('mdns.txt', `TXT key '${key}': must be printable US-ASCII without '=' (RFC 6763 §6.4)`);
    }
    const lower = key.toLowerCase();
    if (seen.has(lower)) throw new ValidationError('mdns.txt', `TXT key '${key}' appears twice (RFC 6763 §6.4)`);
    seen.add(lower);
    const s = Buffer.from(value === true ? key : `${key}=${value}`, 'utf8');
    if (s.length > MAX_STRING_BYTES) {
      throw new ValidationError('mdns.txt', `TXT string for '${key}' is ${s.length} bytes; the limit is ${MAX_STRING_BYTES} (RFC 6763 §6.1)`);
    }
    out.push(s);
  }
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

/**
 * Decodes TXT strings into attributes with lower-case keys (§6.4: keys are case-insensitive).
 * Never throws: strings starting with '=' are ignored and only the first occurrence of a key
 * counts (§6.4), empty strings are skipped.
 */
export function decodeTxt(strings: readonly Uint8Array[]): Map<string, TxtValue> {
  const out = new Map<string, TxtValue>();
  for (const raw of strings) {
    if (raw.length === 0) continue;
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const eq = buf.indexOf(0x3d);
    const keyBytes = eq < 0 ? buf : buf.subarray(0, eq);
    if (keyBytes.length === 0) continue; // "=value": no key, silently ignored (§6.4)
    const key = keyBytes.toString('latin1');
    if (!KEY.test(key)) continue;
    const lower = key.toLowerCase();
    if (out.has(lower)) continue;
    out.set(lower, eq < 0 ? true : buf.subarray(eq + 1).toString('utf8'));
  }
  return out;
}

/** Renders attributes for logs and the CLI: `a=1 b`. */
export function formatTxt(attributes: TxtAttributes): string {
  return [...attributes].map(([k, v]) => (v === true ? k : `${k}=${v}`)).join(' ');
}
