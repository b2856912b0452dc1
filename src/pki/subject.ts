/**
 * How an Iolus identity is written into a certificate. Both encodings are present in every
 * leaf this package issues:
 *
 *   subject   O=<group>, OU=<role>, CN=<principal>      (authoritative; DESIGN.md: identity
 *                                                        is the certificate's subject)
 *   SAN URIs  urn:iolus:group:<group>, urn:iolus:role:<role>
 *
 * The URIs serve tools that match on SANs. A reader requires the subject fields, and if a
 * certificate carries `urn:iolus:` URIs they must agree with the subject.
 */
import type { Role } from './roles.js';

export const GROUP_URN_PREFIX = 'urn:iolus:group:';
export const ROLE_URN_PREFIX = 'urn:iolus:role:';

/** Subject attribute for each identity field. */
export const SUBJECT_FIELDS = { principal: 'CN', role: 'OU', group: 'O' } as const;

/** JSON form of the subject name, in DER order (most general first). */
export function leafSubject(principal: string, role: Role, group: string): Array<Record<string, string[]>> {
  return [{ O: [group] }, { OU: [role] }, { CN: [principal] }];
}

export function caSubject(group: string): Array<Record<string, string[]>> {
  return [{ O: [group] }, { CN: [`Iolus group CA ${group}`] }];
}

export function identityUris(role: Role, group: string): string[] {
  return [`${GROUP_URN_PREFIX}${group}`, `${ROLE_URN_PREFIX}${role}`];
}
