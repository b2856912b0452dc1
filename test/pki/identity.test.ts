import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import { CodecError, ValidationError } from '../../src/errors.js';
import { createCa, type GroupCa } from '../../src/pki/ca.js';
import { certificateDer, fingerprint } from '../../src/pki/fingerprint.js';
import { identityFromCertificate, identityFromPeerCertificate } from '../../src/pki/identity.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/issue.js';
import { oddCertificate } from './helpers.js';

describe('identity from a certificate', () => {
  let ca: GroupCa;
  let alice: IssuedCertificate;
  beforeAll(async () => {
    ca = await createCa({ group: 'demo', validityDays: 30 });
    alice = await issueCertificate(ca, { name: 'site-a.alice', role: 'originator', validityDays: 2 });
  });

  it('reads principal, role, group, fingerprint and notAfter from PEM, DER and a TLS peer certificate', () => {
    const expected = {
      principal: 'site-a.alice',
      role: 'originator',
      group: 'demo',
      fingerprint: alice.fingerprint,
      notAfter: alice.notAfter,
    };
    expect(identityFromCertificate(alice.certPem)).toEqual(expected);
    const der = certificateDer(alice.certPem);
    expect(identityFromCertificate(der)).toEqual(expected);
    const peer = new X509Certificate(alice.certPem).toLegacyObject();
    expect(identityFromPeerCertificate(peer)).toEqual(expected);
  });

  it('fingerprints the DER with SHA-256, as Node does', () => {
    const node = new X509Certificate(alice.certPem).fingerprint256.replaceAll(':', '').toLowerCase();
    expect(fingerprint(alice.certPem)).toBe(node);
    expect(fingerprint(certificateDer(alice.certPem))).toBe(node);
    expect(fingerprint(alice.certPem)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses no certificate (what getPeerCertificate returns without one)', () => {
    expect(() => identityFromPeerCertificate({} as PeerCertificate)).toThrow(/no certificate was presented/);
    expect(() => identityFromPeerCertificate(null)).toThrow(ValidationError);
  });

  it('refuses input that is not a certificate', () => {
    expect(() => identityFromCertificate('hello')).toThrow(CodecError);
    expect(() => identityFromCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01]))).toThrow(CodecError);
    expect(() => fingerprint('-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n')).toThrow(CodecError);
  });

  it('refuses a CA certificate', () => {
    expect(() => identityFromCertificate(ca.certPem)).toThrow(/a CA certificate does not identify a principal/);
  });

  const refusals: Array<[string, Array<Record<string, string[]>>, string[], RegExp]> = [
    ['no CN', [{ O: ['demo'] }, { OU: ['member'] }], [], /no principal name \(subject CN\)/],
    ['no OU', [{ O: ['demo'] }, { CN: ['bob'] }], [], /no role \(subject OU\)/],
    ['no O', [{ OU: ['member'] }, { CN: ['bob'] }], [], /no group \(subject O\)/],
    ['two OUs', [{ O: ['demo'] }, { OU: ['member'] }, { OU: ['admin'] }, { CN: ['bob'] }], [], /more than one role/],
    ['an unknown role', [{ O: ['demo'] }, { OU: ['root'] }, { CN: ['bob'] }], [], /role "root" \(subject OU\) is not one of/],
    ['a bad principal name', [{ O: ['demo'] }, { OU: ['member'] }, { CN: ['bob smith'] }], [], /principal name "bob smith"/],
    ['a role URN that disagrees', [{ O: ['demo'] }, { OU: ['member'] }, { CN: ['bob'] }], ['urn:iolus:role:admin'], /role in the subject \(member\) disagrees/],
    ['two role URNs', [{ O: ['demo'] }, { OU: ['member'] }, { CN: ['bob'] }], ['urn:iolus:role:member', 'urn:iolus:role:admin'], /disagrees/],
    ['a group URN that disagrees', [{ O: ['demo'] }, { OU: ['member'] }, { CN: ['bob'] }], ['urn:iolus:group:other'], /group in the subject \(demo\) disagrees/],
  ];
  it.each(refusals)('refuses a certificate with %s', async (_what, subject, uris, message) => {
    const pem = await oddCertificate(ca, subject, uris);
    expect(() => identityFromCertificate(pem)).toThrow(ValidationError);
    expect(() => identityFromCertificate(pem)).toThrow(message);
  });

  it('accepts a subject-only certificate (no URNs) and one whose URNs agree', async () => {
    const bare = await oddCertificate(ca, [{ O: ['demo'] }, { OU: ['admin'] }, { CN: ['ops'] }]);
    expect(identityFromCertificate(bare)).toMatchObject({ principal: 'ops', role: 'admin', group: 'demo' });
    const both = await oddCertificate(ca, [{ O: ['demo'] }, { OU: ['admin'] }, { CN: ['ops'] }], ['urn:iolus:role:admin', 'urn:iolus:group:demo', 'https://example.org/']);
    expect(identityFromCertificate(both)).toMatchObject({ principal: 'ops', role: 'admin', group: 'demo' });
  });
});
