/**
 * MdnsAdvertiser and MdnsBrowser over an in-memory link (every packet really goes through
 * dns-packet's encoder and our decoder) with a fake clock: the timing rules of RFC 6762 without
 * a network.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import dnsPacket, { type Packet } from 'dns-packet';
import { MdnsAdvertiser } from '../../src/discovery/mdns/advertiser.js';
import { MdnsBrowser } from '../../src/discovery/mdns/browser.js';
import { queryPacket, readMessage, type MdnsMessage } from '../../src/discovery/mdns/message.js';
import type { MdnsLink, MdnsSource, MessageListener, SendScope } from '../../src/discovery/mdns/transport.js';
import type { MdnsInterface } from '../../src/discovery/mdns/interfaces.js';
import { silentLogger } from '../../src/util/log.js';
import { ValidationError } from '../../src/errors.js';

interface Sent {
  from: string;
  message: MdnsMessage;
  at: number;
}

class Bus {
  readonly links: FakeLink[] = [];
  readonly sent: Sent[] = [];
  link(address: string): FakeLink {
    const l = new FakeLink(this, address);
    this.links.push(l);
    return l;
  }
  deliver(sender: FakeLink, packet: Packet, port = 5353): void {
    const bytes = dnsPacket.encode(packet);
    this.sent.push({ from: sender.address, message: readMessage(dnsPacket.decode(bytes)), at: Date.now() });
    for (const l of this.links) {
      const from: MdnsSource = { address: sender.address, port, family: 'IPv4', interface: 'eth0', own: l === sender };
      queueMicrotask(() => l.receive(readMessage(dnsPacket.decode(bytes)), from));
    }
  }
  responsesFrom(address: string): Sent[] {
    return this.sent.filter((s) => s.from === address && s.message.kind === 'response');
  }
}

class FakeLink implements MdnsLink {
  readonly interfaces: MdnsInterface[];
  readonly unicasts: { packet: MdnsMessage; to: MdnsSource }[] = [];
  private readonly listeners = new Set<MessageListener>();
  constructor(
    private readonly bus: Bus,
    readonly address: string,
  ) {
    this.interfaces = [{ name: 'eth0', ipv4: address, publish: { ipv4: [address], ipv6: [] }, cidrs: [`${address}/24`] }];
  }
  onMessage(l: MessageListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  async multicast(packet: Packet, scope?: SendScope): Promise<void> {
    if (scope?.family === 'IPv6') return; // IPv4-only fake
    this.bus.deliver(this, packet);
  }
  async unicast(packet: Packet, to: MdnsSource): Promise<void> {
    this.unicasts.push({ packet: readMessage(dnsPacket.decode(dnsPacket.encode(packet))), to });
  }
  receive(m: MdnsMessage, from: MdnsSource): void {
    for (const l of this.listeners) l(m, from);
  }
  /** Sends a query as if from a querier on this link (port 5353 unless given). */
  query(questions: { name: string; type: string }[], port = 5353, id = 0): void {
    this.bus.deliver(this, { ...queryPacket(questions), id }, port);
  }
}

const FP = '0f'.repeat(32);
const agent = { group: 'g1', role: 'intermediary' as const, level: 1, fingerprint: FP, port: 7443, hostName: 'agent-a', instance: 'agent A' };
const logger = silentLogger();

let bus: Bus;
beforeEach(() => {
  vi.useFakeTimers({ now: 1_700_000_000_000 });
  bus = new Bus();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('MdnsAdvertiser', () => {
  it('announces at 0 s, 1 s and 3 s (RFC 6762 §8.3), then before the TTL runs out', async () => {
    const link = bus.link('10.0.0.1');
    const ad = new MdnsAdvertiser(agent, { link, logger });
    await ad.start();
    await vi.advanceTimersByTimeAsync(0);
    const times = () => bus.responsesFrom('10.0.0.1').map((s) => s.at - 1_700_000_000_000);
    expect(times()).toEqual([0]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(times()).toEqual([0, 1_000, 3_000]);
    const first = bus.responsesFrom('10.0.0.1')[0]!.message;
    expect(first.answers.map((r) => `${r.type} ${r.name} ${r.ttl}${r.flush ? ' flush' : ''}`)).toEqual([
      'PTR _iolus._tcp.local 120',
      'SRV agent A._iolus._tcp.local 120 flush',
      'TXT agent A._iolus._tcp.local 120 flush',
      'A agent-a.local 120 flush',
    ]);
    await vi.advanceTimersByTimeAsync(96_000 - 5_000); // 80% of the 120 s TTL
    expect(times()).toEqual([0, 1_000, 3_000, 96_000]);
    await ad.stop();
  });

  it('answers only matching questions; shared answers after 20-120 ms, unique ones at once', async () => {
    const ad = new MdnsAdvertiser({ ...agent, announcements: 2 }, { link: bus.link('10.0.0.1'), logger, random: () => 0.5 });
    const q = bus.link('10.0.0.2');
    await ad.start();
    await vi.advanceTimersByTimeAsync(3_000); // announcements done, 1 s rule satisfied
    const before = bus.responsesFrom('10.0.0.1').length;

    q.query([{ name: '_http._tcp.local', type: 'PTR' }]);
    q.query([{ name: 'agent B._iolus._tcp.local', type: 'SRV' }]);
    await vi.advanceTimersByTimeAsync(500);
    expect(bus.responsesFrom('10.0.0.1')).toHaveLength(before);

    q.query([{ name: '_iolus._tcp.local', type: 'PTR' }]);
    await vi.advanceTimersByTimeAsync(69);
    expect(bus.responsesFrom('10.0.0.1')).toHaveLength(before); // delay = 20 + 0.5 * 100 ms
    await vi.advanceTimersByTimeAsync(2);
    const ptrReply = bus.responsesFrom('10.0.0.1').at(-1)!.message;
    expect(ptrReply.answers.map((r) => r.type)).toEqual(['PTR']);
    expect(ptrReply.additionals.map((r) => r.type)).toEqual(['SRV', 'TXT', 'A']);

    await vi.advanceTimersByTimeAsync(1_000);
    const n = bus.responsesFrom('10.0.0.1').length;
    q.query([{ name: 'AGENT A._iolus._tcp.local', type: 'TXT' }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(bus.responsesFrom('10.0.0.1')).toHaveLength(n + 1);
    expect(bus.responsesFrom('10.0.0.1').at(-1)!.message.answers.map((r) => r.type)).toEqual(['TXT']);
    expect(ad.stats.answered).toBe(2);
    await ad.stop();
  });

  it('multicasts a record at most once a second per interface (RFC 6762 §6)', async () => {
    const ad = new MdnsAdvertiser({ ...agent, announcements: 2 }, { link: bus.link('10.0.0.1'), logger, random: () => 0 });
    const q = bus.link('10.0.0.2');
    await ad.start();
    await vi.advanceTimersByTimeAsync(3_000);
    const before = bus.responsesFrom('10.0.0.1').length;
    q.query([{ name: 'agent A._iolus._tcp.local', type: 'SRV' }]);
    await vi.advanceTimersByTimeAsync(400);
    q.query([{ name: 'agent A._iolus._tcp.local', type: 'SRV' }]);
    await vi.advanceTimersByTimeAsync(400);
    expect(bus.responsesFrom('10.0.0.1')).toHaveLength(before + 1);
    expect(ad.stats.suppressed).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    q.query([{ name: 'agent A._iolus._tcp.local', type: 'SRV' }]);
    await vi.advanceTimersByTimeAsync(0);
    expect(bus.responsesFrom('10.0.0.1')).toHaveLength(before + 2);
    await ad.stop();
  });

  it('answers a legacy querier (source port ≠ 5353) by unicast with its query ID (RFC 6762 §6.7)', async () => {
    const link = bus.link('10.0.0.1');
    const ad = new MdnsAdvertiser(agent, { link, logger });
    await ad.start();
    bus.link('10.0.0.2').query([{ name: 'agent-a.local', type: 'A' }], 40_000, 777);
    await vi.advanceTimersByTimeAsync(0);
    expect(link.unicasts).toHaveLength(1);
    const { packet, to } = link.unicasts[0]!;
    expect(to).toMatchObject({ address: '10.0.0.2', port: 40_000 });
    expect(packet.id).toBe(777);
    expect(packet.answers).toEqual([{ name: 'agent-a.local', type: 'A', ttl: 10, flush: false, data: '10.0.0.1' }]);
    await ad.stop();
  });

  it('says goodbye (TTL 0) on stop and answers nothing afterwards', async () => {
    const ad = new MdnsAdvertiser(agent, { link: bus.link('10.0.0.1'), logger });
    await ad.start();
    await vi.advanceTimersByTimeAsync(0);
    await ad.stop();
    await vi.advanceTimersByTimeAsync(0);
    const last = bus.responsesFrom('10.0.0.1').at(-1)!.message;
    expect(last.answers.map((r) => [r.type, r.ttl])).toEqual([
      ['PTR', 0],
      ['SRV', 0],
      ['TXT', 0],
    ]);
    const n = bus.sent.length;
    bus.link('10.0.0.2').query([{ name: '_iolus._tcp.local', type: 'PTR' }]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(bus.sent.length).toBe(n + 1); // only the query itself
  });

  it('counts another host answering for our instance with other data (RFC 6762 §9)', async () => {
    const ad = new MdnsAdvertiser(agent, { link: bus.link('10.0.0.1'), logger });
    await ad.start();
    const other = bus.link('10.0.0.7');
    const srv = (port: number) => ({ name: 'agent A._iolus._tcp.local', type: 'SRV' as const, ttl: 120, class: 'IN' as const, flush: true, data: { port, target: 'agent-a.local' } });
    await other.multicast({ type: 'response', id: 0, flags: 0x400, questions: [], answers: [srv(7443)] }); // same data: fine
    await other.multicast({ type: 'response', id: 0, flags: 0x400, questions: [], answers: [srv(9999)] });
    await vi.advanceTimersByTimeAsync(0);
    expect(ad.stats.conflicts).toBe(1);
    await ad.stop();
  });

  it('validates its configuration, naming the field', () => {
    const link = bus.link('10.0.0.1');
    expect(() => new MdnsAdvertiser({ ...agent, port: 0 }, { link, logger })).toThrow(/mdns\.advertise\.port/);
    expect(() => new MdnsAdvertiser({ ...agent, fingerprint: 'xyz' }, { link, logger })).toThrow(ValidationError);
    expect(() => new MdnsAdvertiser({ ...agent, announcements: 1 }, { link, logger })).toThrow(/announcements/);
    expect(() => new MdnsAdvertiser({ ...agent, instance: 'a.b' }, { link, logger })).toThrow(/must not contain/);
  });

  it('derives an instance name without dots from the group', () => {
    const ad = new MdnsAdvertiser({ ...agent, instance: undefined, group: 'example.com/live' }, { link: bus.link('10.0.0.1'), logger });
    expect(ad.spec.instance).toBe('example-com/live intermediary agent-a:7443');
  });
});

describe('MdnsBrowser', () => {
  it('resolves a group to the agents advertising it, and stops listing one after its goodbye', async () => {
    const ia = new MdnsAdvertiser(agent, { link: bus.link('10.0.0.1'), logger });
    const ctl = new MdnsAdvertiser({ ...agent, role: 'controller', level: 0, instance: 'ctl', hostName: 'ctl', port: 7000 }, { link: bus.link('10.0.0.3'), logger });
    const other = new MdnsAdvertiser({ ...agent, group: 'g2', instance: 'other', hostName: 'other' }, { link: bus.link('10.0.0.4'), logger });
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    await Promise.all([ia.start(), ctl.start(), other.start()]);
    await vi.advanceTimersByTimeAsync(5_000);

    const pending = browser.resolve('g1', { timeoutMs: 2_000, useCache: false });
    await vi.advanceTimersByTimeAsync(2_000);
    const found = await pending;
    expect(found.map((c) => [c.instance, c.role, c.level, c.port, c.addresses, c.fingerprint])).toEqual([
      ['agent A', 'intermediary', 1, 7443, ['10.0.0.1'], FP],
      ['ctl', 'controller', 0, 7000, ['10.0.0.3'], FP],
    ]);
    expect(found[0]).toMatchObject({ host: 'agent-a.local', group: 'g1', ttl: expect.any(Number), seenAt: expect.any(Number) });

    await ia.stop();
    await vi.advanceTimersByTimeAsync(0);
    expect(browser.cachedCandidates('g1').map((c) => c.instance)).toEqual(['ctl']);
    await Promise.all([ctl.stop(), other.stop(), browser.stop()]);
  });

  it('finds a service that was not announced while it listened: query, then answer', async () => {
    const ad = new MdnsAdvertiser(agent, { link: bus.link('10.0.0.1'), logger, random: () => 0 });
    await ad.start();
    await vi.advanceTimersByTimeAsync(5_000);
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    const t0 = Date.now();
    const pending = browser.resolve('g1', { timeoutMs: 5_000, settleMs: 0 });
    await vi.advanceTimersByTimeAsync(50);
    const found = await pending;
    expect(found.map((c) => c.instance)).toEqual(['agent A']);
    expect(Date.now() - t0).toBeLessThanOrEqual(50);
    expect(browser.stats.queries).toBe(1);
    // The cache answers the next time without the network.
    expect(await browser.resolve('g1')).toHaveLength(1);
    expect(browser.stats.queries).toBe(1);
    await Promise.all([ad.stop(), browser.stop()]);
  });

  it('lists what it knows as known answers, so a responder stays silent (RFC 6762 §7.1)', async () => {
    const ad = new MdnsAdvertiser(agent, { link: bus.link('10.0.0.1'), logger });
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    await ad.start();
    await vi.advanceTimersByTimeAsync(5_000);
    const answered = ad.stats.answered;
    const pending = browser.browse('_iolus._tcp', { timeoutMs: 500 });
    await vi.advanceTimersByTimeAsync(500);
    expect((await pending).map((i) => i.instance)).toEqual(['agent A']);
    const query = bus.sent.filter((s) => s.from === '10.0.0.2' && s.message.kind === 'query').at(-1)!.message;
    expect(query.answers.map((r) => r.type)).toEqual(['PTR']);
    expect(ad.stats.answered).toBe(answered);
    await Promise.all([ad.stop(), browser.stop()]);
  });

  it('returns [] when nobody answers within the timeout, re-asking at 1 s, 2 s (RFC 6762 §5.2)', async () => {
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    const pending = browser.resolve('g1', { timeoutMs: 3_500 });
    await vi.advanceTimersByTimeAsync(3_500);
    expect(await pending).toEqual([]);
    const at = bus.sent.filter((s) => s.message.kind === 'query').map((s) => s.at - 1_700_000_000_000);
    expect(at).toEqual([0, 1_000, 3_000]);
    await browser.stop();
  });

  it('rejects with the abort reason when the signal fires', async () => {
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    const ac = new AbortController();
    const pending = browser.browse('_iolus._tcp', { timeoutMs: 10_000, signal: ac.signal });
    const check = expect(pending).rejects.toThrow('enough');
    await vi.advanceTimersByTimeAsync(100);
    ac.abort(new Error('enough'));
    await vi.advanceTimersByTimeAsync(0);
    await check;
    await browser.stop();
  });

  it('follows up on instances that lack records', { timeout: 5_000 }, async () => {
    const browser = new MdnsBrowser({}, { link: bus.link('10.0.0.2'), logger });
    await browser.start();
    const responder = bus.link('10.0.0.9');
    // A minimal responder that answers a browse with the PTR alone, then SRV/TXT/A when asked.
    responder.onMessage((m, from) => {
      if (m.kind !== 'query' || from.own) return;
      const want = m.questions.map((q) => q.type).join(',');
      const name = 'bare._iolus._tcp.local';
      const answers: Packet['answers'] = [];
      if (want.includes('PTR')) answers.push({ name: '_iolus._tcp.local', type: 'PTR', ttl: 120, class: 'IN', data: name });
      if (want.includes('SRV')) answers.push({ name, type: 'SRV', ttl: 120, class: 'IN', flush: true, data: { port: 9, target: 'bare.local' } });
      if (want.includes('TXT'))
        answers.push({ name, type: 'TXT', ttl: 120, class: 'IN', flush: true, data: ['txtvers=1', 'group=g1', 'role=intermediary', 'level=3', `fp=${FP}`] });
      if (want.includes('A')) answers.push({ name: 'bare.local', type: 'A', ttl: 120, class: 'IN', flush: true, data: '10.0.0.9' });
      void responder.multicast({ type: 'response', id: 0, flags: 0x400, questions: [], answers });
    });
    const pending = browser.resolve('g1', { timeoutMs: 2_000, settleMs: 0 });
    await vi.advanceTimersByTimeAsync(100);
    expect((await pending).map((c) => [c.instance, c.level, c.port, c.addresses])).toEqual([['bare', 3, 9, ['10.0.0.9']]]);
    await browser.stop();
  });
});
