import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError, ValidationError } from '../../src/errors.js';
import { createCa, initCa, loadCa } from '../../src/pki/ca.js';
import { caFiles } from '../../src/pki/files.js';
import { tempDir } from './helpers.js';

describe('group CA', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it('is a self-signed ECDSA P-256 CA limited to signing certificates and CRLs', async () => {
    const ca = await createCa({ group: 'demo', validityDays: 30 });
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('O=demo\nCN=Iolus group CA demo');
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(cert.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(ca.fingerprint);
    const text = cert.toLegacyObject();
    expect(text.ca).toBe(true);
    // Validity: backdated a little for clock skew, 30 days ahead.
    const days = (ca.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('writes ca.crt and a 0600 ca.key, and loads them back', async () => {
    const { ca, files } = await initCa(dir, { group: 'demo', validityDays: 30 });
    expect(files).toEqual(caFiles(dir));
    expect((await stat(files.key)).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o077).toBe(0);
    expect(await readFile(files.cert, 'utf8')).toBe(ca.certPem);
    const loaded = await loadCa(dir);
    expect(loaded.group).toBe('demo');
    expect(loaded.fingerprint).toBe(ca.fingerprint);
    expect(loaded.signer.keyId).toBe(ca.signer.keyId);
  });

  it('refuses to overwrite an existing CA unless forced', async () => {
    const before = await readFile(caFiles(dir).cert, 'utf8');
    const err = await initCa(dir, { group: 'other', validityDays: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(/already exists.*--force/);
    expect(await readFile(caFiles(dir).cert, 'utf8')).toBe(before);

    const { ca } = await initCa(dir, { group: 'other', validityDays: 30, force: true });
    expect(await readFile(caFiles(dir).cert, 'utf8')).toBe(ca.certPem);
    expect((await stat(caFiles(dir).key)).mode & 0o777).toBe(0o600);
    expect((await loadCa(dir)).group).toBe('other');
  });

  it('refuses when only a stray key is there, without writing anything', async () => {
    const t = await tempDir();
    await writeFile(caFiles(t.dir).key, 'stray');
    await expect(initCa(t.dir, { group: 'demo', validityDays: 1 })).rejects.toThrow(UsageError);
    expect(await readFile(caFiles(t.dir).key, 'utf8')).toBe('stray');
    await t.cleanup();
  });

  it('validates the group and the validity', async () => {
    await expect(createCa({ group: 'a/b', validityDays: 1 })).rejects.toThrow(/group: "a\/b" is not a valid name/);
    await expect(createCa({ group: 'g', validityDays: 0 })).rejects.toThrow(/validityDays: must be a whole number/);
    await expect(createCa({ group: 'g', validityDays: 1.5 })).rejects.toThrow(ValidationError);
  });

  it('names the file when loading fails', async () => {
    const t = await tempDir();
    await expect(loadCa(t.dir)).rejects.toThrow(/ca\.crt: cannot read the group CA certificate: no such file/);
    const other = await createCa({ group: 'x', validityDays: 1 });
    const mine = await createCa({ group: 'x', validityDays: 1 });
    await writeFile(caFiles(t.dir).cert, mine.certPem);
    await writeFile(caFiles(t.dir).key, other.keyPem);
    await expect(loadCa(t.dir)).rejects.toThrow(/ca\.key: does not match the certificate/);
    await writeFile(caFiles(t.dir).key, 'garbage');
    await expect(loadCa(t.dir)).rejects.toThrow(/ca\.key: not a PEM private key/);
    await writeFile(caFiles(t.dir).cert, 'garbage');
    await expect(loadCa(t.dir)).rejects.toThrow(/ca\.crt: not a PEM certificate/);
    await t.cleanup();
  });
});
