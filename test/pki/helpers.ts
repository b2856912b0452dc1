/** Shared fixtures for the pki tests: temporary directories and hand-shaped certificates. */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroupCa } from '../../src/pki/ca.js';
import { ECDSA_P256, x509 } from '../../src/pki/x509.js';

export async function tempDir(prefix = 'iolus-pki-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A certificate signed by `ca` with exactly the subject and SAN URIs and DNS names given, for testing what
 * identity extraction refuses (the issuer in src/pki never makes these).
 */
export async function oddCertificate(
  ca: GroupCa,
  subject: Array<Record<string, string[]>>,
  uris: string[] = [],
  dns: string[] = [],
): Promise<string> {
  return (await oddCertificateAndKey(ca, subject, uris, dns)).certPem;
}

export async function oddCertificateAndKey(
  ca: GroupCa,
  subject: Array<Record<string, string[]>>,
  uris: string[] = [],
  dns: string[] = [],
): Promise<{ certPem: string; keyPem: string }> {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const cert = await x509.X509CertificateGenerator.create({
    subject,
    issuer: ca.signer.name,
    publicKey: new Uint8Array(publicKey),
    signingKey: ca.signer.privateKey,
    signingAlgorithm: ECDSA_P256,
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ...(uris.length + dns.length > 0
        ? [
            new x509.SubjectAlternativeNameExtension([
              ...uris.map((value) => ({ type: 'url' as const, value })),
              ...dns.map((value) => ({ type: 'dns' as const, value })),
            ]),
          ]
        : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: privateKey };
}
