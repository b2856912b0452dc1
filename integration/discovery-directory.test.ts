/**
 * The directory as a process in a namespace, asked from others (traffic stays inside them):
 *
 *   hD: `iolus directory` (groups g1 and g2, each trusted only for itself; SAP on 239.255.255.255)
 *   hA: a probe making HTTPS requests with chosen certificates (integration/fixtures/keyd/probe.mjs)
 *   hB: `iolus directory sap-listen`, an sd-style listener
 *
 * Registrations refused without a certificate, from another CA, expired, for a group the agent
 * does not serve, by a member, malformed, for a URL the certificate does not cover, for a group
 * the directory does not serve; an expired registration disappears while a refreshed one stays;
 * SAP announcements carry the group's public description and never a key, with deletions; the
 * sd-style list; garbage on the port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { createSite, nodeEntry, repoRoot, type NsProcess, type Site } from './lib/netns.js';
import { makePki, until, type HttpsResult, type KeydPki } from './lib/keyd.js';
import { issue } from '../src/pki/issue.js';
import type { TlsFiles } from '../src/pki/files.js';
// Type-only: they put the CLI and the directory command into nodeEntry's build of this file.
import type { main as _cliMain } from '../src/cli/main.js';
import type { run as _directory } from '../src/cli/commands/directory.js';

let site: Site;
let tmp: string;
let cli: string;
let g1: KeydPki;
let g2: KeydPki;
let rogue: KeydPki;
let dirPki: KeydPki;
let dir: NsProcess;
let probe: NsProcess;
let url: string;
let expired: TlsFiles;

const ip = (h: string) => site.host(h).ipv4;

async function https(path: string, tls: Partial<TlsFiles>, method = 'GET', body?: unknown): Promise<HttpsResult & { json?: Record<string, unknown> }> {
  const r = await probe.request<HttpsResult>({ op: 'https', url: `${url}${path}`, method, tls: { ...tls, ca: dirPki.ca }, ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) }, 20_000);
  let json: Record<string, unknown> | undefined;
  try {
    json = r.body ? (JSON.parse(r.body) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, ...(json ? { json } : {}) };
}

const register = (tls: Partial<TlsFiles>, body: unknown, group = 'g1') => https(`/v1/groups/${group}/agents`, tls, 'POST', body);
const reg = (host: string, more: Record<string, unknown> = {}) => ({ url: `https://${host}:7443`, level: 1, members: 0, ttl: 30, ...more });
const agentsOf = async (group = 'g1') => ((await https(`/v1/groups/${group}/agents`, g1.tls('m-a'))).json?.agents as { principal: string }[]).map((a) => a.principal);

describe('directory service across namespaces', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(os.tmpdir(), 'iolus-directory-it-'));
    let entry: string;
    [site, entry] = await Promise.all([createSite({ hosts: ['hD', 'hA', 'hB'], prefix: 'iolusdir' }), nodeEntry('integration/discovery-directory.test.ts')]);
    cli = join(dirname(dirname(entry)), 'src', 'cli', 'main.js');
    [g1, g2, rogue, dirPki] = await Promise.all([
      makePki(join(tmp, 'g1'), 'g1', [{ name: 'i-a', role: 'intermediary', ip: [ip('hA')] }, { name: 'ctl', role: 'controller', ip: [ip('hD')] }, { name: 'm-a', role: 'member' }]),
      makePki(join(tmp, 'g2'), 'g2', [{ name: 'g2-agent', role: 'intermediary', ip: [ip('hA')] }]),
      makePki(join(tmp, 'rogue'), 'g1', [{ name: 'rogue', role: 'intermediary', ip: [ip('hA')] }]),
      makePki(join(tmp, 'dir'), 'directory', [{ name: 'directory', role: 'controller', ip: [ip('hD')] }]),
    ]);
    // A g1 intermediary whose certificate ran out yesterday.
    await issue(g1.dir, { name: 'old-agent', role: 'intermediary', validityDays: 1, ip: [ip('hA')], now: new Date(Date.now() - 3 * 86_400_000) });
    expired = g1.tls('old-agent');
    const config = join(tmp, 'directory.yaml');
    writeFileSync(config, toYaml({
      listen: { host: ip('hD'), port: 7600 },
      tls: { cert: dirPki.tls('directory').cert, key: dirPki.tls('directory').key },
      groups: { g1: { ca: g1.ca }, g2: { ca: g2.ca } },
      registrations: { minTtl: '1s' },
      sap: { enabled: true, source: ip('hD'), minInterval: '2s' },
    }));
    url = `https://${ip('hD')}:7600`;
    dir = site.spawn('hD', process.execPath, [cli, 'directory', '--config', config]);
    probe = site.spawn('hA', process.execPath, [join(repoRoot(), 'integration', 'fixtures', 'keyd', 'probe.mjs')]);
    await Promise.all([dir.waitForLine(/"event":"start"/, { timeoutMs: 20_000 }), probe.waitForLine(/"event":"ready"/, { timeoutMs: 10_000 })]);
  });

  afterAll(async () => {
    if (site) {
      await site.teardown();
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(site.id);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('refuses registrations without a certificate, from another CA, expired, for a group the agent does not serve, by a member, malformed, for an uncertified URL or an unknown group', async () => {
    const iA = g1.tls('i-a');
    const cases: [string, Promise<HttpsResult & { json?: Record<string, unknown> }>, number, RegExp][] = [
      ['no certificate', register({}, reg(ip('hA'))), 401, /no client certificate/],
      ['another CA', register(rogue.tls('rogue'), reg(ip('hA'))), 403, /not issued by the CA of any group this directory serves/],
      ['expired', register(expired, reg(ip('hA'))), 403, /not valid now/],
      ['a group it does not serve', register(g2.tls('g2-agent'), reg(ip('hA'))), 403, /CA of group g2 and does not serve g1/],
      ['a member', register(g1.tls('m-a'), reg(ip('hA'))), 403, /role member; only agents/],
      ['not JSON', register(iA, '{"url": "https://'), 400, /JSON/i],
      ['missing fields', register(iA, { url: `https://${ip('hA')}:7443` }), 400, /level.*ttl/s],
      ['a level out of range', register(iA, reg(ip('hA'), { level: 99 })), 400, /level/],
      ['an uncertified URL', register(iA, reg('10.255.255.1')), 403, /does not name 10\.255\.255\.1/],
      ['an unknown group', register(iA, reg(ip('hA')), 'g3'), 404, /does not serve group g3/],
    ];
    for (const [what, p, status, reason] of cases) {
      const r = await p;
      expect(r.ok, `${what}: ${r.error}`).toBe(true);
      expect(r.status, what).toBe(status);
      expect(String(r.json?.reason), what).toMatch(reason);
    }
    expect(await agentsOf()).toEqual([]);
    const stats = (await https('/v1/stats', g1.tls('m-a'))).json!;
    expect(stats.refused).toMatchObject({ 'no-certificate': 1, 'other-ca': 1, expired: 1, 'wrong-group': 1, 'not-agent': 1, 'url-not-certified': 1, 'unknown-group': 1 });
    expect((stats.refused as Record<string, number>).malformed).toBeGreaterThanOrEqual(3);
    // Lookups: a member of g2 cannot look up g1; nobody without a certificate.
    expect((await https('/v1/groups/g1/agents', g2.tls('g2-agent'))).status).toBe(403);
    expect((await https('/v1/groups/g1/agents', {})).status).toBe(401);
  });

  it('survives garbage on its port and still answers', async () => {
    const script = `
const net = require('node:net'); const crypto = require('node:crypto');
const [host, port] = process.argv.slice(1);
let n = 0;
const one = (i) => new Promise((r) => { const s = net.connect(Number(port), host, () => s.end(i % 3 === 0 ? 'GET /v1/groups HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' : crypto.randomBytes(50 + i * 31))); s.on('error', r); s.on('close', () => { n++; r(); }); s.resume(); });
(async () => { for (let i = 0; i < 60; i++) await one(i); console.log(n); })();
`;
    const r = await site.exec('hA', process.execPath, ['-e', script, ip('hD'), '7600']);
    expect(Number(r.stdout.trim())).toBeGreaterThan(50);
    const many = await probe.request<{ results: HttpsResult[] }>({ op: 'https-many', url: `${url}/v1/groups/g1/agents`, method: 'POST', count: 30, tls: { ...g1.tls('i-a'), ca: dirPki.ca }, body: '\u0000\u00ff{{{' }, 30_000);
    expect(many.results.every((x) => x.status === 400)).toBe(true);
    expect((await https('/v1/health', {})).json).toEqual({ status: 'ok' });
    expect(dir.running).toBe(true);
    expect(dir.stdout).not.toMatch(/"level":(50|60)/);
  });

  it('an expired registration disappears; a refreshed one stays', async () => {
    expect((await register(g1.tls('i-a'), reg(ip('hA'), { ttl: 1 }))).status).toBe(201);
    expect((await register(g1.tls('ctl'), reg(ip('hD'), { level: 0, ttl: 2 }))).status).toBe(201);
    expect((await agentsOf()).sort()).toEqual(['ctl', 'i-a']);
    const t0 = Date.now();
    while (Date.now() - t0 < 3_000) {
      await register(g1.tls('ctl'), reg(ip('hD'), { level: 0, ttl: 2 }));
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(await agentsOf()).toEqual(['ctl']);
    await dir.waitForLine((l) => l.includes('"event":"expired"') && l.includes('"principal":"i-a"'), { timeoutMs: 1_000 });
    await until('ctl to expire', async () => (await agentsOf()).length === 0, 5_000, 200);
  });

  it('announces the groups over SAP (SDP with agent URLs, never a key), re-announces changes after deleting the old version, deletes the group when its last agent leaves; the sd-style list', async () => {
    const listen = site.spawn('hB', process.execPath, [cli, 'directory', 'sap-listen', '--interface', ip('hB'), '--for', '12s']);
    await listen.waitForLine(/"event":"ready"/, { timeoutMs: 10_000 });
    const events = () => listen.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

    await register(g1.tls('ctl'), reg(ip('hD'), { level: 0 }));
    await listen.waitForLine((l) => l.includes('"event":"new"'), { timeoutMs: 5_000 });
    await register(g1.tls('i-a'), reg(ip('hA'), { site: 'site-a' }));
    await register(g2.tls('g2-agent'), reg(ip('hA')), 'g2');
    await until('g1 with two agents and g2', () => {
      const e = events().filter((x) => x.event === 'new' || x.event === 'modified');
      const g = (name: string) => e.filter((x) => (x.group as { group: string } | undefined)?.group === name).at(-1)?.group as { agents: unknown[] } | undefined;
      return g('g1')?.agents.length === 2 && g('g2')?.agents.length === 1;
    }, 6_000, 100);
    const text = await site.exec('hA', process.execPath, [cli, 'directory', 'list', '--url', url, '--ca', dirPki.ca, '--cert', g1.tls('m-a').cert, '--key', g1.tls('m-a').key], { env: { IOLUS_LOG_LEVEL: 'warn' } });
    // Nearest first for the asker in hA: i-a (its prefix, deeper), then the controller.
    expect(text.stdout).toMatch(new RegExp(`^g1  \\(2 agents\\)\\n  i-a .*site-a .*https://${ip('hA')}:7443.*\\n  ctl .*https://${ip('hD')}:7443`, 'm'));
    expect(text.stdout).not.toContain('g2'); // a member of g1 sees g1 only

    // Let the periodic repeats come (every 2 s ± 1/3 with this config) before ending the sessions.
    const before = events().length;
    await new Promise((r) => setTimeout(r, 3_000));
    expect(events().length).toBe(before); // identical repeats change nothing in a listener's cache
    await https('/v1/groups/g1/agents', g1.tls('i-a'), 'DELETE');
    await https('/v1/groups/g1/agents', g1.tls('ctl'), 'DELETE');
    await https('/v1/groups/g2/agents', g2.tls('g2-agent'), 'DELETE');
    const exit = JSON.parse(await listen.waitForLine(/"event":"exit"/, { timeoutMs: 15_000 })) as { sessions: number; stats: { announcements: number; deletions: number; refused: number } };

    const all = events();
    const announced = all.filter((x) => x.event === 'new' || x.event === 'modified');
    for (const a of announced) {
      expect(a.keyLines).toBe(0);
      expect(String(a.sdp)).not.toMatch(/^k=|key=|PRIVATE KEY/im);
      expect(String(a.sdp)).toMatch(/^m=application 7443 TCP\/TLS iolus\r$/m);
      expect(a.announcer).toBe(ip('hD'));
    }
    const g1Versions = announced.map((x) => x.group as { group: string; agents: { principal: string }[] }).filter((g) => g.group === 'g1');
    // ctl alone, then ctl and i-a, then (i-a gone) ctl alone again, unless the last change came within the 1 s change gap.
    expect(g1Versions.map((g) => g.agents.length).slice(0, 2)).toEqual([1, 2]);
    expect(g1Versions[1]!.agents).toEqual([
      { principal: 'ctl', role: 'controller', level: 0, url: `https://${ip('hD')}:7443` },
      { principal: 'i-a', role: 'intermediary', level: 1, url: `https://${ip('hA')}:7443`, site: 'site-a' },
    ]);
    // Every session ended with a deletion; repeats (every 2 s ± 1/3 here) were heard but changed nothing.
    expect(all.filter((x) => x.event === 'deleted').length).toBeGreaterThanOrEqual(3);
    expect(exit.sessions).toBe(0);
    expect(exit.stats.announcements).toBeGreaterThan(announced.length);
    expect(exit.stats.refused).toBe(0);
  });
});
