/**
 * SAP (RFC 2974) and SDP (RFC 8866): packet round trips and refusals, group descriptions that fit
 * one packet and carry no key, the announcement interval with its jitter and reconsideration
 * (fake timers), deletions, and the listener's session cache.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import { decodeSapPacket, encodeSapPacket, SDP_MIME } from '../../../src/discovery/sap/packet.js';
import { formatGroupDescription, originLine, parseSdp, readGroupDescription, type GroupDescription } from '../../../src/discovery/sap/sdp.js';
import { baseIntervalMs, nextTransmission, sessionTimeoutMs } from '../../../src/discovery/sap/interval.js';
import { SapAnnouncer, type SapSender } from '../../../src/discovery/sap/announcer.js';
import { SapListener } from '../../../src/discovery/sap/listener.js';
import { CodecError } from '../../../src/errors.js';

const FP = '0a'.repeat(32);
const desc = (agents: number, version = '1'): GroupDescription => ({
  group: 'g1', sessionId: '12345', version, origin: '10.0.0.1',
  agents: Array.from({ length: agents }, (_, i) => ({ principal: `i${i}`, role: i === 0 ? 'controller' : 'intermediary', level: i === 0 ? 0 : 1, url: `https://10.0.0.${i + 10}:7443`, fingerprint: FP, ...(i === 1 ? { site: 'site-a' } : {}) })),
});

describe('SAP packets', () => {
  it('round-trips announcements and deletions, IPv4 and IPv6 origins', () => {
    for (const origin of ['10.0.0.1', 'fd00::1']) {
      for (const type of ['announce', 'delete'] as const) {
        const p = { type, msgIdHash: 0xbeef, origin, payloadType: SDP_MIME, payload: 'v=0\r\n' };
        const bytes = encodeSapPacket(p);
        expect(bytes[0]! >> 5).toBe(1);
        expect(decodeSapPacket(bytes)).toEqual(p);
      }
    }
  });

  it('reads a packet without payload type (SAPv1 style) and skips authentication data', () => {
    const sdp = Buffer.from('v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=x\r\n');
    const b = Buffer.concat([Buffer.from([0x20, 1, 0, 7, 10, 0, 0, 1]), Buffer.alloc(4, 0xaa), sdp]);
    expect(decodeSapPacket(b)).toMatchObject({ type: 'announce', msgIdHash: 7, payloadType: SDP_MIME, payload: sdp.toString(), authWords: 1 });
  });

  it('refuses truncated, other versions, encrypted, compressed, bad payload types; our encoder refuses bad input', () => {
    const good = encodeSapPacket({ type: 'announce', msgIdHash: 1, origin: '10.0.0.1', payloadType: SDP_MIME, payload: 'v=0' });
    const bad: Uint8Array[] = [good.slice(0, 5), Uint8Array.from([0x40, ...good.slice(1)]), Uint8Array.from([0x22, ...good.slice(1)]), Uint8Array.from([0x21, ...good.slice(1)]),
      Uint8Array.from([0x20, 0, 0, 1, 10, 0, 0, 1, 0x61, 0x62]), Uint8Array.from([0x20, 9, 0, 1, 10, 0, 0, 1])];
    for (const b of bad) expect(() => decodeSapPacket(b)).toThrow(CodecError);
    for (let i = 0; i < 300; i++) {
      try {
        decodeSapPacket(randomBytes(i % 90));
      } catch (err) {
        expect(err).toBeInstanceOf(CodecError);
      }
    }
    expect(() => encodeSapPacket({ type: 'announce', msgIdHash: 0, origin: '10.0.0.1', payloadType: SDP_MIME, payload: '' })).toThrow(/msgIdHash/);
    expect(() => encodeSapPacket({ type: 'announce', msgIdHash: 1, origin: 'host', payloadType: SDP_MIME, payload: '' })).toThrow(/origin/);
    expect(() => encodeSapPacket({ type: 'announce', msgIdHash: 1, origin: '10.0.0.1', payloadType: 'a\0b', payload: '' })).toThrow(/payload type/);
  });
});

describe('SDP group descriptions', () => {
  it('describes the group and its agents, parses back, carries no key', () => {
    const text = formatGroupDescription(desc(2));
    expect(text.split('\r\n').slice(0, 7)).toEqual(['v=0', 'o=- 12345 1 IN IP4 10.0.0.1', 's=g1', expect.stringMatching(/^i=Iolus secure group g1/), 't=0 0', 'a=tool:iolus-directory', 'a=x-iolus-group:g1']);
    expect(text).toContain('m=application 7443 TCP/TLS iolus\r\nc=IN IP4 10.0.0.10\r\na=setup:passive\r\na=fingerprint:sha-256 0A:0A:');
    const s = parseSdp(text);
    expect(s.keyLines).toBe(0);
    expect(s.media).toHaveLength(2);
    expect(readGroupDescription(s)).toEqual({ group: 'g1', total: 2, agents: [
      { principal: 'i0', role: 'controller', level: 0, url: 'https://10.0.0.10:7443' },
      { principal: 'i1', role: 'intermediary', level: 1, url: 'https://10.0.0.11:7443', site: 'site-a' },
    ] });
    expect(originLine(desc(0))).toBe('o=- 12345 1 IN IP4 10.0.0.1');
  });

  it('cuts agents to fit a budget and says how many there are; refuses fields that would break lines', () => {
    const text = formatGroupDescription(desc(20), 900);
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(900);
    const g = readGroupDescription(parseSdp(text))!;
    expect(g.total).toBe(20);
    expect(g.agents.length).toBeLessThan(20);
    expect(g.agents[0]!.principal).toBe('i0');
    const evil = desc(1);
    evil.agents[0]!.url = 'https://x\r\nk=clear:secret';
    expect(() => formatGroupDescription(evil)).toThrow(CodecError);
    expect(() => formatGroupDescription({ ...desc(1), version: '1 2' })).toThrow(CodecError);
    expect(() => parseSdp('v=0\r\ns=x\r\n')).toThrow(/o= missing/);
    expect(() => parseSdp('hello')).toThrow(CodecError);
  });
});

describe('announcement interval (RFC 2974 §3.1)', () => {
  it('max(300 s, 8·ads·size/limit), offset within ±1/3', () => {
    expect(baseIntervalMs(1, 500)).toBe(300_000);
    expect(baseIntervalMs(1000, 500, 4000)).toBe(1_000_000);
    expect(baseIntervalMs(10, 500, 4000, 1000)).toBe(10_000);
    expect(nextTransmission(0, 300_000, () => 0)).toBe(200_000);
    expect(nextTransmission(0, 300_000, () => 0.999999)).toBeCloseTo(400_000, -1);
    expect(sessionTimeoutMs(300_000)).toBe(3_600_000);
    expect(sessionTimeoutMs(1_000_000)).toBe(10_000_000);
  });
});

class Sink implements SapSender {
  readonly packets: ReturnType<typeof decodeSapPacket>[] = [];
  async send(p: Uint8Array): Promise<void> {
    this.packets.push(decodeSapPacket(p));
  }
  async close(): Promise<void> {}
}

describe('SapAnnouncer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('announces at once, then every interval ± jitter (reconsidered), changes with a deletion of the old version, deletes on stop', async () => {
    const sink = new Sink();
    let r = 0.5;
    const a = new SapAnnouncer({ origin: '10.0.0.1', minIntervalMs: 10_000 }, { sender: sink, random: () => r, now: () => Date.now() });
    const d1 = desc(1);
    a.set('g1', formatGroupDescription(d1), originLine(d1));
    await vi.advanceTimersByTimeAsync(0);
    expect(sink.packets.map((p) => p.type)).toEqual(['announce']);
    a.set('g1', formatGroupDescription(d1), originLine(d1)); // unchanged: nothing
    await vi.advanceTimersByTimeAsync(9_999);
    expect(sink.packets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.packets).toHaveLength(2);
    // The timer was armed for 20 s (offset 0); at 20 s the time is reconsidered with a new offset
    // (+2/3 · 1/3 of the interval here), so the packet waits until 22.67 s.
    r = 0.9;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sink.packets).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2_667);
    expect(sink.packets).toHaveLength(3);
    const first = sink.packets[0]!;
    const d2 = { ...desc(2), version: '2' };
    a.set('g1', formatGroupDescription(d2), originLine(d2));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(sink.packets.slice(3).map((p) => [p.type, p.msgIdHash === first.msgIdHash])).toEqual([['delete', true], ['announce', false]]);
    expect(sink.packets[3]!.payload).toBe(`${originLine(d1)}\r\n`);
    const d3 = { ...desc(1), group: 'g3', sessionId: '7' };
    a.set('g3', formatGroupDescription(d3), originLine(d3));
    await vi.advanceTimersByTimeAsync(0);
    expect(new Set(sink.packets.filter((p) => p.type === 'announce').slice(-2).map((p) => p.msgIdHash)).size).toBe(2);
    await a.stop();
    expect(sink.packets.slice(-2).map((p) => p.type)).toEqual(['delete', 'delete']);
    expect(a.stats).toMatchObject({ announcements: 5, deletions: 3, sendErrors: 0 });
  });

  it('scales the interval with the number and size of announcements', () => {
    const a = new SapAnnouncer({ origin: '10.0.0.1', minIntervalMs: 1, bandwidth: 4000 }, { sender: new Sink() });
    for (let i = 0; i < 50; i++) a.set(`g${i}`, formatGroupDescription({ ...desc(3), group: `g${i}` }), `o=- ${i} 1 IN IP4 10.0.0.1`);
    const size = encodeSapPacket({ type: 'announce', msgIdHash: 1, origin: '10.0.0.1', payloadType: SDP_MIME, payload: formatGroupDescription({ ...desc(3), group: 'g10' }) }).length;
    expect(a.intervalMs).toBeCloseTo((8 * 50 * size) / 4000 * 1000, -3);
    void a.stop({ withdraw: false });
  });
});

describe('SapListener', () => {
  it('keeps sessions by origin, takes newer versions, honours deletions of the version it holds, refuses garbage', () => {
    const l = new SapListener({ timeoutMs: 1000 });
    const pkt = (d: GroupDescription, type: 'announce' | 'delete', hash: number) =>
      encodeSapPacket({ type, msgIdHash: hash, origin: '10.0.0.1', payloadType: SDP_MIME, payload: type === 'announce' ? formatGroupDescription(d) : `${originLine(d)}\r\n` });
    const v1 = desc(1);
    const v2 = { ...desc(2), version: '2' };
    expect(l.receive(pkt(v1, 'announce', 1), '10.0.0.1', 0)?.kind).toBe('new');
    expect(l.receive(pkt(v1, 'announce', 1), '10.0.0.1', 10)).toBeUndefined();
    expect(l.receive(pkt(v2, 'announce', 2), '10.0.0.1', 20)?.kind).toBe('modified');
    expect(l.receive(pkt(v1, 'delete', 1), '10.0.0.1', 30)).toBeUndefined(); // deletes v1, we hold v2
    expect(l.list()[0]!.group!.agents).toHaveLength(2);
    expect(l.receive(pkt(v2, 'delete', 2), '10.0.0.1', 40)?.kind).toBe('deleted');
    expect(l.list()).toEqual([]);
    expect(l.receive(randomBytes(40), '10.0.0.9', 50)?.kind).toBe('refused');
    l.receive(pkt(v1, 'announce', 1), '10.0.0.1', 100);
    expect(l.expire(1101)).toHaveLength(1);
    expect(l.stats.refused).toBe(1);
  });
});
