import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { createCa, initCa, type GroupCa } from '../../src/pki/ca.js';
import { issuedFiles } from '../../src/pki/files.js';
import { issue, issueCertificate } from '../../src/pki/issue.js';
import { tempDir } from './helpers.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

describe('issuing certificates', () => {
  let ca: GroupCa;
  beforeAll(async () => {
    ca = await createCa({ group: 'demo', validityDays: 30 });
  });

  it('makes a member certificate: CN/OU/O, URN SANs, clientAuth only, signed by the CA', async () => {
    const c = await issueCertificate(ca, { name: 'alice', role: 'member', validityDays: 7 });
    const cert = new X509Certificate(c.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.subject).toBe('O=demo\nOU=member\nCN=alice');
    expect(cert.subjectAltName).toBe('URI:urn:iolus:group:demo, URI:urn:iolus:role:member');
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(c.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(c.fingerprint).toBe(cert.fingerprint256.replaceAll(':', '').toLowerCase());
    expect(c).toMatchObject({ name: 'alice', role: 'member', group: 'demo', dns: [], ip: [] });
    const days = (c.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(days).toBeLessThanOrEqual(7);
  });

  it('makes agent certificates TLS servers too, with localhost and loopback plus the names given', async () => {
    for (const role of ['controller', 'intermediary'] as const) {
      const c = await issueCertificate(ca, { name: `${role}-1`, role, validityDays: 7, dns: ['agent.example', 'localhost'], ip: ['10.0.0.7'] });
      const cert = new X509Certificate(c.certPem);
      expect(cert.keyUsage?.sort()).toEqual([SERVER_AUTH, CLIENT_AUTH].sort());
      expect(c.dns).toEqual(['localhost', 'agent.example']);
      expect(c.ip).toEqual(['127.0.0.1', '::1', '10.0.0.7']);
      expect(cert.checkHost('agent.example')).toBe('agent.example');
      expect(cert.checkHost('localhost')).toBe('localhost');
      expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(cert.checkIP('10.0.0.7')).toBe('10.0.0.7');
      expect(cert.subjectAltName).toContain(`URI:urn:iolus:role:${role}`);
    }
  });

  it('gives originator and admin certificates no server names', async () => {
    for (const role of ['originator', 'admin'] as const) {
      const c = await issueCertificate(ca, { name: 'op', role, validityDays: 1 });
      expect(new X509Certificate(c.certPem).keyUsage).toEqual([CLIENT_AUTH]);
    }
    await expect(issueCertificate(ca, { name: 'm', role: 'member', validityDays: 1, dns: ['x.example'] })).rejects.toThrow(
      /dns: only agent roles \(controller, intermediary\)/,
    );
    await expect(issueCertificate(ca, { name: 'm', role: 'admin', validityDays: 1, ip: ['10.0.0.1'] })).rejects.toThrow(ValidationError);
  });

  it('validates name, role, days, DNS names and IPs', async () => {
    await expect(issueCertificate(ca, { name: '../ca', role: 'member', validityDays: 1 })).rejects.toThrow(/name: "..\/ca" is not a valid name/);
    await expect(issueCertificate(ca, { name: 'a', role: 'root' as 'member', validityDays: 1 })).rejects.toThrow(/role: "root" is not one of member/);
    await expect(issueCertificate(ca, { name: 'a', role: 'member', validityDays: -1 })).rejects.toThrow(/validityDays/);
    await expect(issueCertificate(ca, { name: 'a', role: 'controller', validityDays: 1, dns: ['bad_name'] })).rejects.toThrow(/dns\[0\]/);
    await expect(issueCertificate(ca, { name: 'a', role: 'controller', validityDays: 1, ip: ['1.2.3'] })).rejects.toThrow(/ip\[0\]/);
  });

  it('never outlives its CA, and can be issued in the past (expired)', async () => {
    const long = await issueCertificate(ca, { name: 'long', role: 'member', validityDays: 3650 });
    expect(long.notAfter.getTime()).toBeLessThanOrEqual(ca.notAfter.getTime());
    const old = await issueCertificate(ca, { name: 'old', role: 'member', validityDays: 1, now: new Date(Date.now() - 10 * 86_400_000) });
    expect(old.notAfter.getTime()).toBeLessThan(Date.now() - 8 * 86_400_000);
  });

  describe('to files', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ dir, cleanup } = await tempDir());
      await initCa(dir, { group: 'demo', validityDays: 30 });
    });
    afterAll(() => cleanup());

    it('writes issued/<name>.crt and a 0600 <name>.key; a re-issue replaces both', async () => {
      const first = await issue(dir, { name: 'bob', role: 'member', validityDays: 1 });
      expect(first.files).toEqual(issuedFiles(dir, 'bob'));
      expect(await readFile(first.files.cert, 'utf8')).toBe(first.certPem);
      expect(await readFile(first.files.key, 'utf8')).toBe(first.keyPem);
      expect((await stat(first.files.key)).mode & 0o777).toBe(0o600);
      const again = await issue(dir, { name: 'bob', role: 'member', validityDays: 1 });
      expect(again.fingerprint).not.toBe(first.fingerprint);
      expect(await readFile(first.files.cert, 'utf8')).toBe(again.certPem);
    });

    it('refuses unsafe names before touching the disk', async () => {
      await expect(issue(dir, { name: '../../etc/x', role: 'member', validityDays: 1 })).rejects.toThrow(ValidationError);
    });
  });

  it('issues member certificates fast enough for benchmarks (rate logged, not asserted)', async () => {
    const n = 200;
    const fingerprints = new Set<string>();
    for (const inFlight of [1, 4]) {
      const start = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < n) {
            const i = next++;
            fingerprints.add((await issueCertificate(ca, { name: `m${inFlight}-${i}`, role: 'member', validityDays: 1 })).fingerprint);
          }
        }),
      );
      const seconds = (performance.now() - start) / 1000;
      console.log(`pki: ${n} member certificates in memory, ${inFlight} in flight: ${seconds.toFixed(2)} s, ${(n / seconds).toFixed(0)}/s`);
    }
    expect(fingerprints.size).toBe(2 * n);
  });
});
