/**
 * The subgroup transports with real sockets across hosts (network namespaces on one bridge,
 * integration/lib/netns.ts), one process per agent or member (src/transport/driver.ts):
 *
 *   hC 10.X.Y.1: the agent            hA 10.X.Y.2: a member; the flooder
 *   hB 10.X.Y.3: two members (sharing the group port: SO_REUSEADDR)
 *
 * IPv4 multicast (239/8) and IPv6 multicast (ff12:: link-local and ff15:: site-local on the
 * segment) cross between namespaces; unicast fan-out reflects to every member but the
 * sender; 10k random datagrams at an agent's ports are all counted (the kernel's own UDP
 * counters in the agent's namespace account for any it dropped) and the agent still works.
 * Nothing is sent anywhere but inside the site.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, nodeEntry, type NetnsHost, type NsProcess, type Site } from './lib/netns.js';

interface Item {
  hex: string;
  length: number;
  source?: { address: string; port: number; memberId?: number };
}
interface Received {
  total: number;
  items: Item[];
}
interface Counters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  dropped: Record<string, number>;
}
interface FloodStats {
  sent: number;
  empty: number;
  oversized: number;
  errors: number;
}

let site: Site;
let driver: string;
let hC: NetnsHost;
let hA: NetnsHost;
let hB: NetnsHost;
const spawned: NsProcess[] = [];

async function start(host: NetnsHost, startup: object): Promise<{ p: NsProcess; ready: Record<string, unknown> }> {
  const p = site.spawn(host, process.execPath, [driver, JSON.stringify(startup)]);
  spawned.push(p);
  const line = await p.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 });
  return { p, ready: JSON.parse(line) as Record<string, unknown> };
}

async function call<T = Record<string, unknown>>(p: NsProcess, command: Record<string, unknown>, timeoutMs?: number): Promise<T> {
  const r = await p.request<{ ok: boolean; error?: string } & T>(command, timeoutMs);
  if (!r.ok) throw new Error(`${command.op}: ${r.error}`);
  return r;
}

const received = (p: NsProcess) => call<Received>(p, { op: 'received', clear: true });
const counters = (p: NsProcess) => call<Counters>(p, { op: 'counters' });

/** A tag: 3 header-like bytes (version, suite, type) and 5 random ones. */
function tag(type: number): string {
  return `0101${type.toString(16).padStart(2, '0')}${randomBytes(5).toString('hex')}`;
}

/** Waits until `p` has received `n` datagrams in all, then a little more for strays. */
async function collect(p: NsProcess, n: number, timeoutMs = 5_000): Promise<Item[]> {
  const items: Item[] = [];
  const end = Date.now() + timeoutMs;
  while (items.length < n && Date.now() < end) {
    items.push(...(await received(p)).items);
    if (items.length < n) await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 150));
  items.push(...(await received(p)).items);
  return items;
}

const hexes = (items: Item[]) => items.map((i) => i.hex.slice(0, 16)).sort();

/** UDP counters of a namespace (kernel): how many datagrams it dropped for full buffers. */
async function kernelUdpDrops(host: NetnsHost): Promise<number> {
  const snmp = (await site.exec(host, 'cat', ['/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = snmp.map((l) => l.split(/\s+/).slice(1));
  const get = (k: string) => Number(values?.[names?.indexOf(k) ?? -1] ?? 0);
  const snmp6 = (await site.exec(host, 'cat', ['/proc/net/snmp6'])).stdout;
  const v6 = Number(/Udp6RcvbufErrors\s+(\d+)/.exec(snmp6)?.[1] ?? 0);
  return get('RcvbufErrors') + get('MemErrors') + v6;
}

function randomPort(): number {
  return 20_000 + Math.floor(Math.random() * 20_000);
}

describe('subgroup transports between namespaces', () => {
  beforeAll(async () => {
    [site, driver] = await Promise.all([createSite({ hosts: ['hC', 'hA', 'hB'], prefix: 'iolustr' }), nodeEntry('src/transport/driver.ts')]);
    [hC, hA, hB] = site.hosts as [NetnsHost, NetnsHost, NetnsHost];
  });

  afterAll(async () => {
    if (!site) return;
    await site.teardown();
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(site.id);
    for (const p of spawned) expect(p.running, p.command).toBe(false);
  });

  /** One agent in hC, one member in hA, two in hB; checks the three paths of a multicast subgroup. */
  async function multicastSubgroup(config: Record<string, unknown>, memberInterface?: string) {
    const agent = await start(hC, { role: 'agent', config });
    const descriptor = agent.ready.descriptor as Record<string, unknown>;
    expect(descriptor).toMatchObject({ kind: 'multicast', address: config.address, port: config.port });
    const iface = memberInterface ? { interface: memberInterface } : {};
    const members = await Promise.all([hA, hB, hB].map((h) => start(h, { role: 'member', descriptor, ...iface })));
    const [a, b1, b2] = members.map((m) => m.p) as [NsProcess, NsProcess, NsProcess];

    // Agent → group: every member, once; the agent hears its own (loopback) and drops nothing.
    const down = tag(2);
    await call(agent.p, { op: 'send', to: 'multicast', hex: down, length: 200 });
    for (const m of [a, b1, b2]) expect(hexes(await collect(m, 1))).toEqual([down]);
    const own = await collect(agent.p, 1);
    expect(hexes(own)).toEqual([down]);

    // A member → group (method 1): the other members and the agent; the sender hears its own echo.
    const up = tag(4);
    await call(a, { op: 'send', to: 'subgroup', hex: up, length: 65_000 });
    for (const m of [b1, b2]) {
      const got = await collect(m, 1);
      expect(hexes(got)).toEqual([up]);
      expect(got[0]!.length).toBe(65_000); // fragmented across the link, reassembled
    }
    const atAgent = await collect(agent.p, 1);
    expect(hexes(atAgent)).toEqual([up]);
    expect(hexes(await collect(a, 1))).toEqual([up]);

    // A member → agent (method 2): the agent's datagram port only.
    const m2 = tag(6);
    await call(b1, { op: 'send', to: 'agent', hex: m2, length: 300 });
    const direct = await collect(agent.p, 1);
    expect(hexes(direct)).toEqual([m2]);
    for (const m of [a, b1, b2]) expect(await collect(m, 0, 0)).toEqual([]);
    for (const m of [agent.p, a, b1, b2]) expect((await counters(m)).dropped).toEqual({});
    for (const m of [agent.p, a, b1, b2]) expect(m.stderr).toBe(''); // no warning: the group address was bound, nothing failed
    return { agent: agent.p, members: [a, b1, b2], direct: direct[0]!, descriptor };
  }

  it('IPv4 multicast (239/8) crosses between namespaces, to members sharing the group port', async () => {
    const port = randomPort();
    const group = `239.${77 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;
    const { agent, members, direct } = await multicastSubgroup({ kind: 'multicast', address: group, port, ttl: 1, interface: 'eth0', agentHost: hC.ipv4, agentPort: port + 1 });
    expect(direct.source).toEqual({ address: hB.ipv4, port: expect.any(Number) });
    for (const p of [agent, ...members]) await call(p, { op: 'exit' });
  });

  it('IPv6 multicast crosses between namespaces: ff12:: (link-local) and ff15:: (site-local)', async () => {
    for (const scope of ['ff12', 'ff15']) {
      const port = randomPort();
      const group = `${scope}::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
      const { agent, members, direct, descriptor } = await multicastSubgroup(
        { kind: 'multicast', address: group, port, interface: 'eth0', agentHost: `${hC.ipv6LinkLocal}%eth0`, agentPort: port + 1 },
        'eth0',
      );
      expect(descriptor.agentHost).toBe(`${hC.ipv6LinkLocal}%eth0`);
      expect(direct.source).toEqual({ address: hB.ipv6LinkLocal, port: expect.any(Number) });
      for (const p of [agent, ...members]) await call(p, { op: 'exit' });
    }
  });

  it('unicast fan-out across namespaces: reflected to every member but the sender, method 2 kept', async () => {
    const agent = await start(hC, { role: 'agent', config: { kind: 'unicast', host: hC.ipv4, port: 0 } });
    const descriptor = agent.ready.descriptor as { kind: string; agentHost: string; agentPort: number };
    expect(descriptor).toEqual({ kind: 'unicast', agentHost: hC.ipv4, agentPort: expect.any(Number) });
    const members = await Promise.all([hA, hB, hB].map((h) => start(h, { role: 'member', descriptor })));
    for (const [i, m] of members.entries()) {
      expect(m.ready.endpoint).toEqual({ host: [hA, hB, hB][i]!.ipv4, port: expect.any(Number) });
      await call(agent.p, { op: 'addMember', memberId: i + 1, endpoint: m.ready.endpoint });
    }
    const [a, b1, b2] = members.map((m) => m.p) as [NsProcess, NsProcess, NsProcess];

    const down = tag(1);
    await call(agent.p, { op: 'send', to: 'multicast', hex: down, length: 65_000 });
    for (const m of [a, b1, b2]) expect(hexes(await collect(m, 1))).toEqual([down]);

    const up = tag(4);
    await call(a, { op: 'send', to: 'subgroup', hex: up, length: 900 });
    for (const m of [b1, b2]) expect(hexes(await collect(m, 1))).toEqual([up]);
    const atAgent = await collect(agent.p, 1);
    expect(atAgent).toEqual([{ hex: expect.stringMatching(new RegExp(`^${up}`)), length: 900, source: { address: hA.ipv4, port: (members[0]!.ready.endpoint as { port: number }).port, memberId: 1 } }]);
    expect(await collect(a, 0, 0)).toEqual([]); // never back to the sender

    const m2 = tag(6); // DataUp: for the agent alone
    await call(b2, { op: 'send', to: 'agent', hex: m2, length: 120 });
    expect((await collect(agent.p, 1))[0]!.source?.memberId).toBe(3);
    for (const m of [a, b1, b2]) expect(await collect(m, 0, 0)).toEqual([]);

    const c = await counters(agent.p);
    expect(c.datagramsIn).toBe(2);
    expect(c.datagramsOut).toBe(3 + 2);
    expect(c.dropped).toEqual({});
    for (const p of [agent.p, a, b1, b2]) await call(p, { op: 'exit' });
  });

  it('10k random datagrams at the agent ports are all counted; nothing crashes; the subgroup still works', async () => {
    const port = randomPort();
    const group = `239.${77 + Math.floor(Math.random() * 100)}.9.${1 + Math.floor(Math.random() * 254)}`;
    const mc = await start(hC, { role: 'agent', config: { kind: 'multicast', address: group, port, interface: 'eth0', agentHost: hC.ipv4, agentPort: port + 1 } });
    const uc = await start(hC, { role: 'agent', config: { kind: 'unicast', host: hC.ipv4, port: 0 } });
    const ucPort = (uc.ready.descriptor as { agentPort: number }).agentPort;
    const flooder = await start(hA, { role: 'flooder' });
    const member = await start(hB, { role: 'member', descriptor: mc.ready.descriptor });

    const drops0 = await kernelUdpDrops(hC);
    const targets: [NsProcess, string, number, number][] = [
      [mc.p, hC.ipv4, port + 1, 10_000], // the multicast agent's datagram port
      [uc.p, hC.ipv4, ucPort, 10_000], // the fan-out agent's port (a stranger: all dropped)
      [mc.p, group, port, 2_000], // the group itself
    ];
    const expected = new Map<NsProcess, { n: number; empty: number; oversized: number }>();
    for (const [p, host, to, count] of targets) {
      const s = await call<FloodStats>(flooder.p, { op: 'flood', host, port: to, count, seed: to }, 120_000);
      expect(s.errors).toBe(0);
      expect(s.sent).toBe(count);
      const e = expected.get(p) ?? { n: 0, empty: 0, oversized: 0 };
      expected.set(p, { n: e.n + count, empty: e.empty + s.empty, oversized: e.oversized + s.oversized });
    }
    await new Promise((r) => setTimeout(r, 500));
    const kernelDrops = (await kernelUdpDrops(hC)) - drops0;
    const mcC = await counters(mc.p);
    const ucC = await counters(uc.p);
    // Every datagram that reached a socket was counted; the kernel accounts for the rest.
    expect(mcC.datagramsIn + ucC.datagramsIn + kernelDrops).toBe(22_000);
    expect(kernelDrops).toBeLessThan(200);
    const e = expected.get(mc.p)!;
    const u = expected.get(uc.p)!;
    if (kernelDrops === 0) {
      expect(mcC.datagramsIn).toBe(e.n);
      expect(mcC.dropped).toEqual({ empty: e.empty, oversized: e.oversized });
      expect(ucC.dropped).toEqual({ empty: u.empty, oversized: u.oversized, 'unknown-source': u.n - u.empty - u.oversized });
    }
    expect(mcC.datagramsIn - (mcC.dropped.empty ?? 0) - (mcC.dropped.oversized ?? 0)).toBe((await received(mc.p)).total);
    for (const p of [mc.p, uc.p, flooder.p, member.p]) expect(p.running).toBe(true);

    // Still serving: the member hears the agent, the agent hears the member.
    await received(member.p);
    const after = tag(2);
    await call(mc.p, { op: 'send', to: 'multicast', hex: after, length: 100 });
    expect(hexes(await collect(member.p, 1)).filter((h) => h === after)).toEqual([after]);
    const m2 = tag(6);
    await call(member.p, { op: 'send', to: 'agent', hex: m2, length: 100 });
    const heard = await collect(mc.p, 1);
    expect(hexes(heard).filter((h) => h === m2)).toEqual([m2]);
    for (const p of [mc.p, uc.p, member.p, flooder.p]) {
      await call(p, { op: 'stop' });
      await call(p, { op: 'stop' }); // idempotent
      await call(p, { op: 'exit' });
      expect(p.stderr).not.toMatch(/Error|driver:/);
    }
  });
});
