/**
 * DNS-SD names (RFC 6763 §4, §7) and the name comparison mDNS uses (RFC 6762 §16).
 *
 * dns-packet represents a name as a dot-joined string and has no escaping, so a label that
 * contains a dot cannot be encoded. We therefore refuse dots in the labels we publish, and when
 * we parse a service instance name we take everything before the service type as the instance
 * label, which also recovers other publishers' instance names that contain dots.
 */
import { ValidationError } from '../../errors.js';

/** The DNS-SD service type every Iolus agent advertises. */
export const IOLUS_SERVICE_TYPE = '_iolus._tcp';
/** mDNS names live in `local.` (RFC 6762 §3). */
export const LOCAL_DOMAIN = 'local';
/** Service type enumeration (RFC 6763 §9). */
export const SERVICES_META_QUERY = '_services._dns-sd._udp.local';

const MAX_LABEL_BYTES = 63; // RFC 1035 §2.3.4
const MAX_NAME_BYTES = 253; // presentation form of a 255-byte wire name
const SERVICE_TYPE = /^_[a-z0-9](?:[a-z0-9-]{0,13}[a-z0-9])?\._(?:tcp|udp)$/i; // RFC 6763 §7, RFC 6335 §5.1

/** Lower-case ASCII only and drop a trailing dot: mDNS names compare case-insensitively (RFC 6762 §16). */
export function normalizeName(name: string): string {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  return trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

export function sameName(a: string, b: string): boolean {
  return normalizeName(a) === normalizeName(b);
}

/** `_iolus._tcp` → `_iolus._tcp.local`, after checking the type's shape. */
export function serviceTypeName(type: string, domain = LOCAL_DOMAIN): string {
  if (!SERVICE_TYPE.test(type)) {
    throw new ValidationError('mdns.serviceType', `service type '${type}': expected _name._tcp or _name._udp (RFC 6763 §7)`);
  }
  return `${type}.${domain}`;
}

/** Checks one label we are about to publish: non-empty, ≤63 bytes, no dot or backslash (see file comment). */
export function checkLabel(label: string, what: string): string {
  const bytes = Buffer.byteLength(label, 'utf8');
  if (bytes === 0 || bytes > MAX_LABEL_BYTES) {
    throw new ValidationError('mdns.label', `${what} '${label}': must be 1-${MAX_LABEL_BYTES} bytes of UTF-8 (has ${bytes})`);
  }
  if (label.includes('.') || label.includes('\\')) {
    throw new ValidationError('mdns.label', `${what} '${label}': must not contain '.' or '\\'`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(label)) {
    throw new ValidationError('mdns.label', `${what} '${label}': must not contain control characters (RFC 6763 §4.1.1)`);
  }
  return label;
}

/** `Instance` + `_iolus._tcp.local` → `Instance._iolus._tcp.local` (RFC 6763 §4.1). */
export function instanceName(instance: string, typeFqdn: string): string {
  checkLabel(instance, 'instance name');
  const name = `${instance}.${typeFqdn}`;
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES) {
    throw new ValidationError('mdns.name', `service instance name '${name}' is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return name;
}

/**
 * The instance part of `Instance._iolus._tcp.local`, or undefined when the name is not an
 * instance of that type. Everything before the type is the instance (it may contain dots).
 */
export function instanceOf(fqdn: string, typeFqdn: string): string | undefined {
  const name = fqdn.endsWith('.') ? fqdn.slice(0, -1) : fqdn;
  const suffix = `.${normalizeName(typeFqdn)}`;
  if (name.length <= suffix.length || !normalizeName(name).endsWith(suffix)) return undefined;
  return name.slice(0, name.length - suffix.length);
}

/** A host name for `local.`: a bare label gets `.local`, a name already in `.local` is kept. */
export function hostName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (normalizeName(n).endsWith(`.${LOCAL_DOMAIN}`)) {
    for (const label of n.split('.')) checkLabel(label, 'host name label');
    return n;
  }
  checkLabel(n, 'host name');
  return `${n}.${LOCAL_DOMAIN}`;
}

/** Turns an arbitrary string (e.g. os.hostname()) into a safe host label: [a-z0-9-], ≤63 bytes. */
export function toHostLabel(raw: string): string {
  const label = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_LABEL_BYTES)
    .replace(/-+$/g, '');
  return label.length > 0 ? label : 'iolus';
}

/** Truncates a UTF-8 string to at most `max` bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  for (const ch of s) {
    if (Buffer.byteLength(out + ch, 'utf8') > max) break;
    out += ch;
  }
  return out;
}
