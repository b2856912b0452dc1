/**
 * AgentResolver against real TLS servers on 127.0.0.1 and fake mDNS/directory sources: the
 * explicit URL wins, mDNS before the directory, every candidate proves itself by a handshake
 * (another CA, a fingerprint other than advertised, a member's certificate, nothing listening:
 * refused with a logged reason, next one tried), and watch() notices an agent leaving its source.
 */
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentResolver, NoAgentError } from '../../../src/discovery/resolver/resolver.js';
import { fromMdns } from '../../../src/discovery/resolver/candidates.js';
import { resolverFromFlags } from '../../../src/discovery/resolver/flags.js';
import type { AgentCandidate } from '../../../src/discovery/mdns/instances.js';
import type { AgentEntry, LookupResponse } from '../../../src/discovery/directory/api.js';
import type { TlsMaterial } from '../../../src/pki/tlsOptions.js';
import { ValidationError } from '../../../src/errors.js';
import { testGroup, type Pair, type TestGroup } from '../directory/helpers.js';

let g1: TestGroup;
let rogueCa: TestGroup;
let member: TlsMaterial;
const servers: tls.Server[] = [];
const ports: Record<string, number> = {};
const pairs: Record<string, Pair> = {};
let closedPort = 0;

async function serve(name: string, pair: Pair): Promise<void> {
  const s = tls.createServer({ cert: pair.cert, key: pair.key, minVersion: 'TLSv1.3' }, (socket) => socket.end());
  s.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  ports[name] = (s.address() as AddressInfo).port;
}

const url = (name: string) => `https://127.0.0.1:${ports[name]}`;

function mdnsAgent(name: string, level: number, fp: string, role: AgentCandidate['role'] = 'intermediary', port = ports[name]!): AgentCandidate {
  return { instance: `g1 ${name}`, host: `${name}.local`, addresses: ['127.0.0.1'], port, group: 'g1', role, level, fingerprint: fp, ttl: 120, seenAt: Date.now() };
}

function entry(name: string, u: string, fp: string, level = 1): AgentEntry {
  return { principal: name, role: 'intermediary', url: u, level, members: 0, site: null, fingerprint: fp, expiresInMs: 1000, tier: 'site' };
}

class FakeBrowser {
  list: AgentCandidate[] = [];
  resolve = vi.fn(async () => this.list);
  cachedCandidates(): AgentCandidate[] {
    return this.list;
  }
}

class FakeDirectory {
  agents: AgentEntry[] = [];
  fail = false;
  lookup = vi.fn(async (): Promise<LookupResponse> => {
    if (this.fail) throw new Error('directory down');
    return { group: 'g1', asker: { address: null, site: null }, agents: this.agents };
  });
}

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk)) as Record<string, unknown>); cb(); } });
  return { logger: pino({ level: 'info' }, stream), lines };
}

beforeAll(async () => {
  [g1, rogueCa] = await Promise.all([testGroup('g1'), testGroup('g1')]);
  for (const [name, g, role] of [['good', g1, 'intermediary'], ['ctl', g1, 'controller'], ['rogue', rogueCa, 'intermediary'], ['not-agent', g1, 'member'], ['m1', g1, 'member']] as const) {
    pairs[name] = await g.issue(name, role);
  }
  member = { ca: g1.ca.certPem, cert: pairs['m1']!.cert, key: pairs['m1']!.key };
  for (const n of ['good', 'ctl', 'rogue', 'not-agent']) await serve(n, pairs[n]!);
  const s = tls.createServer({});
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
});

describe('AgentResolver', () => {
  it('an explicit URL wins without asking anyone', async () => {
    const browser = new FakeBrowser();
    const r = new AgentResolver({ group: 'g1', agent: 'https://10.0.0.1:7443', mdns: {} }, { tls: member, browser, logger: capture().logger });
    expect(await r.resolve()).toMatchObject({ url: 'https://10.0.0.1:7443', source: 'explicit', refused: [] });
    expect(browser.resolve).not.toHaveBeenCalled();
  });

  it('ignores a rogue mDNS advertisement (valid DNS-SD, certificate of another CA) with a logged reason and takes the next', async () => {
    const browser = new FakeBrowser();
    browser.list = [mdnsAgent('good', 1, pairs['good']!.fingerprint), mdnsAgent('rogue', 5, pairs['rogue']!.fingerprint), mdnsAgent('ctl', 0, pairs['ctl']!.fingerprint, 'controller')];
    const { logger, lines } = capture();
    const r = new AgentResolver({ group: 'g1', mdns: {} }, { tls: member, browser, logger });
    const res = await r.resolve();
    expect(res).toMatchObject({ url: url('good'), source: 'mdns', principal: 'good', fingerprint: pairs['good']!.fingerprint, level: 1 });
    expect(res.refused).toEqual([{ source: 'mdns', url: url('rogue'), name: 'g1 rogue', reason: expect.stringMatching(/not issued by the group CA/) }]);
    expect(lines.find((l) => l.event === 'refused')).toMatchObject({ source: 'mdns', url: url('rogue'), reason: expect.stringMatching(/group CA/) });
  });

  it('refuses a candidate whose certificate is not the advertised one, a member posing as agent, and one where nothing listens', async () => {
    const browser = new FakeBrowser();
    browser.list = [
      mdnsAgent('good', 3, 'ff'.repeat(32)),
      mdnsAgent('not-agent', 2, pairs['not-agent']!.fingerprint),
      mdnsAgent('closed', 1, 'ee'.repeat(32), 'intermediary', closedPort),
      mdnsAgent('ctl', 0, pairs['ctl']!.fingerprint, 'controller'),
    ];
    const r = new AgentResolver({ group: 'g1', mdns: {} }, { tls: member, browser, logger: capture().logger });
    const res = await r.resolve();
    expect(res.url).toBe(url('ctl'));
    expect(res.refused.map((x) => x.reason)).toEqual([
      expect.stringMatching(/fingerprint .* is not the advertised/),
      expect.stringMatching(/not an agent/),
      expect.stringMatching(/connection refused/),
    ]);
  });

  it('falls back to the directory when mDNS finds nothing usable, in the directory\'s order, skipping what failed', async () => {
    const browser = new FakeBrowser();
    browser.list = [mdnsAgent('rogue', 1, pairs['rogue']!.fingerprint)];
    const directory = new FakeDirectory();
    directory.agents = [entry('rogue', url('rogue'), pairs['rogue']!.fingerprint), entry('dead', `https://127.0.0.1:${closedPort}`, 'aa'.repeat(32)), entry('good', url('good'), pairs['good']!.fingerprint)];
    const r = new AgentResolver({ group: 'g1', mdns: {}, directory: { url: 'https://unused:1', site: 'site-a' } }, { tls: member, browser, directory, logger: capture().logger });
    const res = await r.resolve();
    expect(res).toMatchObject({ url: url('good'), source: 'directory', name: 'good' });
    expect(res.refused.map((x) => [x.source, x.url])).toEqual([['mdns', url('rogue')], ['directory', `https://127.0.0.1:${closedPort}`]]);
    expect(res.asked).toEqual([{ source: 'mdns', candidates: 1 }, { source: 'directory', candidates: 3 }]);
    expect(directory.lookup).toHaveBeenCalledWith('g1', { site: 'site-a' });
  });

  it('says why when there is no agent', async () => {
    const directory = new FakeDirectory();
    directory.fail = true;
    const r = new AgentResolver({ group: 'g1', directory: { url: 'https://unused:1' } }, { tls: member, directory, logger: capture().logger });
    await expect(r.resolve()).rejects.toThrow(NoAgentError);
    await expect(r.resolve()).rejects.toThrow(/directory: directory down/);
  });

  it('watch() fires once when the agent leaves its source; an unreachable directory proves nothing', async () => {
    const browser = new FakeBrowser();
    browser.list = [mdnsAgent('good', 1, pairs['good']!.fingerprint)];
    const directory = new FakeDirectory();
    directory.agents = [entry('good', url('good'), pairs['good']!.fingerprint)];
    const r = new AgentResolver({ group: 'g1', mdns: {}, directory: { url: 'https://unused:1' }, watchMdnsEveryMs: 20, watchDirectoryEveryMs: 20 }, { tls: member, browser, directory, logger: capture().logger });
    const viaMdns = await r.resolve();
    const gone: string[] = [];
    r.watch(viaMdns, (why) => gone.push(why));
    await new Promise((res) => setTimeout(res, 80));
    expect(gone).toEqual([]);
    browser.list = [];
    await vi.waitFor(() => expect(gone).toEqual(['mDNS: g1 good said goodbye or expired']));

    const viaDir = { ...viaMdns, source: 'directory' as const, name: 'good' };
    r.watch(viaDir, (why) => gone.push(why));
    directory.fail = true;
    await new Promise((res) => setTimeout(res, 80));
    expect(gone).toHaveLength(1);
    directory.fail = false;
    directory.agents = [];
    await vi.waitFor(() => expect(gone.at(-1)).toBe('directory no longer lists good'));
    await new Promise((res) => setTimeout(res, 80));
    expect(gone).toHaveLength(2);
    await r.stop();
  });
});

describe('candidates and flags', () => {
  it('orders mDNS agents deepest first, then on our subnet; skips addresses that make no URL', () => {
    const a = (name: string, level: number, addresses: string[]): AgentCandidate => ({ ...mdnsAgent(name, level, 'ab'.repeat(32), 'intermediary', 7443), addresses, seenAt: 1 });
    const list = fromMdns([a('ctl', 0, ['10.0.0.1']), a('far', 1, ['192.0.2.1']), a('near', 1, ['10.0.0.2']), a('ll', 2, ['fe80::1%eth0']), a('v6', 1, ['2001:db8::1'])], ['10.0.0.9/24']);
    expect(list.map((c) => [c.name, c.url])).toEqual([['g1 near', 'https://10.0.0.2:7443'], ['g1 far', 'https://192.0.2.1:7443'], ['g1 v6', 'https://[2001:db8::1]:7443'], ['g1 ctl', 'https://10.0.0.1:7443']]);
  });

  it('flags: a source is needed, and sub-flags need their source', () => {
    expect(() => resolverFromFlags('g1', {} as never, member)).toThrow(ValidationError);
    expect(() => resolverFromFlags('g1', { site: 'a' } as never, member)).toThrow(/--directory/);
    expect(() => resolverFromFlags('g1', { mdns: true, 'directory-ca': '/nope' } as never, member)).toThrow(/need --directory/);
    expect(() => resolverFromFlags('g1', { directory: 'https://x:1', 'directory-ca': '/nope/ca.crt' } as never, member)).toThrow(/--directory-ca/);
    expect(resolverFromFlags('g1', { agent: 'https://x:1' } as never, member).options).toMatchObject({ agent: 'https://x:1' });
  });
});
