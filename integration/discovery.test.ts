/**
 * Discovery across hosts (paper §8.3): real keyd agents, the directory, a rogue and members as
 * processes in network namespaces on one bridge (traffic stays inside them).
 *
 *   hC: controller `ctl` (mDNS, level 0) and the directory (sites: hA → site-a, hB → site-b, hC → site-c)
 *   hA: intermediary `i-a` (mDNS, site-a); the members: `iolus agent` (mDNS + directory), `iolus member` (directory)
 *   hB: intermediary `i-b` (directory only: another site, not on hA's link)
 *   hR: a rogue agent for "g1" with a certificate from another CA, advertising level 2 (it would rank first)
 *   hV: avahi-daemon, to check a real keyd's advertisement with an independent client
 *
 * Registration TTL 5 s; keyd heartbeats every 300 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { createSite, nodeEntry, type NsProcess, type Site } from './lib/netns.js';
import { keydConfig, makePki, until, type KeydPki } from './lib/keyd.js';
import { fingerprint } from '../src/pki/fingerprint.js';
// Type-only: they put the CLI and these commands into nodeEntry's build of this file.
import type { main as _cliMain } from '../src/cli/main.js';
import type { run as _keyd } from '../src/cli/commands/keyd.js';
import type { run as _agent } from '../src/cli/commands/agent.js';
import type { run as _member } from '../src/cli/commands/member.js';
import type { run as _directory } from '../src/cli/commands/directory.js';
import type { run as _resolve } from '../src/cli/commands/resolve.js';

const TTL = '5s';
const TTL_MS = 5_000;

let site: Site;
let tmp: string;
let cli: string;
let pki: KeydPki;
let roguePki: KeydPki;
let dirPki: KeydPki;
let dirUrl: string;
const agents: Record<string, { proc: NsProcess; url: string }> = {};
let avahiEnv: Record<string, string>;

function ip(host: string): string {
  return site.host(host).ipv4;
}

function json(line: string): Record<string, unknown> {
  return JSON.parse(line) as Record<string, unknown>;
}

function spawnCli(host: string, args: string[], logLevel = 'info'): NsProcess {
  return site.spawn(host, process.execPath, [cli, ...args], { env: { IOLUS_LOG_LEVEL: logLevel } });
}

function discovery(site_: string | undefined, mdnsHost: string | undefined, directory = true, ca = dirPki.ca): Record<string, unknown> {
  return {
    ...(site_ ? { site: site_ } : {}),
    ...(mdnsHost ? { mdns: { enabled: true, interfaces: ['eth0'], hostName: mdnsHost } } : {}),
    ...(directory ? { directory: { url: dirUrl, ca, ttl: TTL } } : {}),
  };
}

async function startKeyd(host: string, name: string, config: Record<string, unknown>): Promise<{ proc: NsProcess; url: string }> {
  const path = join(tmp, `${name}.yaml`);
  writeFileSync(path, toYaml(config));
  const proc = spawnCli(host, ['keyd', '--config', path]);
  const line = await proc.waitForLine(/"event":"start"/, { timeoutMs: 20_000 });
  const a = { proc, url: String(json(line).url) };
  agents[name] = a;
  return a;
}

function tlsArgs(p: KeydPki, name: string): string[] {
  const t = p.tls(name);
  return ['--cert', t.cert, '--key', t.key, '--ca', t.ca];
}

const dirArgs = () => ['--directory', dirUrl, '--directory-ca', dirPki.ca];

async function resolveIn(host: string, member: string, source: string[]): Promise<Record<string, unknown>> {
  const r = await site.exec(host, process.execPath, [cli, 'resolve', 'g1', '--json', ...tlsArgs(pki, member), ...source], { env: { IOLUS_LOG_LEVEL: 'warn' }, timeoutMs: 30_000, reject: false });
  if (r.exitCode !== 0) throw new Error(`iolus resolve exited ${r.exitCode}: ${r.stderr}`);
  return json(r.stdout.trim());
}

async function directoryList(): Promise<{ group: string; agents: { principal: string; url: string }[] }[]> {
  const r = await site.exec('hA', process.execPath, [cli, 'directory', 'list', '--json', '--url', dirUrl, '--ca', dirPki.ca, ...tlsArgs(pki, 'm-a').slice(0, 4)], { env: { IOLUS_LOG_LEVEL: 'warn' } });
  return (json(r.stdout.trim()) as { groups: { group: string; agents: { principal: string; url: string }[] }[] }).groups;
}

async function startAvahi(): Promise<void> {
  const bus = join(tmp, 'bus');
  writeFileSync(join(tmp, 'dbus.conf'), `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=${bus}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n`);
  writeFileSync(join(tmp, 'avahi.conf'), ['[server]', `host-name=avahi-${site.id.slice(-6)}`, 'use-ipv4=yes', 'use-ipv6=no', 'allow-interfaces=eth0', 'enable-dbus=yes', '[wide-area]', 'enable-wide-area=no', '[publish]', 'publish-hinfo=no', 'publish-workstation=no', ''].join('\n'));
  avahiEnv = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}` };
  const dbus = site.spawn('hV', 'dbus-daemon', [`--config-file=${join(tmp, 'dbus.conf')}`, '--nofork', '--nopidfile', '--print-address']);
  await dbus.waitForLine(/unix:path=/);
  // A private /run/avahi-daemon: avahi allows one instance per machine through its pid file.
  const avahi = site.spawn('hV', 'sh', ['-c', `mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && exec avahi-daemon -f ${join(tmp, 'avahi.conf')} --no-drop-root --no-chroot --no-rlimits 2>&1`], { env: avahiEnv });
  await avahi.waitForLine(/Server startup complete/, { timeoutMs: 20_000 });
}

describe('discovery: global group name → local agent, across namespaces', () => {
  beforeAll(async () => {
    tmp = mkdtempSync(join(os.tmpdir(), 'iolus-discovery-'));
    let entry: string;
    [site, entry] = await Promise.all([createSite({ hosts: ['hC', 'hA', 'hB', 'hR', 'hV'], prefix: 'iolusdisc' }), nodeEntry('integration/discovery.test.ts')]);
    cli = join(dirname(dirname(entry)), 'src', 'cli', 'main.js');
    [pki, roguePki, dirPki] = await Promise.all([
      makePki(join(tmp, 'pki'), 'g1', [
        { name: 'ctl', role: 'controller', ip: [ip('hC')] }, { name: 'i-a', role: 'intermediary', ip: [ip('hA')] }, { name: 'i-b', role: 'intermediary', ip: [ip('hB')] },
        { name: 'm-a', role: 'member' }, { name: 'm-a2', role: 'member' }, { name: 'm-b', role: 'member' },
      ]),
      makePki(join(tmp, 'rogue'), 'g1', [{ name: 'rogue', role: 'controller', ip: [ip('hR')] }]),
      makePki(join(tmp, 'dir'), 'directory', [{ name: 'directory', role: 'controller', ip: [ip('hC')] }]),
    ]);
    dirUrl = `https://${ip('hC')}:7600`;
    const dirConfig = join(tmp, 'directory.yaml');
    writeFileSync(dirConfig, toYaml({
      listen: { host: ip('hC'), port: 7600 },
      tls: { cert: dirPki.tls('directory').cert, key: dirPki.tls('directory').key },
      groups: { g1: { ca: pki.ca } },
      sites: [{ name: 'site-a', prefixes: [`${ip('hA')}/32`] }, { name: 'site-b', prefixes: [`${ip('hB')}/32`] }, { name: 'site-c', prefixes: [`${ip('hC')}/32`] }],
      registrations: { minTtl: '1s' },
    }));
    const dir = spawnCli('hC', ['directory', '--config', dirConfig]);
    await dir.waitForLine(/"event":"start"/, { timeoutMs: 20_000 });
    agents.directory = { proc: dir, url: dirUrl };

    const unicast = { kind: 'unicast' } as const;
    const ctl = await startKeyd('hC', 'ctl', { ...keydConfig(pki, { name: 'ctl', role: 'controller', host: ip('hC'), port: 7443, transport: unicast, acl: [{ principal: '*', roles: ['member', 'intermediary'] }] }), discovery: discovery(undefined, 'ctl') });
    const child = (name: string, host: string, disc: Record<string, unknown>) => startKeyd(host, name, {
      ...keydConfig(pki, { name, role: 'intermediary', host: ip(host), port: 7443, parentUrl: ctl.url, transport: unicast, acl: [{ principal: '*', roles: ['member'] }] }),
      discovery: disc,
    });
    await Promise.all([
      child('i-a', 'hA', discovery('site-a', 'agent-a')),
      child('i-b', 'hB', discovery(undefined, undefined)),
      startKeyd('hR', 'rogue', { ...keydConfig(roguePki, { name: 'rogue', role: 'controller', host: ip('hR'), port: 7443, transport: unicast, acl: [{ principal: '*', roles: ['member'] }] }), agent: { name: 'rogue', role: 'controller', level: 2 }, discovery: discovery(undefined, 'rogue') }),
      startAvahi(),
    ]);
    // Every honest agent registered (the rogue's registration is refused).
    await until('three registrations', async () => (await directoryList())[0]?.agents.length === 3, 15_000, 250);
  });

  afterAll(async () => {
    if (site) {
      await site.teardown(); // every process, then the namespaces; throws if one survives
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(site.id);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('a member in site A resolves the global name to its own site\'s intermediary, not the controller: by the directory and by mDNS', async () => {
    const byDirectory = await resolveIn('hA', 'm-a', dirArgs());
    expect(byDirectory).toMatchObject({ group: 'g1', url: agents['i-a']!.url, source: 'directory', principal: 'i-a', level: 1, refused: [] });
    const fromB = await resolveIn('hB', 'm-b', dirArgs());
    expect(fromB).toMatchObject({ url: agents['i-b']!.url, principal: 'i-b' });

    const byMdns = await resolveIn('hA', 'm-a', ['--mdns', '--interface', 'eth0']);
    expect(byMdns).toMatchObject({ url: agents['i-a']!.url, source: 'mdns', principal: 'i-a', role: 'intermediary' });
    // The rogue advertised a deeper level, so it was tried first, and refused by its certificate.
    expect(byMdns.refused).toEqual([{ source: 'mdns', url: agents.rogue!.url, name: expect.stringContaining('rogue'), reason: expect.stringMatching(/not issued by the group CA/) }]);
  });

  it('the directory refused the rogue keyd\'s registration (certificate from another CA), and it says why', async () => {
    const line = await agents.rogue!.proc.waitForLine(/"event":"directory-refused"/, { timeoutMs: 10_000 });
    expect(json(line)).toMatchObject({ status: 403, reason: expect.stringMatching(/not issued by the CA of any group this directory serves/) });
    expect((await directoryList())[0]!.agents.map((a) => a.principal).sort()).toEqual(['ctl', 'i-a', 'i-b']);
  });

  it('avahi-browse sees a real keyd\'s advertisement: host, address, port and TXT with its certificate fingerprint', async () => {
    const r = await site.exec('hV', 'avahi-browse', ['-rpt', '_iolus._tcp'], { env: avahiEnv, timeoutMs: 20_000 });
    const lines = r.stdout.split('\n').filter((l) => l.startsWith('=;')).map((l) => l.split(';'));
    const iA = lines.find((f) => f[6] === 'agent-a.local' && f[2] === 'IPv4');
    expect(iA, r.stdout + r.stderr).toBeDefined();
    expect(iA!.slice(7, 9)).toEqual([ip('hA'), '7443']);
    const fp = fingerprint(readFileSync(pki.tls('i-a').cert, 'utf8'));
    for (const kv of ['txtvers=1', 'group=g1', 'role=intermediary', 'level=1', `fp=${fp}`]) expect(iA![9]).toContain(`"${kv}"`);
    expect(lines.some((f) => f[6] === 'ctl.local' && f[9]?.includes('"role=controller"'))).toBe(true);
  });

  it('when its intermediary stops (goodbye, unregister), each member re-resolves within the TTL and rejoins the next best: mDNS → controller, directory → site B', async () => {
    // The local agent finds i-a over mDNS (past the rogue); the member finds it in the directory.
    const local = spawnCli('hA', ['agent', '--group', 'g1', '--mdns', '--interface', 'eth0', ...dirArgs(), ...tlsArgs(pki, 'm-a'), '--socket', join(tmp, 'agent.sock')]);
    const ready = json(await local.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 }));
    expect(ready).toMatchObject({ agent: agents['i-a']!.url, source: 'mdns' });
    expect(local.stderr).toMatch(/ignoring mdns candidate for g1: certificate not issued by the group CA/);
    const member = spawnCli('hA', ['member', '--group', 'g1', ...dirArgs(), ...tlsArgs(pki, 'm-a2'), '--listen-only'], 'warn');
    expect(json(await member.waitForLine(/"event":"joined"/, { timeoutMs: 20_000 }))).toMatchObject({ agent: 'i-a' });
    agents.member = { proc: member, url: '' };
    agents.local = { proc: local, url: '' };

    const from = { local: local.lineCount, member: member.lineCount };
    const t0 = Date.now();
    await agents['i-a']!.proc.stop();
    const [toCtl, toB] = await Promise.all([
      local.waitForLine((l) => l.includes('"event":"joined"'), { from: from.local, timeoutMs: TTL_MS }),
      member.waitForLine((l) => l.includes('"event":"joined"'), { from: from.member, timeoutMs: TTL_MS }),
    ]);
    const elapsed = Date.now() - t0;
    console.log(`failover after SIGTERM: local agent (mDNS) at ${Number(json(toCtl).t) - t0} ms, member (directory) at ${Number(json(toB).t) - t0} ms`);
    expect(json(toCtl)).toMatchObject({ agent: 'ctl', url: agents.ctl!.url });
    expect(json(toB)).toMatchObject({ agent: 'i-b' });
    expect(elapsed).toBeLessThan(TTL_MS);
    expect(local.lines.slice(from.local).map((l) => json(l)).find((e) => e.event === 'state' && e.state === 'rejoining')?.why).toMatch(/mDNS: .*agent-a.* said goodbye|agent unreachable/);
    // Unregistered at once, not left to expire.
    expect((await directoryList())[0]!.agents.map((a) => a.principal).sort()).toEqual(['ctl', 'i-b']);
  });

  it('when an intermediary dies without a word, its registration expires; the member moves on within the TTL', async () => {
    const member = agents.member!.proc;
    const from = member.lineCount;
    const t0 = Date.now();
    agents['i-b']!.proc.signal('SIGKILL');
    // Soft state: still listed right after the kill…
    expect((await directoryList())[0]!.agents.map((a) => a.principal)).toContain('i-b');
    const moved = json(await member.waitForLine((l) => l.includes('"event":"joined"'), { from, timeoutMs: TTL_MS }));
    expect(moved).toMatchObject({ agent: 'ctl' });
    console.log(`failover after SIGKILL: member (directory) rejoined at ${Number(moved.t) - t0} ms`);
    // …and gone once its TTL has run out (the directory sweeps twice a second here).
    await until('i-b to expire', async () => !(await directoryList())[0]!.agents.some((a) => a.principal === 'i-b'), TTL_MS + 3_000, 200);
    const goneAfter = Date.now() - t0;
    console.log(`registration of the killed agent gone after ${goneAfter} ms (TTL ${TTL_MS} ms)`);
    expect(goneAfter).toBeLessThan(TTL_MS + 3_000);
    await agents.directory!.proc.waitForLine((l) => l.includes('"event":"expired"') && l.includes('"principal":"i-b"'), { timeoutMs: 1_000 });
    expect((await directoryList())[0]!.agents.map((a) => a.principal)).toEqual(['ctl']);
  });
});
