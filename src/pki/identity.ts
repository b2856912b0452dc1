/**
 * Who is on the other end of a TLS connection: the identity a certificate carries (encoding
 * in subject.ts). Reads Node's own parse of the certificate (`tls.PeerCertificate`), so
 * extracting an identity costs a hash, not an ASN.1 decode.
 *
 * A certificate without a usable identity is refused with a ValidationError (`pki.identity`):
 * no CN / OU / O, a field given twice, a name outside the pattern, an unknown role, a
 * `urn:iolus:` SAN that disagrees with the subject, or a CA certificate.
 */
import { createHash, X509Certificate as NodeX509 } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { CodecError, ValidationError } from '../errors.js';
import { certificateDer } from './fingerprint.js';
import { isValidName } from './names.js';
import { isRole, ROLES, type Role } from './roles.js';
import { GROUP_URN_PREFIX, ROLE_URN_PREFIX, SUBJECT_FIELDS } from './subject.js';

export interface Identity {
  /** Subject CN. */
  readonly principal: string;
  /** Subject OU. */
  readonly role: Role;
  /** Subject O. */
  readonly group: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  readonly notAfter: Date;
}

/** The identity in a certificate given as PEM text or DER bytes. */
export function identityFromCertificate(cert: string | Uint8Array): Identity {
  const der = certificateDer(cert);
  let parsed: NodeX509;
  try {
    parsed = new NodeX509(der);
  } catch (err) {
    throw new CodecError('pki.der', 'not a DER X.509 certificate', { cause: err });
  }
  return identityFromPeerCertificate(parsed.toLegacyObject());
}

/** The identity in a TLS peer's certificate (`socket.getPeerCertificate()`). */
export function identityFromPeerCertificate(peer: PeerCertificate | null | undefined): Identity {
  if (!peer || !(peer.raw instanceof Uint8Array) || peer.raw.length === 0) {
    throw refuse('no certificate was presented');
  }
  if (peer.ca) throw refuse('a CA certificate does not identify a principal');
  const subject = (peer.subject ?? {}) as unknown as Record<string, unknown>;
  const principal = subjectField(subject, SUBJECT_FIELDS.principal, 'principal name');
  const roleText = subjectField(subject, SUBJECT_FIELDS.role, 'role');
  const group = subjectField(subject, SUBJECT_FIELDS.group, 'group');
  if (!isValidName(principal)) throw refuse(`principal name ${JSON.stringify(principal)} (subject CN) is not a valid name`);
  if (!isRole(roleText)) throw refuse(`role ${JSON.stringify(roleText)} (subject OU) is not one of ${ROLES.join(', ')}`);
  if (!isValidName(group)) throw refuse(`group ${JSON.stringify(group)} (subject O) is not a valid name`);

  const uris = sanUris(peer.subjectaltname);
  checkUrns(uris, ROLE_URN_PREFIX, roleText, 'role');
  checkUrns(uris, GROUP_URN_PREFIX, group, 'group');

  const notAfter = new Date(peer.valid_to);
  if (Number.isNaN(notAfter.getTime())) throw refuse(`unreadable notAfter ${JSON.stringify(peer.valid_to)}`);
  return {
    principal,
    role: roleText,
    group,
    fingerprint: createHash('sha256').update(peer.raw).digest('hex'),
    notAfter,
  };
}

function refuse(why: string): ValidationError {
  return new ValidationError('pki.identity', `certificate refused: ${why}`);
}

function subjectField(subject: Record<string, unknown>, attribute: string, what: string): string {
  const value = Object.hasOwn(subject, attribute) ? subject[attribute] : undefined;
  if (value === undefined || value === '') throw refuse(`no ${what} (subject ${attribute})`);
  if (typeof value !== 'string') throw refuse(`more than one ${what} (subject ${attribute})`);
  return value;
}

/** URI entries of Node's `subjectaltname` text ("DNS:a, URI:urn:…, IP Address:…"). */
function sanUris(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  return subjectaltname
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
}

function checkUrns(uris: readonly string[], prefix: string, expected: string, what: string): void {
  const values = uris.filter((u) => u.startsWith(prefix)).map((u) => u.slice(prefix.length));
  if (values.length === 0) return;
  if (values.length > 1 || values[0] !== expected) {
    throw refuse(`the ${what} in the subject (${expected}) disagrees with the SAN ${values.map((v) => prefix + v).join(', ')}`);
  }
}
