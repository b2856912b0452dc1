/**
 * TLS settings of the control plane: TLS 1.3 only, mutual authentication against the group
 * CA. Servers (agents) demand a client certificate from the group CA; clients accept only a
 * server whose certificate is from the group CA, names the host they dialled and carries an
 * agent role (controller or intermediary), optionally of a given group.
 *
 * Material is checked before use so a wrong file fails with a line naming it, not with an
 * OpenSSL error at the first handshake.
 */
import { createPrivateKey, X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import https from 'node:https';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { IolusError, PolicyError, ValidationError } from '../errors.js';
import { readPemFile, type TlsFiles } from './files.js';
import { identityFromPeerCertificate, type Identity } from './identity.js';
import { AGENT_ROLES, isAgentRole } from './roles.js';

export type { TlsFiles } from './files.js';

/** PEM text of the group CA certificate and of one principal's certificate and key. */
export interface TlsMaterial {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface ClientTlsParams {
  /** Accept only agents of this group. */
  group?: string;
  /** Name to send as SNI and to check the server certificate against (default: the host dialled). */
  servername?: string;
}

const DEFAULT_LABELS: TlsFiles = { ca: 'CA certificate', cert: 'certificate', key: 'key' };

/** Reads the three files; every unreadable or invalid file is one problem of the ValidationError, naming it. */
export async function loadTlsMaterial(files: TlsFiles, now: Date = new Date()): Promise<TlsMaterial> {
  const reads = await Promise.allSettled([
    readPemFile(files.ca, 'the group CA certificate'),
    readPemFile(files.cert, 'the certificate'),
    readPemFile(files.key, 'the private key'),
  ]);
  const problems = reads.flatMap((r) => (r.status === 'rejected' ? problemsOf(r.reason) : []));
  if (problems.length > 0) throw new ValidationError('pki.file', problems);
  const [ca, cert, key] = reads.map((r) => (r.status === 'fulfilled' ? r.value : ''));
  const material: TlsMaterial = { ca: ca ?? '', cert: cert ?? '', key: key ?? '' };
  checkTlsMaterial(material, files, now);
  return material;
}

/**
 * Checks that `ca` is a CA certificate, `cert` was issued by it, is in its validity period
 * and carries an identity, and `key` is its private key. Returns that identity.
 */
export function checkTlsMaterial(material: TlsMaterial, labels: TlsFiles = DEFAULT_LABELS, now: Date = new Date()): Identity {
  const problems: string[] = [];
  const ca = parseCertificate(material.ca, labels.ca, problems);
  const cert = parseCertificate(material.cert, labels.cert, problems);
  const key = parseKey(material.key, labels.key, problems);
  if (ca && !ca.ca) problems.push(`${labels.ca}: not a CA certificate (basicConstraints CA is not set)`);
  let identity: Identity | undefined;
  if (cert) {
    if (ca?.ca && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
      problems.push(`${labels.cert}: not issued by the group CA in ${labels.ca}`);
    }
    if (Date.parse(cert.validTo) < now.getTime()) problems.push(`${labels.cert}: expired at ${new Date(cert.validTo).toISOString()}`);
    if (Date.parse(cert.validFrom) > now.getTime()) problems.push(`${labels.cert}: not valid before ${new Date(cert.validFrom).toISOString()}`);
    if (key && !cert.checkPrivateKey(key)) problems.push(`${labels.key}: does not match the certificate in ${labels.cert}`);
    try {
      identity = identityFromPeerCertificate(cert.toLegacyObject());
    } catch (err) {
      problems.push(...problemsOf(err).map((p) => `${labels.cert}: ${p}`));
    }
  }
  if (problems.length > 0 || !identity) throw new ValidationError('pki.tls', problems);
  return identity;
}

/** Options for `https.createServer` / fastify's `https`: TLS 1.3, client certificate from the group CA required. */
export function serverTlsOptions(material: TlsMaterial, labels: TlsFiles = DEFAULT_LABELS): https.ServerOptions {
  const identity = checkTlsMaterial(material, labels);
  if (!isAgentRole(identity.role)) {
    throw new ValidationError(
      'pki.tls',
      `${labels.cert}: a control-plane server needs an agent certificate (${AGENT_ROLES.join(' or ')}); this one carries role ${identity.role}`,
    );
  }
  return {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    requestCert: true,
    rejectUnauthorized: true,
  };
}

/** Options for `https.request` / `https.Agent` / `tls.connect`: TLS 1.3, our certificate, only agents of the group CA. */
export function clientTlsOptions(material: TlsMaterial, params: ClientTlsParams = {}, labels: TlsFiles = DEFAULT_LABELS): https.AgentOptions {
  checkTlsMaterial(material, labels);
  return {
    ca: material.ca,
    cert: material.cert,
    key: material.key,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    rejectUnauthorized: true,
    ...(params.servername !== undefined ? { servername: params.servername } : {}),
    checkServerIdentity: (host, cert) => checkAgentCertificate(host, cert, params.group),
  };
}

/** A keep-alive `https.Agent` with `clientTlsOptions`. */
export function mtlsAgent(material: TlsMaterial, params: ClientTlsParams & { maxSockets?: number } = {}): https.Agent {
  return new https.Agent({
    ...clientTlsOptions(material, params),
    keepAlive: true,
    ...(params.maxSockets !== undefined ? { maxSockets: params.maxSockets } : {}),
  });
}

/**
 * `checkServerIdentity` for the control plane: the host name check of node:tls, then the
 * certificate must carry an agent role (and `group`, if given). Runs after the chain has been
 * verified against the group CA.
 */
export function checkAgentCertificate(host: string, cert: PeerCertificate, group?: string): Error | undefined {
  const hostError = checkServerIdentity(host, cert);
  if (hostError) return hostError;
  let identity: Identity;
  try {
    identity = identityFromPeerCertificate(cert);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
  if (!isAgentRole(identity.role)) {
    return new PolicyError('pki.server-role', `server ${identity.principal} carries role ${identity.role}, not an agent role (${AGENT_ROLES.join(', ')})`);
  }
  if (group !== undefined && identity.group !== group) {
    return new PolicyError('pki.server-group', `server ${identity.principal} is an agent of group ${identity.group}, not ${group}`);
  }
  return undefined;
}

function parseCertificate(pem: string, label: string, problems: string[]): NodeX509 | undefined {
  try {
    return new NodeX509(pem);
  } catch {
    problems.push(`${label}: not a PEM certificate`);
    return undefined;
  }
}

function parseKey(pem: string, label: string, problems: string[]): KeyObject | undefined {
  try {
    return createPrivateKey(pem);
  } catch {
    problems.push(`${label}: not a PEM private key`);
    return undefined;
  }
}

function problemsOf(err: unknown): string[] {
  if (err instanceof ValidationError) return [...err.problems];
  if (err instanceof IolusError || err instanceof Error) return [err.message];
  return [String(err)];
}
