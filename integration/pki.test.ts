/**
 * The mutual-TLS identity layer against real sockets: a fastify server from createMtlsServer
 * on 127.0.0.1 and node:https clients with good and bad credentials; and the `iolus pki`
 * commands of the built binary (run `npx tsc -p .` first).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, type GroupCa } from '../src/pki/ca.js';
import { tlsFiles } from '../src/pki/files.js';
import type { Identity } from '../src/pki/identity.js';
import { issueCertificate, type IssuedCertificate } from '../src/pki/issue.js';
import { createMtlsServer, type MtlsServer } from '../src/pki/mtlsServer.js';
import { clientTlsOptions, loadTlsMaterial, mtlsAgent, type TlsMaterial } from '../src/pki/tlsOptions.js';
import { oddCertificateAndKey } from '../test/pki/helpers.js';

const MAIN = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

interface Reply {
  status: number;
  body: unknown;
}

/** GET over HTTPS; rejects on any TLS or socket failure. */
function get(port: number, path: string, options: https.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: 'GET', ...options }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** One-shot client options (no pooled agent) for credentials the server must refuse. */
function rawClient(ca: string, extra: https.RequestOptions = {}): https.RequestOptions {
  return { agent: false, ca, minVersion: 'TLSv1.3', rejectUnauthorized: true, ...extra };
}

describe('mutual TLS server (createMtlsServer)', () => {
  let ca: GroupCa;
  let otherCa: GroupCa;
  let controller: IssuedCertificate;
  let alice: IssuedCertificate;
  let server: MtlsServer;
  let port: number;
  let handled = 0;
  let refusedHandshakes = 0;

  const material = (c: IssuedCertificate, authority: GroupCa = ca): TlsMaterial => ({ ca: authority.certPem, cert: c.certPem, key: c.keyPem });

  beforeAll(async () => {
    ca = await createCa({ group: 'demo', validityDays: 30 });
    otherCa = await createCa({ group: 'demo', validityDays: 30 });
    controller = await issueCertificate(ca, { name: 'ctl', role: 'controller', validityDays: 5 });
    alice = await issueCertificate(ca, { name: 'alice', role: 'member', validityDays: 5 });
    server = createMtlsServer({ tls: material(controller) });
    server.get('/whoami', async (request) => {
      handled += 1;
      return request.identity;
    });
    server.server.on('tlsClientError', () => (refusedHandshakes += 1));
    await server.listen({ host: '127.0.0.1', port: 0 });
    port = (server.server.address() as AddressInfo).port;
  });

  /** The request fails, the server refused the handshake, and no handler ran. */
  async function expectRefusedAtTls(options: https.RequestOptions, clientError: RegExp): Promise<void> {
    const before = { handled, refusedHandshakes };
    const err: NodeJS.ErrnoException = await get(port, '/whoami', options).then(
      (reply) => new Error(`expected a refusal, got HTTP ${reply.status}`),
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(`${err.code ?? ''} ${err.message}`).toMatch(clientError);
    // The server's event may trail the client's error a little.
    for (let waited = 0; refusedHandshakes === before.refusedHandshakes && waited < 5_000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(refusedHandshakes).toBe(before.refusedHandshakes + 1);
    expect(handled).toBe(before.handled);
  }
  afterAll(async () => {
    await server?.close();
  });

  it('lets a client with a certificate from the group CA reach the handler, which sees its identity', async () => {
    const agent = mtlsAgent(material(alice), { group: 'demo' });
    try {
      const before = handled;
      const first = await get(port, '/whoami', { agent });
      expect(first.status).toBe(200);
      const id = first.body as Identity & { notAfter: string };
      expect(id).toMatchObject({ principal: 'alice', role: 'member', group: 'demo', fingerprint: alice.fingerprint });
      expect(new Date(id.notAfter).getTime()).toBe(alice.notAfter.getTime());
      // Keep-alive: the second request rides the same connection and keeps its identity.
      const second = await get(port, '/whoami', { agent });
      expect(second.body).toEqual(first.body);
      // A new connection with the same certificate: the identity the server remembers for it.
      const third = await get(port, '/whoami', { agent: false, ...clientTlsOptions(material(alice), { group: 'demo' }) });
      expect(third.body).toEqual(first.body);
      expect(handled).toBe(before + 3);
    } finally {
      agent.destroy();
    }
  });

  it('refuses a client without a certificate at TLS; the handler never runs', async () => {
    // TLS 1.3: the server answers with alert 116, certificate_required.
    await expectRefusedAtTls(rawClient(ca.certPem), /CERTIFICATE_REQUIRED|ECONNRESET/);
  });

  it('refuses a certificate from another CA, even one naming the same group and principal', async () => {
    const impostor = await issueCertificate(otherCa, { name: 'alice', role: 'member', validityDays: 5 });
    // Node's server drops the connection once verification fails: the client sees a hang-up.
    await expectRefusedAtTls(rawClient(ca.certPem, pair(impostor)), /ECONNRESET|socket hang up|alert/i);
  });

  it('refuses an expired certificate', async () => {
    const expired = await issueCertificate(ca, { name: 'bob', role: 'member', validityDays: 1, now: new Date(Date.now() - 10 * 86_400_000) });
    await expectRefusedAtTls(rawClient(ca.certPem, pair(expired)), /ECONNRESET|socket hang up|alert/i);
  });

  it('refuses a TLS 1.2-only client', async () => {
    await expectRefusedAtTls(
      { ...rawClient(ca.certPem, pair(alice)), minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' },
      /EPROTO.*protocol version/i,
    );
  });

  it('answers 403 (handler never runs) for a group-CA certificate without a usable identity or of another group', async () => {
    const before = handled;
    const noRole = await oddCertificateAndKey(ca, [{ O: ['demo'] }, { CN: ['eve'] }]);
    const r1 = await get(port, '/whoami', rawClient(ca.certPem, { cert: noRole.certPem, key: noRole.keyPem }));
    expect(r1.status).toBe(403);
    expect(r1.body).toEqual({ error: 'forbidden', reason: 'certificate refused: no role (subject OU)' });
    // Again on a new connection (the refusal is remembered for the certificate, and still a refusal).
    const again = await get(port, '/whoami', rawClient(ca.certPem, { cert: noRole.certPem, key: noRole.keyPem }));
    expect(again).toEqual(r1);
    const otherGroup = await oddCertificateAndKey(ca, [{ O: ['other'] }, { OU: ['member'] }, { CN: ['eve'] }]);
    const r2 = await get(port, '/whoami', rawClient(ca.certPem, { cert: otherGroup.certPem, key: otherGroup.keyPem }));
    expect(r2.status).toBe(403);
    expect(r2.body).toEqual({ error: 'forbidden', reason: 'certificate is for group other, this server serves demo' });
    expect(handled).toBe(before);
  });

  it('client side: refuses a server from another CA and a server that does not carry the name dialled', async () => {
    const before = handled;
    const strangerTrust = mtlsAgent({ ca: otherCa.certPem, ...pair(await issueCertificate(otherCa, { name: 'x', role: 'member', validityDays: 1 })) });
    await expect(get(port, '/whoami', { agent: strangerTrust })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    strangerTrust.destroy();
    const wrongName = { agent: false as const, ...clientTlsOptions(material(alice), { servername: 'elsewhere.example' }) };
    await expect(get(port, '/whoami', wrongName)).rejects.toThrow(/elsewhere\.example/);
    const wrongGroup = { agent: false as const, ...clientTlsOptions(material(alice), { group: 'other' }) };
    await expect(get(port, '/whoami', wrongGroup)).rejects.toThrow(/agent of group demo, not other/);
    expect(handled).toBe(before);
  });
});

function pair(c: IssuedCertificate): { cert: string; key: string } {
  return { cert: c.certPem, key: c.keyPem };
}

describe('iolus pki (built binary)', () => {
  let dir: string;
  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npx tsc -p . first`);
    dir = await mkdtemp(join(tmpdir(), 'iolus-pki-cli-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const iolus = (...args: string[]) => execa('node', [MAIN, ...args], { reject: false, timeout: 60_000 });

  it('init and issue write a PKI that a real mTLS server and client then use', async () => {
    const init = await iolus('pki', 'init', dir, '--group', 'studio', '--days', '30');
    expect(init.exitCode).toBe(0);
    expect(init.stdout).toContain(join(dir, 'ca.crt'));
    expect(init.stdout).toMatch(/fingerprint {2}[0-9a-f]{64}/);
    const again = await iolus('pki', 'init', dir, '--group', 'studio');
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already exists/);

    const ctl = await iolus('pki', 'issue', dir, '--name', 'ctl', '--role', 'controller');
    expect(ctl.exitCode).toBe(0);
    expect(ctl.stdout).toContain(join(dir, 'issued', 'ctl.crt'));
    const carol = await iolus('pki', 'issue', dir, '--name', 'carol', '--role', 'originator', '--days', '2');
    expect(carol.exitCode).toBe(0);
    const carolFingerprint = /fingerprint {2}([0-9a-f]{64})/.exec(carol.stdout)?.[1];

    const server = createMtlsServer({ tls: await loadTlsMaterial(tlsFiles(dir, 'ctl')), labels: tlsFiles(dir, 'ctl') });
    server.get('/whoami', async (request) => request.identity);
    await server.listen({ host: '127.0.0.1', port: 0 });
    const agent = mtlsAgent(await loadTlsMaterial(tlsFiles(dir, 'carol')), { group: 'studio' });
    try {
      const reply = await get((server.server.address() as AddressInfo).port, '/whoami', { agent });
      expect(reply.body).toMatchObject({ principal: 'carol', role: 'originator', group: 'studio', fingerprint: carolFingerprint });
    } finally {
      agent.destroy();
      await server.close();
    }
  });

  it.each([
    [['issue', '--name', 'x', '--role', 'king'], '--role: must be one of member, intermediary, originator, admin, controller'],
    [['issue', '--name', 'x/y', '--role', 'member'], '--name: must be 1-64 characters'],
    [['issue', '--name', 'x', '--role', 'member', '--days', 'soon'], '--days: must be a whole number'],
    [['issue', '--name', 'x', '--role', 'member', '--dns', 'x.example'], '--dns: only agent roles'],
  ])('bad flags %j exit 2 naming the flag', async (args, message) => {
    const [sub, ...rest] = args as [string, ...string[]];
    const r = await iolus('pki', sub, dir, ...rest);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`iolus pki: ${message}`);
  });
});
