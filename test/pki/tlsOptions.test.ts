import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { createCa, type GroupCa } from '../../src/pki/ca.js';
import { issueCertificate, type IssuedCertificate } from '../../src/pki/issue.js';
import {
  checkAgentCertificate,
  checkTlsMaterial,
  clientTlsOptions,
  loadTlsMaterial,
  serverTlsOptions,
  type TlsMaterial,
} from '../../src/pki/tlsOptions.js';
import { oddCertificate, tempDir } from './helpers.js';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('TLS options', () => {
  let ca: GroupCa;
  let otherCa: GroupCa;
  let agent: IssuedCertificate;
  let member: IssuedCertificate;
  let material: TlsMaterial;
  beforeAll(async () => {
    ca = await createCa({ group: 'demo', validityDays: 30 });
    otherCa = await createCa({ group: 'demo', validityDays: 30 });
    agent = await issueCertificate(ca, { name: 'ctl', role: 'controller', validityDays: 5, dns: ['ctl.example'] });
    member = await issueCertificate(ca, { name: 'alice', role: 'member', validityDays: 5 });
    material = { ca: ca.certPem, cert: agent.certPem, key: agent.keyPem };
  });

  it('server: TLS 1.3 only, client certificate from the group CA required', () => {
    expect(serverTlsOptions(material)).toEqual({
      ca: ca.certPem,
      cert: agent.certPem,
      key: agent.keyPem,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
    });
  });

  it('server: refuses a certificate without an agent role', () => {
    expect(problems(() => serverTlsOptions({ ca: ca.certPem, cert: member.certPem, key: member.keyPem }))).toEqual([
      'certificate: a control-plane server needs an agent certificate (controller or intermediary); this one carries role member',
    ]);
  });

  it('client: TLS 1.3 only, our certificate, the group CA, a server check', () => {
    const o = clientTlsOptions({ ca: ca.certPem, cert: member.certPem, key: member.keyPem }, { group: 'demo', servername: 'ctl.example' });
    expect(o).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', rejectUnauthorized: true, servername: 'ctl.example', ca: ca.certPem });
    expect(typeof o.checkServerIdentity).toBe('function');
  });

  it('accepts an agent of the group under a name it carries, and nothing else', () => {
    const peer = new X509Certificate(agent.certPem).toLegacyObject();
    expect(checkAgentCertificate('ctl.example', peer, 'demo')).toBeUndefined();
    expect(checkAgentCertificate('127.0.0.1', peer)).toBeUndefined();
    expect(checkAgentCertificate('localhost', peer)).toBeUndefined();
    expect(checkAgentCertificate('evil.example', peer)?.message).toMatch(/evil\.example/);
    expect(checkAgentCertificate('ctl.example', peer, 'other')?.message).toBe('server ctl is an agent of group demo, not other');
    // A member's certificate carries no host names at all.
    const memberPeer = new X509Certificate(member.certPem).toLegacyObject();
    expect(checkAgentCertificate('localhost', memberPeer)).toBeInstanceOf(Error);
  });

  it('refuses a server whose certificate names the host but carries no agent role', async () => {
    const pem = await oddCertificate(ca, [{ O: ['demo'] }, { OU: ['member'] }, { CN: ['mallory'] }], [], ['localhost']);
    const peer = new X509Certificate(pem).toLegacyObject();
    expect(checkAgentCertificate('localhost', peer)?.message).toBe(
      'server mallory carries role member, not an agent role (controller, intermediary)',
    );
    const bare = await oddCertificate(ca, [{ CN: ['x'] }], [], ['localhost']);
    expect(checkAgentCertificate('localhost', new X509Certificate(bare).toLegacyObject())?.message).toMatch(/certificate refused: no role/);
  });

  it('says every problem of the material, naming the source', async () => {
    const intruder = await issueCertificate(otherCa, { name: 'ctl', role: 'controller', validityDays: 5 });
    const expired = await issueCertificate(ca, { name: 'old', role: 'member', validityDays: 1, now: new Date(Date.now() - 5 * 86_400_000) });
    const labels = { ca: 'ca.crt', cert: 'me.crt', key: 'me.key' };
    expect(problems(() => checkTlsMaterial({ ca: ca.certPem, cert: intruder.certPem, key: intruder.keyPem }, labels))).toEqual([
      'me.crt: not issued by the group CA in ca.crt',
    ]);
    expect(problems(() => checkTlsMaterial({ ca: ca.certPem, cert: agent.certPem, key: member.keyPem }, labels))).toEqual([
      'me.key: does not match the certificate in me.crt',
    ]);
    expect(problems(() => checkTlsMaterial({ ca: ca.certPem, cert: expired.certPem, key: expired.keyPem }, labels))[0]).toMatch(/^me\.crt: expired at /);
    expect(problems(() => checkTlsMaterial({ ca: agent.certPem, cert: agent.certPem, key: agent.keyPem }, labels))).toEqual([
      'ca.crt: not a CA certificate (basicConstraints CA is not set)',
    ]);
    expect(problems(() => checkTlsMaterial({ ca: 'x', cert: 'y', key: 'z' }, labels))).toEqual([
      'ca.crt: not a PEM certificate',
      'me.crt: not a PEM certificate',
      'me.key: not a PEM private key',
    ]);
    expect(problems(() => checkTlsMaterial({ ca: ca.certPem, cert: ca.certPem, key: ca.keyPem }, labels))).toEqual([
      'me.crt: certificate refused: a CA certificate does not identify a principal',
    ]);
  });

  describe('from files', () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeAll(async () => ({ dir, cleanup } = await tempDir()));
    afterAll(() => cleanup());

    it('loads the three files', async () => {
      const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'ctl.crt'), key: join(dir, 'ctl.key') };
      await writeFile(files.ca, ca.certPem);
      await writeFile(files.cert, agent.certPem);
      await writeFile(files.key, agent.keyPem, { mode: 0o600 });
      expect(await loadTlsMaterial(files)).toEqual(material);
    });

    it('names every missing or invalid file', async () => {
      const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'nope.crt'), key: join(dir, 'nope.key') };
      const err = await loadTlsMaterial(files).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).problems).toEqual([
        `${files.cert}: cannot read the certificate: no such file`,
        `${files.key}: cannot read the private key: no such file`,
      ]);
      await writeFile(join(dir, 'bad.key'), 'not a key');
      const bad = { ca: files.ca, cert: join(dir, 'ctl.crt'), key: join(dir, 'bad.key') };
      await expect(loadTlsMaterial(bad)).rejects.toThrow(`${bad.key}: not a PEM private key`);
    });
  });
});
