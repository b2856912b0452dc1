/**
 * Issuing a principal's certificate (ECDSA P-256) from the group CA. The identity encoding is
 * in subject.ts; extensions:
 *
 *   basicConstraints CA:false, keyUsage digitalSignature (both critical)
 *   extKeyUsage      clientAuth; agents (controller, intermediary) also serverAuth
 *   subjectAltName   urn:iolus:group:<g>, urn:iolus:role:<r>; agents also DNS localhost and
 *                    IP 127.0.0.1, ::1, plus the DNS names and IPs asked for
 *   authorityKeyIdentifier = the CA's subjectKeyIdentifier
 *
 * In process (node:crypto key generation, @peculiar/x509 signing), no openssl subprocess.
 */
import { generateKeyPair } from 'node:crypto';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { ValidationError } from '../errors.js';
import { checkValidityDays, loadCa, type CaSigner, type GroupCa } from './ca.js';
import { ensureDir, issuedFiles, writeFileSafely, type CaFiles } from './files.js';
import { fingerprint } from './fingerprint.js';
import { checkHostname, checkIp, checkName } from './names.js';
import { AGENT_ROLES, isAgentRole, isRole, ROLES, type Role } from './roles.js';
import { identityUris, leafSubject } from './subject.js';
import { BACKDATE_MS, DAY_MS, ECDSA_P256, x509 } from './x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export const DEFAULT_LEAF_DAYS = 365;
/** Names every agent certificate carries, so a local deployment works out of the box. */
export const DEFAULT_AGENT_DNS: readonly string[] = ['localhost'];
export const DEFAULT_AGENT_IP: readonly string[] = ['127.0.0.1', '::1'];

export interface IssueOptions {
  /** Principal name: subject CN and file name. */
  name: string;
  role: Role;
  validityDays: number;
  /** Extra DNS names (agent roles only). */
  dns?: readonly string[];
  /** Extra IP addresses (agent roles only). */
  ip?: readonly string[];
  /** Issue as if at this time (tests: expired certificates). Default: now. */
  now?: Date;
}

export interface IssuedCertificate {
  readonly name: string;
  readonly role: Role;
  readonly group: string;
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  /** Never later than the CA's own notAfter. */
  readonly notAfter: Date;
  readonly dns: readonly string[];
  readonly ip: readonly string[];
}

/** A certificate and key for one principal, in memory. */
export async function issueCertificate(ca: GroupCa, options: IssueOptions): Promise<IssuedCertificate> {
  const name = checkName('name', options.name);
  if (!isRole(options.role)) {
    throw new ValidationError('pki.role', `role: ${JSON.stringify(options.role)} is not one of ${ROLES.join(', ')}`);
  }
  const role = options.role;
  const days = checkValidityDays('validityDays', options.validityDays);
  const { dns, ip } = subjectAltNames(role, options.dns ?? [], options.ip ?? []);
  const now = options.now?.getTime() ?? Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(Math.min(now + days * DAY_MS, ca.notAfter.getTime()));

  const { publicKey, privateKey } = await generateKeyPairAsync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const san = new x509.SubjectAlternativeNameExtension([
    ...identityUris(role, ca.group).map((value) => ({ type: 'url' as const, value })),
    ...dns.map((value) => ({ type: 'dns' as const, value })),
    ...ip.map((value) => ({ type: 'ip' as const, value })),
  ]);
  const cert = await x509.X509CertificateGenerator.create({
    subject: leafSubject(name, role, ca.group),
    issuer: ca.signer.name,
    publicKey: new Uint8Array(publicKey),
    signingKey: ca.signer.privateKey,
    signingAlgorithm: ECDSA_P256,
    notBefore,
    notAfter,
    extensions: [...constantExtensions(ca.signer, isAgentRole(role)), san],
  });
  return {
    name,
    role,
    group: ca.group,
    certPem: cert.toString('pem'),
    keyPem: privateKey,
    fingerprint: fingerprint(new Uint8Array(cert.rawData)),
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dns,
    ip,
  };
}

/** Issues a certificate from the CA in `dir` into `dir/issued/<name>.crt|.key` (a re-issue replaces both). */
export async function issue(dir: string, options: IssueOptions): Promise<IssuedCertificate & { files: CaFiles }> {
  const files = issuedFiles(dir, options.name);
  const ca = await loadCa(dir);
  const issued = await issueCertificate(ca, options);
  await ensureDir(dirname(files.key));
  await writeFileSafely(files.key, issued.keyPem, { secret: true, exclusive: false });
  await writeFileSafely(files.cert, issued.certPem, { secret: false, exclusive: false });
  return { ...issued, files };
}

function subjectAltNames(role: Role, dns: readonly string[], ip: readonly string[]): { dns: string[]; ip: string[] } {
  if (!isAgentRole(role)) {
    if (dns.length > 0 || ip.length > 0) {
      throw new ValidationError(
        'pki.san',
        `${dns.length > 0 ? 'dns' : 'ip'}: only agent roles (${AGENT_ROLES.join(', ')}) are TLS servers; a ${role} certificate carries no DNS names or IP addresses`,
      );
    }
    return { dns: [], ip: [] };
  }
  dns.forEach((d, i) => checkHostname(`dns[${i}]`, d));
  ip.forEach((a, i) => checkIp(`ip[${i}]`, a));
  return { dns: unique([...DEFAULT_AGENT_DNS, ...dns]), ip: unique([...DEFAULT_AGENT_IP, ...ip]) };
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

// The extensions every leaf of one CA shares, built once per CA and role kind: building an
// extension costs as much as signing on a slow machine.
const extensionCache = new WeakMap<CaSigner, { member: x509.Extension[]; agent: x509.Extension[] }>();

function constantExtensions(signer: CaSigner, agent: boolean): x509.Extension[] {
  let cached = extensionCache.get(signer);
  if (!cached) {
    const common = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.AuthorityKeyIdentifierExtension(signer.keyId),
    ];
    cached = {
      member: [...common, new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth])],
      agent: [...common, new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth, x509.ExtendedKeyUsage.serverAuth])],
    };
    extensionCache.set(signer, cached);
  }
  return agent ? cached.agent : cached.member;
}
