/**
 * Whom the directory trusts, and for what: each configured group's CA certificate vouches for
 * that group only. The TLS layer accepts a client certificate from any of the CAs (or none, so a
 * refusal can say why); this module then tells, per connection, which CA issued the certificate
 * (the issuer OpenSSL verified the chain to, matched by fingerprint: exact, one hash) and whether
 * the identity inside belongs to that CA's group.
 */
import { X509Certificate as NodeX509 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { ValidationError } from '../../errors.js';
import { fingerprint } from '../../pki/fingerprint.js';
import { identityFromPeerCertificate, type Identity } from '../../pki/identity.js';

export interface GroupCaEntry {
  group: string;
  /** PEM of the group CA certificate. */
  caPem: string;
  /** For messages: where it came from. */
  source?: string;
}

/**
 * `anonymous`: no certificate. `refused`: a certificate the directory does not accept (another
 * CA, expired, no usable identity, an identity of another group than its CA's). `certified`: an
 * identity vouched for by the CA of `group`.
 */
export type Caller =
  | { kind: 'anonymous'; reason: string }
  | { kind: 'refused'; cause: 'other-ca' | 'identity' | 'group-mismatch' | 'expired'; reason: string }
  | { kind: 'certified'; identity: Identity; group: string };

export class GroupTrust {
  /** CA fingerprint → group. */
  private readonly byFingerprint = new Map<string, string>();
  private readonly pems: string[] = [];
  private readonly served = new Set<string>();
  private readonly callers = new WeakMap<TLSSocket, Caller>();

  constructor(entries: readonly GroupCaEntry[]) {
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      const where = e.source ?? `group ${e.group}`;
      if (seen.has(e.group)) problems.push(`${where}: group ${e.group} is listed twice`);
      seen.add(e.group);
      let cert: NodeX509;
      try {
        cert = new NodeX509(e.caPem);
      } catch {
        problems.push(`${where}: not a PEM certificate`);
        continue;
      }
      if (!cert.ca) {
        problems.push(`${where}: not a CA certificate (basicConstraints CA is not set)`);
        continue;
      }
      const o = subjectField(cert.subject, 'O');
      if (o !== e.group) problems.push(`${where}: the CA is for group ${JSON.stringify(o ?? '')} (subject O), not ${e.group}`);
      const fp = fingerprint(e.caPem);
      const other = this.byFingerprint.get(fp);
      if (other !== undefined) problems.push(`${where}: the same CA is configured for ${other}; each group has its own CA`);
      this.byFingerprint.set(fp, e.group);
      this.served.add(e.group);
      this.pems.push(e.caPem);
    }
    if (problems.length > 0) throw new ValidationError('directory.trust', problems);
  }

  /** Reads each group's CA file. Problems name the file. */
  static fromFiles(groups: Readonly<Record<string, { ca: string }>>): GroupTrust {
    const entries: GroupCaEntry[] = [];
    const problems: string[] = [];
    for (const [group, { ca }] of Object.entries(groups)) {
      try {
        entries.push({ group, caPem: readFileSync(ca, 'utf8'), source: `groups.${group}.ca (${ca})` });
      } catch (err) {
        problems.push(`groups.${group}.ca: ${ca}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
      }
    }
    if (problems.length > 0) throw new ValidationError('directory.trust', problems);
    return new GroupTrust(entries);
  }

  /** Every CA certificate, for the TLS server's `ca`. */
  get caCertificates(): readonly string[] {
    return this.pems;
  }

  get groups(): string[] {
    return [...this.byFingerprint.values()];
  }

  serves(group: string): boolean {
    return this.served.has(group);
  }

  /** Who is on this connection (computed once per connection, then per request only the expiry). */
  callerOf(socket: TLSSocket, now: number): Caller {
    let c = this.callers.get(socket);
    if (!c) {
      c = this.identify(socket);
      this.callers.set(socket, c);
    }
    if (c.kind === 'certified' && c.identity.notAfter.getTime() < now) {
      return { kind: 'refused', cause: 'expired', reason: `certificate expired at ${c.identity.notAfter.toISOString()}` };
    }
    return c;
  }

  private identify(socket: TLSSocket): Caller {
    const peer = socket.getPeerCertificate(true) as DetailedPeerCertificate | null;
    if (!peer || !peer.raw || peer.raw.length === 0) return { kind: 'anonymous', reason: 'no client certificate' };
    if (!socket.authorized) {
      const why = String(socket.authorizationError ?? 'not verified');
      if (/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|expired|not yet valid/i.test(why)) return { kind: 'refused', cause: 'expired', reason: `certificate not valid now (${why})` };
      return { kind: 'refused', cause: 'other-ca', reason: `certificate not issued by the CA of any group this directory serves (${why})` };
    }
    const issuer = peer.issuerCertificate;
    const group = issuer?.raw ? this.byFingerprint.get(fingerprint(new Uint8Array(issuer.raw))) : undefined;
    if (group === undefined) return { kind: 'refused', cause: 'other-ca', reason: 'certificate not issued directly by a group CA this directory serves' };
    let identity: Identity;
    try {
      identity = identityFromPeerCertificate(peer);
    } catch (err) {
      return { kind: 'refused', cause: 'identity', reason: (err as Error).message };
    }
    if (identity.group !== group) {
      return { kind: 'refused', cause: 'group-mismatch', reason: `certificate names group ${identity.group} but was issued by the CA of ${group}` };
    }
    return { kind: 'certified', identity, group };
  }
}

/** One attribute of Node's subject text (`O=g1\nCN=…`). */
function subjectField(subject: string, key: string): string | undefined {
  for (const line of subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && line.slice(0, i) === key) return line.slice(i + 1);
  }
  return undefined;
}
