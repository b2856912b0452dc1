/**
 * mDNS across hosts (network namespaces on one bridge), checked against independent Debian
 * clients: avahi (daemon, browse, publish), python3-zeroconf and dig.
 *
 *   hA: our agent advertisement (driver.ts)          10.X.Y.1
 *   hB: avahi-daemon with a private D-Bus            10.X.Y.2
 *   hC: our resolver (driver.ts); zeroconf; dig      10.X.Y.3
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { createSite, nodeEntry, reapStaleSites, type NsProcess, type Site } from './lib/netns.js';

const FP = '5e'.repeat(32);
const AGENT = { group: 'g1', role: 'intermediary', level: 1, fingerprint: FP, port: 7443, hostName: 'agent-a' };
const INSTANCE = 'g1 intermediary agent-a:7443';
const TOOLS = ['/usr/sbin/avahi-daemon', '/usr/bin/avahi-browse', '/usr/bin/avahi-publish', '/usr/bin/dbus-daemon', '/usr/bin/dig'];

interface Candidate {
  instance: string;
  host: string;
  addresses: string[];
  port: number;
  group: string;
  role: string;
  level: number;
  fingerprint: string;
  ttl: number;
  seenAt: number;
}
interface Stats {
  transport: { malformed: number; received: number; ignored: number; queries: number };
  advertisers: ({ answered: number; legacyAnswered: number } | null)[];
}

let site: Site;
let tmp: string;
let driver: string;
let agentA: NsProcess;
let resolverC: NsProcess;
let avahiEnv: Record<string, string>;
const spawned: NsProcess[] = [];

function checkTools(): void {
  const missing = TOOLS.filter((t) => {
    try {
      execFileSync('test', ['-x', t]);
      return false;
    } catch {
      return true;
    }
  });
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import zeroconf']);
  } catch {
    missing.push('python3-zeroconf');
  }
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run 'bash scripts/deps.sh' as root (scripts/apt-packages.txt lists them)`);
}

async function startDriver(host: string, config: object): Promise<NsProcess> {
  const p = site.spawn(host, process.execPath, [driver, JSON.stringify(config)]);
  spawned.push(p);
  await p.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 });
  return p;
}

/** A private system bus and avahi-daemon in hB: no clash with another avahi on this machine. */
async function startAvahi(hostName: string): Promise<void> {
  const bus = join(tmp, 'bus');
  writeFileSync(
    join(tmp, 'dbus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=${bus}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>\n`,
  );
  writeFileSync(
    join(tmp, 'avahi.conf'),
    ['[server]', `host-name=${hostName}`, 'use-ipv4=yes', 'use-ipv6=yes', 'allow-interfaces=eth0', 'enable-dbus=yes', 'ratelimit-interval-usec=1000000', 'ratelimit-burst=1000', '[wide-area]', 'enable-wide-area=no', '[publish]', 'publish-hinfo=no', 'publish-workstation=no', ''].join('\n'),
  );
  avahiEnv = { DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}` };
  const dbus = site.spawn('hB', 'dbus-daemon', [`--config-file=${join(tmp, 'dbus.conf')}`, '--nofork', '--nopidfile', '--print-address']);
  spawned.push(dbus);
  await dbus.waitForLine(/unix:path=/);
  // avahi-daemon insists on one instance per machine through /run/avahi-daemon/pid: give it a
  // private /run/avahi-daemon (ip netns exec already runs us in a mount namespace of our own).
  const avahi = site.spawn('hB', 'sh', ['-c', `mkdir -p /run/avahi-daemon && mount -t tmpfs tmpfs /run/avahi-daemon && exec avahi-daemon -f ${join(tmp, 'avahi.conf')} --no-drop-root --no-chroot --no-rlimits 2>&1`], { env: avahiEnv });
  spawned.push(avahi);
  await avahi.waitForLine(/Server startup complete/, { timeoutMs: 20_000 });
}

/** True once `pid` has exited (a zombie waiting for init to reap it counts as exited). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    let state: string | undefined;
    try {
      state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    } catch {
      return true;
    }
    if (state === 'Z' || state === 'X') return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** avahi-browse -p escapes names: `\\032` is a decimal byte, `\\.` a literal character. */
function unescapeAvahi(s: string): string {
  return s.replace(/\\(\d{3}|.)/g, (_m, e: string) => (e.length === 3 ? String.fromCharCode(Number(e)) : e));
}

/** `avahi-browse -p` lines: `=;eth0;IPv4;name;type;domain;host;address;port;"txt" …`. */
function parseAvahi(line: string) {
  const [event, iface, proto, name, type, domain, host, address, port, txt] = line.split(';');
  return { event, iface, proto, name: unescapeAvahi(name ?? ''), type, domain, host, address, port: Number(port), txt: txt ?? '' };
}

describe('mDNS between namespaces', () => {
  beforeAll(async () => {
    checkTools();
    tmp = mkdtempSync(join(os.tmpdir(), 'iolus-mdns-it-'));
    [site, driver] = await Promise.all([createSite({ hosts: ['hA', 'hB', 'hC'], prefix: 'iolusmdns' }), nodeEntry('src/discovery/mdns/driver.ts')]);
    await startAvahi(`avahi-${site.id.slice(-6)}`);
    [agentA, resolverC] = await Promise.all([startDriver('hA', { transport: { interfaces: ['eth0'] }, advertise: [AGENT] }), startDriver('hC', { transport: { interfaces: ['eth0'] } })]);
  });

  afterAll(async () => {
    if (site) {
      await site.teardown();
      const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
      expect(left).not.toContain(site.id);
      for (const p of spawned) expect(await gone(p.pid), p.command).toBe(true);
    }
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('avahi-browse sees our advertisement and resolves it: host, address, port and TXT', async () => {
    const hA = site.host('hA');
    const r = await site.exec('hB', 'avahi-browse', ['-rpt', '_iolus._tcp'], { env: avahiEnv, timeoutMs: 20_000 });
    const resolved = r.stdout.split('\n').filter((l) => l.startsWith('=;')).map(parseAvahi);
    const v4 = resolved.find((e) => e.proto === 'IPv4');
    expect(v4, r.stdout + r.stderr).toBeDefined();
    expect(v4).toMatchObject({ iface: 'eth0', name: INSTANCE, type: '_iolus._tcp', domain: 'local', host: 'agent-a.local', address: hA.ipv4, port: 7443 });
    for (const kv of ['txtvers=1', 'group=g1', 'role=intermediary', 'level=1', `fp=${FP}`]) expect(v4!.txt).toContain(`"${kv}"`);
  });

  it('python3-zeroconf browses and resolves our advertisement', async () => {
    const script = `
import json, sys, time
from zeroconf import Zeroconf, ServiceBrowser, IPVersion
iface, stype, want = sys.argv[1:4]
zc = Zeroconf(interfaces=[iface], ip_version=IPVersion.V4Only)
seen = []
class Listener:
    def add_service(self, zc, t, name): seen.append(name)
    def update_service(self, zc, t, name): pass
    def remove_service(self, zc, t, name): pass
browser = ServiceBrowser(zc, stype, Listener())
deadline = time.time() + 10
while want not in seen and time.time() < deadline: time.sleep(0.05)
info = zc.get_service_info(stype, want, timeout=5000)
out = {"seen": seen}
if info:
    out.update(server=info.server, port=info.port, addresses=info.parsed_addresses(),
               properties={k.decode(): (v.decode() if v is not None else None) for k, v in info.properties.items()})
print(json.dumps(out))
browser.cancel(); zc.close()
`;
    const r = await site.exec('hC', '/usr/bin/python3', ['-c', script, site.host('hC').ipv4, '_iolus._tcp.local.', `${INSTANCE}._iolus._tcp.local.`], { timeoutMs: 30_000 });
    const out = JSON.parse(r.stdout) as { seen: string[]; server?: string; port?: number; addresses?: string[]; properties?: Record<string, string> };
    expect(out.seen).toContain(`${INSTANCE}._iolus._tcp.local.`);
    // IPv4 only on the wire, but our answers carry the AAAA as well (RFC 6762 §6.2).
    expect(out).toMatchObject({ server: 'agent-a.local.', port: 7443, addresses: [site.host('hA').ipv4, site.host('hA').ipv6LinkLocal] });
    expect(out.properties).toEqual({ txtvers: '1', group: 'g1', role: 'intermediary', level: '1', fp: FP });
  });

  it('our resolver in another namespace resolves the group to the agent', async () => {
    const hA = site.host('hA');
    await resolverC.request({ op: 'flush' });
    const r = await resolverC.request<{ candidates: Candidate[]; elapsedMs: number }>({ op: 'resolve', group: 'g1', timeoutMs: 5_000, useCache: false }, 10_000);
    expect(r.candidates).toHaveLength(1);
    const c = r.candidates[0]!;
    expect(c).toMatchObject({ instance: INSTANCE, host: 'agent-a.local', port: 7443, group: 'g1', role: 'intermediary', level: 1, fingerprint: FP });
    expect(c.addresses).toEqual([hA.ipv4, `${hA.ipv6LinkLocal}%eth0`]);
    expect(c.ttl).toBeGreaterThan(100);
    expect(c.ttl).toBeLessThanOrEqual(120);
    const none = await resolverC.request<{ candidates: Candidate[] }>({ op: 'resolve', group: 'no-such-group', timeoutMs: 1_500 }, 10_000);
    expect(none.candidates).toEqual([]);
  });

  it('our resolver finds a service published by avahi-publish', async () => {
    const hB = site.host('hB');
    const fp = 'a7'.repeat(32);
    const pub = site.spawn('hB', 'avahi-publish', ['-s', 'avahi controller', '_iolus._tcp', '7999', 'txtvers=1', 'group=g-avahi', 'role=controller', 'level=0', `fp=${fp}`], { env: avahiEnv });
    spawned.push(pub);
    // avahi-publish prints on stderr; the resolver simply retries until avahi has probed (~1 s).
    const r = await resolverC.request<{ candidates: Candidate[] }>({ op: 'resolve', group: 'g-avahi', timeoutMs: 10_000 }, 15_000);
    expect(r.candidates).toHaveLength(1);
    expect(r.candidates[0]).toMatchObject({ instance: 'avahi controller', host: `avahi-${site.id.slice(-6)}.local`, port: 7999, role: 'controller', level: 0, fingerprint: fp });
    expect(r.candidates[0]!.addresses).toContain(hB.ipv4);
    await pub.stop();
  });

  it('answers a legacy unicast query from dig (RFC 6762 §6.7), which plain mdns-server cannot', async () => {
    const hA = site.host('hA');
    const r = await site.exec('hC', 'dig', ['+short', '+tries=2', '+time=2', '-p', '5353', `@${hA.ipv4}`, `${INSTANCE}._iolus._tcp.local`, 'SRV']);
    expect(r.stdout.trim()).toBe('0 0 7443 agent-a.local.');
    const a = await site.exec('hC', 'dig', ['+short', '+tries=2', '+time=2', '-p', '5353', `@${hA.ipv4}`, 'agent-a.local', 'A']);
    expect(a.stdout.trim()).toBe(hA.ipv4);
    const s = await agentA.request<Stats>({ op: 'stats' });
    expect(s.advertisers[0]?.legacyAnswered).toBeGreaterThanOrEqual(2);
  });

  it('garbage UDP to 5353 is counted and does not break the service', async () => {
    const hA = site.host('hA');
    const before = await agentA.request<Stats>({ op: 'stats' });
    const sender = `
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const [target, iface] = process.argv.slice(1);
const h = (qd, an, flags = 0x8400) => { const b = Buffer.alloc(12); b.writeUInt16BE(flags, 2); b.writeUInt16BE(qd, 4); b.writeUInt16BE(an, 6); return b; };
const packets = [
  Buffer.alloc(0), Buffer.from([0]), crypto.randomBytes(11),
  h(65535, 65535),                                                     // counts with no body
  Buffer.concat([h(1, 0, 0), Buffer.from([0xc0, 0x0c, 0, 12, 0, 1])]), // name pointing at itself
  Buffer.concat([h(0, 1), Buffer.from([1, 0x61, 0, 0, 1, 0, 1, 0, 0, 0, 120, 0, 40, 1, 2])]), // rdata cut short
  Buffer.concat([h(0, 1), Buffer.from([1, 0x61, 0, 0, 16, 0, 1, 0, 0, 0, 120, 0, 3, 200, 0x61, 0x62])]), // TXT string longer than rdata
  Buffer.concat([h(0, 1), Buffer.from([70]), Buffer.alloc(70, 0x61), Buffer.from([0])]),  // 70-byte label
];
for (let i = 0; i < 40; i++) packets.push(crypto.randomBytes(12 + (i * 37) % 500));
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.bind(5353, iface, async () => {
  s.setMulticastInterface(iface);
  for (const p of packets) for (const to of ['224.0.0.251', target]) await new Promise((r) => s.send(p, 5353, to, r));
  console.log(packets.length);
  s.close();
});
`;
    const sent = await site.exec('hC', process.execPath, ['-e', sender, hA.ipv4, site.host('hC').ipv4]);
    const n = Number(sent.stdout.trim());
    expect(n).toBeGreaterThan(40);
    await new Promise((r) => setTimeout(r, 500));
    const after = await agentA.request<Stats>({ op: 'stats' });
    // Each packet arrives twice (multicast and unicast); nearly all are undecodable or refused.
    expect(after.transport.malformed - before.transport.malformed).toBeGreaterThanOrEqual(n);
    expect(agentA.running).toBe(true);
    // Still serving: a cold resolution from hC finds it (after the 1 s per-record rate limit).
    await new Promise((r) => setTimeout(r, 1_100));
    await resolverC.request({ op: 'flush' });
    const r = await resolverC.request<{ candidates: Candidate[] }>({ op: 'resolve', group: 'g1', timeoutMs: 5_000, useCache: false }, 10_000);
    expect(r.candidates.map((c) => c.instance)).toEqual([INSTANCE]);
    expect(agentA.stderr).not.toMatch(/"level":(50|60)/);
  });

  it('our goodbye removes the agent from our resolver cache and from avahi', async () => {
    const watch = site.spawn('hB', 'avahi-browse', ['-p', '_iolus._tcp'], { env: avahiEnv });
    spawned.push(watch);
    const seen = (event: string) => (l: string) => {
      const e = parseAvahi(l);
      return e.event === event && e.proto === 'IPv4' && e.name === INSTANCE;
    };
    await watch.waitForLine(seen('+'), { timeoutMs: 10_000 });
    await resolverC.request({ op: 'resolve', group: 'g1', timeoutMs: 5_000 });
    const cachedBefore = await resolverC.request<{ instances: { instance: string }[] }>({ op: 'cached' });
    expect(cachedBefore.instances.map((i) => i.instance)).toContain(INSTANCE);

    const t0 = Date.now();
    await agentA.request({ op: 'unadvertise', index: 0 });
    await watch.waitForLine(seen('-'), { timeoutMs: 5_000 });
    let gone = false;
    while (!gone && Date.now() - t0 < 2_000) {
      const cached = await resolverC.request<{ instances: { instance: string }[] }>({ op: 'cached' });
      gone = !cached.instances.some((i) => i.instance === INSTANCE);
      if (!gone) await new Promise((r) => setTimeout(r, 50));
    }
    expect(gone).toBe(true);
    const r = await resolverC.request<{ candidates: Candidate[] }>({ op: 'resolve', group: 'g1', timeoutMs: 1_500 }, 10_000);
    expect(r.candidates).toEqual([]);
    await watch.stop();
  });
});

describe('netns library (used by every multi-host integration test)', () => {
  const receiver = `
const dgram = require('node:dgram');
const [family, group, iface, port] = process.argv.slice(1);
const s = dgram.createSocket({ type: family === '6' ? 'udp6' : 'udp4', reuseAddr: true });
s.on('message', (m, r) => { console.log('got ' + m.toString() + ' from ' + r.address); process.exit(0); });
s.bind(Number(port), () => { s.addMembership(group, iface); console.log('ready'); });
`;
  const sender = `
const dgram = require('node:dgram');
const [family, group, iface, port, text] = process.argv.slice(1);
const s = dgram.createSocket({ type: family === '6' ? 'udp6' : 'udp4', reuseAddr: true });
s.bind(0, () => { s.setMulticastInterface(iface); s.send(text, Number(port), group, () => s.close()); });
`;

  it('joins three hosts on one segment: unicast, IPv4 and IPv6 multicast reach every other host', async () => {
    const s = await createSite({ hosts: ['hC', 'hA', 'hB'], prefix: 'iolusnetns' });
    try {
      const [hC, hA, hB] = s.hosts;
      expect(s.hosts.map((h) => h.ipv4)).toEqual([1, 2, 3].map((i) => `${s.subnet.split('.').slice(0, 3).join('.')}.${i}`));
      expect(s.subnet).toMatch(/^10\.(2[0-4]\d)\.\d{1,3}\.0\/24$/);
      for (const h of s.hosts) expect(h.ipv6LinkLocal).toMatch(/^fe80:/);
      // An administratively scoped group (what the keyd subgroups use) and an IPv6 link-scoped one.
      for (const [family, group, ifaceOf] of [
        ['4', '239.255.42.7', (h: typeof hA) => h!.ipv4],
        ['6', 'ff12::4242', () => '::%eth0'],
      ] as const) {
        const rx = [hA!, hB!].map((h) => s.spawn(h, process.execPath, ['-e', receiver, family, group, ifaceOf(h), '4999']));
        await Promise.all(rx.map((p) => p.waitForLine(/^ready$/)));
        await s.exec(hC!, process.execPath, ['-e', sender, family, group, family === '6' ? '::%eth0' : hC!.ipv4, '4999', `hello-${family}`]);
        for (const p of rx) {
          const line = await p.waitForLine(/^got /, { timeoutMs: 5_000 });
          expect(line).toContain(`hello-${family} from ${family === '6' ? hC!.ipv6LinkLocal : hC!.ipv4}`);
        }
      }
      // No route out of the site.
      const route = await s.exec(hA!, 'ip', ['route', 'get', '1.1.1.1'], { reject: false });
      expect(route.exitCode).not.toBe(0);
    } finally {
      await s.teardown();
    }
  });

  it('teardown kills every process and removes every namespace; reapStaleSites removes a dead run', async () => {
    const s = await createSite({ hosts: ['hA'], prefix: 'iolusnetns' });
    const sleeper = s.spawn('hA', 'sleep', ['600']);
    // A grandchild in its own shell: teardown must catch it too.
    const shell = s.spawn('hA', 'sh', ['-c', 'sleep 600 & echo $!; wait']);
    const grandchild = Number(await shell.waitForLine(/^\d+$/));
    await s.teardown();
    for (const pid of [sleeper.pid, shell.pid, grandchild]) expect(await gone(pid), `pid ${pid}`).toBe(true);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(s.id);
    expect(() => s.spawn('hA', 'true')).toThrow(/torn down/);

    // A namespace named like a site of a process that no longer exists.
    const dead = Number(execFileSync('sh', ['-c', 'sh -c "echo \\$\\$"'], { encoding: 'utf8' }).trim());
    const stale = `iolusnetns-${dead}-abcdef-hX`;
    execFileSync('ip', ['netns', 'add', stale]);
    expect(await reapStaleSites('iolusnetns')).toContain(stale);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(stale);
  });
});
