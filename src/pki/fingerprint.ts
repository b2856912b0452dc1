/** Certificate fingerprints: SHA-256 of the DER encoding, lowercase hex without separators. */
import { createHash } from 'node:crypto';
import { CodecError } from '../errors.js';
import { x509 } from './x509.js';

/** DER bytes of a certificate given as PEM text or DER bytes. */
export function certificateDer(cert: string | Uint8Array): Uint8Array {
  if (typeof cert !== 'string') return cert;
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new CodecError('pki.pem', 'not a PEM certificate');
  let block: ArrayBuffer | undefined;
  try {
    block = x509.PemConverter.decodeWithHeaders(cert).find((p) => p.type === 'CERTIFICATE')?.rawData;
  } catch (err) {
    throw new CodecError('pki.pem', 'malformed PEM certificate', { cause: err });
  }
  if (!block) throw new CodecError('pki.pem', 'malformed PEM certificate');
  return new Uint8Array(block);
}

export function fingerprint(cert: string | Uint8Array): string {
  return createHash('sha256').update(certificateDer(cert)).digest('hex');
}
