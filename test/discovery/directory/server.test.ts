/**
 * DirectoryServer over real HTTPS on 127.0.0.1 with in-memory PKIs: who may register (and every
 * refusal with its status and counted cause), soft state (refresh, update, expiry on a fake
 * clock, unregister), lookups in locality order, who may look up, the sd-style list, SAP
 * announcements through a fake sender, and garbage that must not hurt it.
 */
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryServer } from '../../../src/discovery/directory/server.js';
import { GroupTrust } from '../../../src/discovery/directory/trust.js';
import { DirectoryClient, DirectoryError } from '../../../src/discovery/directory/client.js';
import { decodeSapPacket } from '../../../src/discovery/sap/packet.js';
import { parseSdp, readGroupDescription } from '../../../src/discovery/sap/sdp.js';
import type { SapSender } from '../../../src/discovery/sap/announcer.js';
import { FakeClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/log.js';
import { directoryConfig, testGroup, type Pair, type TestGroup } from './helpers.js';

interface Reply {
  status: number;
  body: { error?: string; reason?: string } & Record<string, unknown>;
}

let g1: TestGroup;
let g2: TestGroup;
let rogue: TestGroup;
let dirCa: TestGroup;
let dirPair: Pair;
const pairs: Record<string, Pair> = {};

function call(url: string, method: string, path: string, who: Pair | undefined, body?: string | object): Promise<Reply> {
  const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), {
      method, agent: false, ca: dirCa.ca.certPem, ...(who ? { cert: who.cert, key: who.key } : {}),
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as Reply['body'] }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

class FakeSap implements SapSender {
  readonly packets: ReturnType<typeof decodeSapPacket>[] = [];
  async send(p: Uint8Array): Promise<void> {
    this.packets.push(decodeSapPacket(p));
  }
  async close(): Promise<void> {}
}

async function start(over: Parameters<typeof directoryConfig>[0] = {}, deps: { clock?: FakeClock; sap?: FakeSap } = {}): Promise<DirectoryServer> {
  const trust = new GroupTrust([g1, g2].map((g) => ({ group: g.group, caPem: g.ca.certPem })));
  return DirectoryServer.start({ config: directoryConfig(over), tls: { cert: dirPair.cert, key: dirPair.key }, trust }, {
    logger: silentLogger(), ...(deps.clock ? { clock: deps.clock } : {}), ...(deps.sap ? { sapSender: deps.sap } : {}),
  });
}

const REG = (url: string, more: Record<string, unknown> = {}) => ({ url, level: 1, members: 0, ttl: 30, ...more });

beforeAll(async () => {
  [g1, g2, rogue, dirCa] = await Promise.all([testGroup('g1'), testGroup('g2'), testGroup('g1'), testGroup('directory')]);
  dirPair = await dirCa.issue('directory', 'controller');
  const specs: [string, TestGroup, Parameters<TestGroup['issue']>[1], string[]?][] = [
    ['ctl', g1, 'controller', ['10.9.0.1']], ['i-a', g1, 'intermediary', ['10.1.0.2']], ['i-b', g1, 'intermediary', ['10.2.0.2']],
    ['i-a2', g1, 'intermediary', ['10.1.0.3']], ['m1', g1, 'member'], ['g2-agent', g2, 'intermediary'], ['g2-member', g2, 'member'],
    ['rogue', rogue, 'intermediary', ['10.1.0.9']],
  ];
  for (const [name, g, role, ip] of specs) pairs[name] = await g.issue(name, role, ip);
});

describe('registration', () => {
  let dir: DirectoryServer;
  beforeAll(async () => {
    dir = await start();
  });
  afterAll(async () => dir.stop());

  it('registers, refreshes and updates an agent; the certificate decides principal, role and fingerprint', async () => {
    const r1 = await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443'));
    expect(r1.status).toBe(201);
    expect(r1.body).toMatchObject({ group: 'g1', principal: 'i-a', status: 'added', ttl: 30 });
    const r2 = await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443', { members: 5 }));
    expect(r2.body.status).toBe('refreshed');
    const r3 = await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7444', { members: 5 }));
    expect(r3.body.status).toBe('updated');
    const reg = dir.registry.get('g1', 'i-a')!;
    expect(reg).toMatchObject({ role: 'intermediary', url: 'https://10.1.0.2:7444', members: 5, fingerprint: pairs['i-a']!.fingerprint });
    // TTLs are clamped to the configured bounds.
    const r4 = await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['ctl'], REG('https://10.9.0.1:7443', { level: 0, ttl: 86_400 }));
    expect(r4.body.ttl).toBe(3600);
  });

  it('refuses without a certificate, from another CA, for a group the agent does not serve, a member, malformed, a URL its certificate does not cover', async () => {
    const url = dir.url;
    const cases: [string, Promise<Reply>, number, RegExp][] = [
      ['no certificate', call(url, 'POST', '/v1/groups/g1/agents', undefined, REG('https://10.1.0.2:7443')), 401, /no client certificate/],
      ['another CA', call(url, 'POST', '/v1/groups/g1/agents', pairs['rogue'], REG('https://10.1.0.9:7443')), 403, /not issued by the CA of any group/],
      ['another group', call(url, 'POST', '/v1/groups/g1/agents', pairs['g2-agent'], REG('https://127.0.0.1:7443')), 403, /CA of group g2 and does not serve g1/],
      ['a member', call(url, 'POST', '/v1/groups/g1/agents', pairs['m1'], REG('https://127.0.0.1:7443')), 403, /role member; only agents/],
      ['not JSON', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], '{"url":'), 400, /JSON|body/i],
      ['wrong types', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], { url: 5, level: 'deep', ttl: -1 }), 400, /url.*level.*ttl/s],
      ['unknown key', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], { ...REG('https://10.2.0.2:7443'), key: 'x' }), 400, /Unrecognized key/],
      ['a URL with a path', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('https://10.2.0.2:7443/x')), 400, /origin/],
      ['http', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('http://10.2.0.2:7443')), 400, /https/],
      ['a URL not in the certificate', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('https://10.3.3.3:7443')), 403, /does not name 10\.3\.3\.3/],
      ['an unknown group', call(url, 'POST', '/v1/groups/nope/agents', pairs['i-b'], REG('https://10.2.0.2:7443')), 404, /does not serve group nope/],
      ['a bad group name', call(url, 'POST', '/v1/groups/BAD%20NAME/agents', pairs['i-b'], REG('https://10.2.0.2:7443')), 400, /group/],
      ['oversized', call(url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], { ...REG('https://10.2.0.2:7443'), pad: 'x'.repeat(20_000) }), 400, /larger than/],
    ];
    for (const [what, p, status, reason] of cases) {
      const r = await p;
      expect(r.status, what).toBe(status);
      expect(r.body.reason, what).toMatch(reason);
    }
    expect(dir.registry.get('g1', 'rogue')).toBeUndefined();
    expect(dir.registry.get('g1', 'g2-agent')).toBeUndefined();
    expect(dir.registry.get('g1', 'i-b')).toBeUndefined();
    expect(dir.stats().refused).toMatchObject({ 'no-certificate': 1, 'other-ca': 1, 'wrong-group': 1, 'not-agent': 1, 'url-not-certified': 1, 'unknown-group': 1 });
    expect(dir.stats().refused.malformed).toBeGreaterThanOrEqual(6);
  });

  it('unregisters only the calling agent', async () => {
    await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a2'], REG('https://10.1.0.3:7443'));
    const other = await call(dir.url, 'DELETE', '/v1/groups/g1/agents', pairs['m1']);
    expect(other.status).toBe(403);
    const r = await call(dir.url, 'DELETE', '/v1/groups/g1/agents', pairs['i-a2']);
    expect(r).toMatchObject({ status: 200, body: { removed: true } });
    expect(dir.registry.get('g1', 'i-a2')).toBeUndefined();
    const again = await call(dir.url, 'DELETE', '/v1/groups/g1/agents', pairs['i-a2']);
    expect(again.body.removed).toBe(false);
  });

  it('survives garbage: random bytes, plain HTTP, a TLS client that hangs up, then still answers', async () => {
    const { port } = new URL(dir.url);
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect(Number(port), '127.0.0.1', () => s.end(i % 2 ? randomBytes(64 + i * 13) : 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
      });
    }
    await new Promise<void>((resolve) => {
      const s = tls.connect({ port: Number(port), host: '127.0.0.1', ca: dirCa.ca.certPem, servername: 'localhost' }, () => s.destroy());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    const r = await call(dir.url, 'GET', '/v1/health', undefined);
    expect(r).toEqual({ status: 200, body: { status: 'ok' } });
  });
});

describe('soft state on a fake clock', () => {
  it('an expired registration disappears from lookups, the list and the count; a refresh keeps it', async () => {
    const clock = new FakeClock(Date.now());
    const dir = await start({}, { clock });
    try {
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443', { ttl: 10 }));
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('https://10.2.0.2:7443', { ttl: 10 }));
      clock.advance(6_000);
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('https://10.2.0.2:7443', { ttl: 10 }));
      clock.advance(5_000);
      const r = await call(dir.url, 'GET', '/v1/groups/g1/agents', pairs['m1']);
      expect((r.body.agents as { principal: string }[]).map((a) => a.principal)).toEqual(['i-b']);
      const list = await call(dir.url, 'GET', '/v1/groups', pairs['m1']);
      expect(list.body).toEqual({ groups: [{ group: 'g1', agents: [expect.objectContaining({ principal: 'i-b' })] }] });
      expect(dir.registry.sweep().map((x) => x.principal)).toEqual(['i-a']);
      expect(dir.registry.size).toBe(1);
    } finally {
      await dir.stop();
    }
  });

  it('expires on the real clock too (the sweeper)', async () => {
    const dir = await start();
    try {
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443', { ttl: 1 }));
      expect(dir.registry.size).toBe(1);
      await new Promise((r) => setTimeout(r, 1_700));
      expect(dir.registry.size).toBe(0);
      expect(dir.stats().expired).toBe(1);
    } finally {
      await dir.stop();
    }
  });
});

describe('lookups', () => {
  let dir: DirectoryServer;
  beforeAll(async () => {
    dir = await start({ sites: [{ name: 'site-a', prefixes: ['10.1.0.0/16'] }, { name: 'site-b', prefixes: ['10.2.0.0/16'] }] });
    await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['ctl'], REG('https://10.9.0.1:7443', { level: 0 }));
    await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443', { members: 40 }));
    await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a2'], REG('https://10.1.0.3:7443', { members: 3 }));
    await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-b'], REG('https://10.2.0.2:7443', { site: 'site-b' }));
    await call(dir.url, 'POST', '/v1/groups/g2/agents', pairs['g2-agent'], REG('https://127.0.0.1:7443'));
  });
  afterAll(async () => dir.stop());

  it('orders by the asker\'s site, then depth, then load; elsewhere the shallowest first', async () => {
    const client = new DirectoryClient({ url: dir.url, ca: dirCa.ca.certPem, cert: pairs['m1']!.cert, key: pairs['m1']!.key });
    try {
      const a = await client.lookup('g1', { site: 'site-a' });
      expect(a.asker).toEqual({ address: '127.0.0.1', site: 'site-a' });
      expect(a.agents.map((x) => [x.principal, x.tier])).toEqual([['i-a2', 'site'], ['i-a', 'site'], ['ctl', 'elsewhere'], ['i-b', 'elsewhere']]);
      expect(a.agents[0]).toMatchObject({ url: 'https://10.1.0.3:7443', role: 'intermediary', level: 1, members: 3, site: 'site-a', fingerprint: pairs['i-a2']!.fingerprint });
      const b = await client.lookup('g1', { site: 'site-b', limit: 2 });
      expect(b.agents.map((x) => x.principal)).toEqual(['i-b', 'ctl']);
      // No site: 127.0.0.1 shares no prefix with anyone; the controller, nearest the root, first.
      const none = await client.lookup('g1');
      expect(none.agents[0]!.principal).toBe('ctl');
      // Answers are cached per group and place; a refresh with another load re-orders at once.
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a2'], REG('https://10.1.0.3:7443', { members: 100 }));
      expect((await client.lookup('g1', { site: 'site-a' })).agents.map((x) => x.principal).slice(0, 2)).toEqual(['i-a', 'i-a2']);
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a2'], REG('https://10.1.0.3:7443', { members: 3 }));
    } finally {
      client.close();
    }
  });

  it('members look up their own group only; anonymous and foreign certificates are refused', async () => {
    expect((await call(dir.url, 'GET', '/v1/groups/g1/agents', undefined)).status).toBe(401);
    expect((await call(dir.url, 'GET', '/v1/groups/g1/agents', pairs['g2-member'])).status).toBe(403);
    expect((await call(dir.url, 'GET', '/v1/groups/g1/agents', pairs['rogue'])).status).toBe(403);
    expect((await call(dir.url, 'GET', '/v1/groups/g1/agents?limit=0', pairs['m1'])).status).toBe(400);
    expect((await call(dir.url, 'GET', '/v1/groups/g1/agents?evil=1', pairs['m1'])).status).toBe(400);
    const list = await call(dir.url, 'GET', '/v1/groups', pairs['g2-member']);
    expect((list.body.groups as { group: string }[]).map((g) => g.group)).toEqual(['g2']);
    const client = new DirectoryClient({ url: dir.url, ca: dirCa.ca.certPem });
    await expect(client.lookup('g1')).rejects.toThrow(DirectoryError);
    client.close();
  });

  it('a public directory answers anyone, read-only', async () => {
    const pub = await start({ lookups: 'public' });
    try {
      await call(pub.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443'));
      const anon = new DirectoryClient({ url: pub.url, ca: dirCa.ca.certPem });
      expect((await anon.lookup('g1')).agents.map((a) => a.principal)).toEqual(['i-a']);
      expect((await anon.list()).groups.map((g) => g.group)).toEqual(['g1']);
      anon.close();
      expect((await call(pub.url, 'POST', '/v1/groups/g1/agents', undefined, REG('https://10.1.0.2:7443'))).status).toBe(401);
    } finally {
      await pub.stop();
    }
  });
});

describe('SAP announcements', () => {
  it('announces each group as SDP (no keys), re-announces a change after deleting the old version, deletes a group left without agents', async () => {
    const sap = new FakeSap();
    const dir = await start({ sap: { enabled: true, source: '10.9.0.100', minInterval: '1h' } }, { sap });
    try {
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['ctl'], REG('https://10.9.0.1:7443', { level: 0 }));
      await waitFor(() => sap.packets.length >= 1);
      const first = sap.packets[0]!;
      expect(first).toMatchObject({ type: 'announce', origin: '10.9.0.100', payloadType: 'application/sdp' });
      const sdp = parseSdp(first.payload);
      expect(sdp.keyLines).toBe(0);
      expect(first.payload).not.toMatch(/^k=|key/im);
      expect(readGroupDescription(sdp)).toEqual({ group: 'g1', total: 1, agents: [{ principal: 'ctl', role: 'controller', level: 0, url: 'https://10.9.0.1:7443' }] });
      expect(first.payload).toContain(`a=fingerprint:sha-256 ${pairs['ctl']!.fingerprint.toUpperCase().match(/../g)!.join(':')}`);

      // A refresh changes nothing public: no packet.
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['ctl'], REG('https://10.9.0.1:7443', { level: 0, members: 9 }));
      await call(dir.url, 'POST', '/v1/groups/g1/agents', pairs['i-a'], REG('https://10.1.0.2:7443'));
      await waitFor(() => sap.packets.length >= 3, 3_000);
      const [, del, second] = sap.packets;
      expect(del).toMatchObject({ type: 'delete', msgIdHash: first.msgIdHash, payload: `${sdp.origin ? originOf(first.payload) : ''}\r\n` });
      expect(second!.type).toBe('announce');
      expect(second!.msgIdHash).not.toBe(first.msgIdHash);
      expect(readGroupDescription(parseSdp(second!.payload))!.agents.map((a) => a.principal)).toEqual(['ctl', 'i-a']);

      await call(dir.url, 'DELETE', '/v1/groups/g1/agents', pairs['i-a']);
      await call(dir.url, 'DELETE', '/v1/groups/g1/agents', pairs['ctl']);
      await waitFor(() => sap.packets.some((p, i) => i > 2 && p.type === 'delete' && p.payload.startsWith('o=')) && dir.registry.size === 0, 3_000);
      await waitFor(() => sap.packets.at(-1)?.type === 'delete', 3_000);
      expect(sap.packets.at(-1)!.payload).toMatch(/^o=- \d+ \d+ IN IP4 10\.9\.0\.100\r\n$/);
    } finally {
      await dir.stop();
    }
  });
});

function originOf(sdpText: string): string {
  return sdpText.split('\r\n').find((l) => l.startsWith('o='))!;
}

async function waitFor(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
