/**
 * The group CA: one self-signed ECDSA P-256 certificate per group (basicConstraints CA with
 * pathLength 0, keyUsage keyCertSign | cRLSign), whose key signs every principal's certificate.
 */
import { createPrivateKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { access } from 'node:fs/promises';
import { UsageError, ValidationError } from '../errors.js';
import { caFiles, ensureDir, readPemFile, writeFileSafely, type CaFiles } from './files.js';
import { fingerprint } from './fingerprint.js';
import { checkName, isValidName } from './names.js';
import { caSubject } from './subject.js';
import { BACKDATE_MS, DAY_MS, ECDSA_P256, x509 } from './x509.js';

export type CryptoKey = webcrypto.CryptoKey;

/** A loaded group CA: its PEM files' contents and what issuing needs, parsed once. */
export interface GroupCa {
  readonly group: string;
  readonly certPem: string;
  /** PKCS#8 PEM of the CA's private key. */
  readonly keyPem: string;
  /** SHA-256 of the CA certificate's DER, lowercase hex. */
  readonly fingerprint: string;
  readonly notAfter: Date;
  readonly signer: CaSigner;
}

export interface CaSigner {
  readonly privateKey: CryptoKey;
  readonly name: x509.Name;
  /** Subject key identifier (hex), copied into each leaf's authority key identifier. */
  readonly keyId: string;
}

export interface CaOptions {
  group: string;
  validityDays: number;
  /** Issue as if at this time (tests). Default: now. */
  now?: Date;
}

export interface InitCaOptions extends CaOptions {
  /** Replace an existing CA (every certificate it issued stops verifying). */
  force?: boolean;
}

export const DEFAULT_CA_DAYS = 3650;
export const MAX_DAYS = 36_500;

export function checkValidityDays(field: string, days: unknown): number {
  if (typeof days === 'number' && Number.isInteger(days) && days >= 1 && days <= MAX_DAYS) return days;
  throw new ValidationError('pki.days', `${field}: must be a whole number of days from 1 to ${MAX_DAYS}, got ${String(days)}`);
}

/** A new group CA, in memory. */
export async function createCa(options: CaOptions): Promise<GroupCa> {
  const group = checkName('group', options.group);
  const days = checkValidityDays('validityDays', options.validityDays);
  const now = options.now?.getTime() ?? Date.now();
  const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: caSubject(group),
    keys,
    signingAlgorithm: ECDSA_P256,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + days * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ski,
    ],
  });
  const keyPem = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  const certPem = cert.toString('pem');
  return {
    group,
    certPem,
    keyPem,
    fingerprint: fingerprint(new Uint8Array(cert.rawData)),
    notAfter: cert.notAfter,
    signer: { privateKey: keys.privateKey, name: cert.subjectName, keyId: ski.keyId },
  };
}

/** Creates a group CA in `dir` (ca.crt, ca.key). Refuses (UsageError `pki.exists`) to replace one unless `force`. */
export async function initCa(dir: string, options: InitCaOptions): Promise<{ ca: GroupCa; files: CaFiles }> {
  const files = caFiles(dir);
  const exclusive = !options.force;
  if (exclusive && ((await exists(files.cert)) || (await exists(files.key)))) throw existsError(dir);
  const ca = await createCa(options);
  await ensureDir(dir);
  try {
    // Key first: a crash in between leaves a key without a certificate, never the reverse.
    await writeFileSafely(files.key, ca.keyPem, { secret: true, exclusive });
    await writeFileSafely(files.cert, ca.certPem, { secret: false, exclusive });
  } catch (err) {
    // Only a concurrent init gets here: the checks above passed.
    if (err instanceof UsageError) throw existsError(dir);
    throw err;
  }
  return { ca, files };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function existsError(dir: string): UsageError {
  return new UsageError(
    'pki.exists',
    `a group CA already exists in ${dir}; replace it with force (--force), which invalidates every certificate it issued`,
  );
}

/** Loads the group CA from `dir`. Problems name the file. */
export async function loadCa(dir: string): Promise<GroupCa> {
  const files = caFiles(dir);
  // Both read at once, but a problem with the certificate is the one reported first, always.
  const [cert, key] = await Promise.allSettled([
    readPemFile(files.cert, 'the group CA certificate'),
    readPemFile(files.key, 'the group CA key'),
  ]);
  if (cert.status === 'rejected') throw cert.reason;
  if (key.status === 'rejected') throw key.reason;
  return caFromPem(cert.value, key.value, files);
}

/** A GroupCa from PEM text; `labels` name the sources in errors. */
export async function caFromPem(certPem: string, keyPem: string, labels: CaFiles = { cert: 'CA certificate', key: 'CA key' }): Promise<GroupCa> {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch (err) {
    throw new ValidationError('pki.file', `${labels.cert}: not a PEM certificate`, { cause: err });
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new ValidationError('pki.file', `${labels.cert}: not a CA certificate (basicConstraints CA is not set)`);
  const group = cert.subjectName.getField('O')[0];
  if (!isValidName(group)) throw new ValidationError('pki.file', `${labels.cert}: no valid group name in the subject O`);
  try {
    if (!new NodeX509(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
      throw new ValidationError('pki.file', `${labels.key}: does not match the certificate in ${labels.cert}`);
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError('pki.file', `${labels.key}: not a PEM private key`, { cause: err });
  }
  let privateKey: CryptoKey;
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    privateKey = await webcrypto.subtle.importKey('pkcs8', der, ECDSA_P256, false, ['sign']);
  } catch (err) {
    throw new ValidationError('pki.file', `${labels.key}: not an ECDSA P-256 PKCS#8 key`, { cause: err });
  }
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension) ?? (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey));
  return {
    group,
    certPem,
    keyPem,
    fingerprint: fingerprint(new Uint8Array(cert.rawData)),
    notAfter: cert.notAfter,
    signer: { privateKey, name: cert.subjectName, keyId: ski.keyId },
  };
}
