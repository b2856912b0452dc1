/**
 * An agent proves itself by its certificate before a member trusts a hint (paper §8.3 discovery
 * is unauthenticated; DESIGN.md "Discovery": mDNS is a hint). One TLS 1.3 handshake with the
 * member's own material, as the control client will make: the chain must lead to the group CA,
 * the certificate must name the host dialled and carry an agent role of this group
 * (tlsOptions.checkAgentCertificate); and when the hint named a certificate fingerprint (mDNS TXT
 * `fp`, or the directory's record of the registering connection), it must be this one.
 */
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { checkAgentCertificate, type TlsMaterial } from '../../pki/tlsOptions.js';

export interface VerifyTarget {
  url: string;
  /** Fingerprint the hint advertised, if any (lower-case hex). */
  fingerprint?: string;
}

export type Verdict =
  | { ok: true; fingerprint: string; principal: string }
  | { ok: false; reason: string };

export type Verifier = (target: VerifyTarget, group: string) => Promise<Verdict>;

/** Handshake-based verifier with the member's TLS material; bounded by `timeoutMs`. */
export function tlsVerifier(material: TlsMaterial, timeoutMs = 3_000): Verifier {
  const context = tls.createSecureContext({ ca: material.ca, cert: material.cert, key: material.key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  return (target, group) => verifyAgent(target, group, context, timeoutMs);
}

function verifyAgent(target: VerifyTarget, group: string, secureContext: tls.SecureContext, timeoutMs: number): Promise<Verdict> {
  let u: URL;
  try {
    u = new URL(target.url);
  } catch {
    return Promise.resolve({ ok: false, reason: `not a URL: ${target.url}` });
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 443);
  return new Promise<Verdict>((resolve) => {
    let done = false;
    const finish = (v: Verdict) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    let identityError: Error | undefined;
    const socket = tls.connect({
      host, port, secureContext, rejectUnauthorized: true,
      ...(isIpLiteral(host) ? {} : { servername: host }),
      checkServerIdentity: (h, cert) => {
        identityError = checkAgentCertificate(h, cert, group);
        return identityError;
      },
    }, () => {
      const peer = socket.getPeerCertificate();
      const fp = createHash('sha256').update(peer.raw).digest('hex');
      if (target.fingerprint !== undefined && target.fingerprint !== fp) {
        return finish({ ok: false, reason: `certificate fingerprint ${fp.slice(0, 16)}… is not the advertised ${target.fingerprint.slice(0, 16)}…` });
      }
      const cn = peer.subject?.CN;
      finish({ ok: true, fingerprint: fp, principal: typeof cn === 'string' ? cn : '?' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: describe(err, identityError) }));
    const timer = setTimeout(() => finish({ ok: false, reason: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
  });
}

const CHAIN_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED',
]);

function describe(err: NodeJS.ErrnoException, identityError: Error | undefined): string {
  if (identityError) return `certificate refused: ${identityError.message}`;
  if (err.code && CHAIN_ERRORS.has(err.code)) return `certificate not issued by the group CA (${err.code})`;
  if (err.code === 'INVALID_PURPOSE') return 'certificate refused: not an agent (server) certificate (INVALID_PURPOSE)';
  if (err.code === 'CERT_HAS_EXPIRED' || err.code === 'CERT_NOT_YET_VALID') return `certificate not valid now (${err.code})`;
  if (err.code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  return `${err.code ? `${err.code}: ` : ''}${err.message}`;
}

function isIpLiteral(h: string): boolean {
  return /^[\d.]+$/.test(h) || h.includes(':');
}
