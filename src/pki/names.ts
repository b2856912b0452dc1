/**
 * Names that end up in certificates and file names: principals, groups, DNS names, IPs.
 * A principal name is also the file name of its certificate (`issued/<name>.crt`), so the
 * pattern admits no path separator and no leading dot; 64 is RFC 5280's ub-common-name.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ValidationError } from '../errors.js';

export const NAME_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$/;
const NAME_RULE = '1-64 characters from A-Z a-z 0-9 . _ -, starting and ending with a letter or digit';

// RFC 1123 host names: labels of 1-63 letters, digits and hyphens, not starting or ending with one.
const HOSTNAME_PATTERN = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const principalNameSchema = z.string().regex(NAME_PATTERN, { error: `must be ${NAME_RULE}` });
export const groupNameSchema = principalNameSchema;
export const hostnameSchema = z.string().regex(HOSTNAME_PATTERN, { error: 'must be a DNS host name (RFC 1123)' });
export const ipSchema = z.string().refine((s) => isIP(s) !== 0, { error: 'must be an IPv4 or IPv6 address' });

export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && NAME_PATTERN.test(value);
}

/** Returns `value` if it is a valid principal or group name; otherwise a ValidationError naming `field`. */
export function checkName(field: string, value: unknown): string {
  if (isValidName(value)) return value;
  throw new ValidationError('pki.name', `${field}: ${JSON.stringify(value)} is not a valid name (${NAME_RULE})`);
}

export function checkHostname(field: string, value: string): string {
  if (HOSTNAME_PATTERN.test(value)) return value;
  throw new ValidationError('pki.name', `${field}: ${JSON.stringify(value)} is not a DNS host name`);
}

export function checkIp(field: string, value: string): string {
  if (isIP(value) !== 0) return value;
  throw new ValidationError('pki.name', `${field}: ${JSON.stringify(value)} is not an IP address`);
}
