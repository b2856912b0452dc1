import { describe, expect, it } from 'vitest';
import { RecordCache } from '../../src/discovery/mdns/cache.js';
import { agentCandidates, instancesOf } from '../../src/discovery/mdns/instances.js';
import { zoneRecords, goodbyeRecords, type ServiceSpec } from '../../src/discovery/mdns/zone.js';
import { formatAgentTxt } from '../../src/discovery/mdns/agentTxt.js';
import { encodeTxt } from '../../src/discovery/mdns/txt.js';
import type { ARecord, MdnsRecord } from '../../src/discovery/mdns/record.js';

const T0 = 1_000_000;
const a = (data: string, ttl = 120, flush = true): ARecord => ({ name: 'h.local', type: 'A', ttl, flush, data });

describe('record cache (RFC 6762 §5.2, §10)', () => {
  it('keeps a record for its TTL', () => {
    const c = new RecordCache();
    expect(c.add(a('10.0.0.1', 10), T0)).toBe('added');
    expect(c.lookup('H.LOCAL', 'A', T0 + 9_999)).toHaveLength(1);
    expect(c.lookup('h.local', 'A', T0 + 10_000)).toHaveLength(0);
    expect(c.prune(T0 + 10_000)).toBe(1);
    expect(c.size).toBe(0);
  });

  it('refreshes a record received again', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1', 10), T0);
    expect(c.add(a('10.0.0.1', 10), T0 + 8_000)).toBe('refreshed');
    expect(c.lookup('h.local', 'A', T0 + 15_000)).toHaveLength(1);
    expect(c.size).toBe(1);
  });

  it('hides a record at once on goodbye and drops it one second later (§10.1)', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1'), T0);
    expect(c.add(a('10.0.0.1', 0), T0 + 5_000)).toBe('goodbye');
    expect(c.lookup('h.local', 'A', T0 + 5_000)).toHaveLength(0);
    expect(c.size).toBe(1);
    c.prune(T0 + 5_999);
    expect(c.size).toBe(1);
    c.prune(T0 + 6_000);
    expect(c.size).toBe(0);
    // A goodbye for something we never had is ignored.
    expect(c.add(a('10.0.0.2', 0), T0)).toBe('ignored');
  });

  it('a re-announcement within the goodbye second revives the record', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1'), T0);
    c.add(a('10.0.0.1', 0), T0 + 100);
    c.add(a('10.0.0.1'), T0 + 200);
    expect(c.lookup('h.local', 'A', T0 + 60_000)).toHaveLength(1);
  });

  it('cache-flush invalidates older members of the RRset after one second (§10.2)', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1', 120, false), T0);
    c.add(a('10.0.0.2', 120, true), T0 + 5_000);
    expect(c.lookup('h.local', 'A', T0 + 5_500).map((e) => e.record.data).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(c.lookup('h.local', 'A', T0 + 6_000).map((e) => e.record.data)).toEqual(['10.0.0.2']);
  });

  it('records of one packet (same instant) do not flush each other', () => {
    const c = new RecordCache();
    c.addAll([a('10.0.0.1'), a('10.0.0.2')], T0);
    expect(c.lookup('h.local', 'A', T0 + 2_000)).toHaveLength(2);
    // …nor do records received less than a second apart.
    c.add(a('10.0.0.3'), T0 + 900);
    expect(c.lookup('h.local', 'A', T0 + 5_000)).toHaveLength(3);
  });

  it('lists known answers only with more than half their TTL left (§7.1), with the TTL left', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1', 100), T0);
    expect(c.knownAnswers('h.local', 'A', T0 + 40_000)).toEqual([{ ...a('10.0.0.1', 100), ttl: 60 }]);
    expect(c.knownAnswers('h.local', 'A', T0 + 50_000)).toEqual([]);
  });

  it('reports records past 80% of their lifetime for refresh queries (§5.2)', () => {
    const c = new RecordCache();
    c.add(a('10.0.0.1', 100), T0);
    expect(c.ageing(T0 + 79_000, 0.8)).toHaveLength(0);
    expect(c.ageing(T0 + 80_000, 0.8)).toHaveLength(1);
  });

  it('stays bounded under a flood, evicting what expires soonest, and caps hostile TTLs', () => {
    const c = new RecordCache({ maxEntries: 16, maxTtl: 3600 });
    c.add(a('10.9.9.9', 0xffffffff), T0);
    for (let i = 0; i < 1000; i++) c.add({ ...a(`10.0.${i >> 8}.${i & 255}`, 10 + i), name: `x${i}.local` }, T0);
    expect(c.size).toBe(16);
    expect(c.lookup('h.local', 'A', T0 + 3_599_000)).toHaveLength(1);
    expect(c.lookup('h.local', 'A', T0 + 3_600_000)).toHaveLength(0);
  });
});

const FP = 'ef'.repeat(32);
function spec(instance: string, group: string, level: number, host = `${instance}.local`): ServiceSpec {
  return {
    instance,
    type: '_iolus._tcp',
    host,
    port: 7000 + level,
    txt: formatAgentTxt({ group, role: level === 0 ? 'controller' : 'intermediary', level, fingerprint: FP }),
    ttl: { host: 120, service: 120 },
  };
}
const load = (c: RecordCache, records: MdnsRecord[], now: number, iface = 'eth0') => c.addAll(records, now, iface);

describe('instances and agent candidates', () => {
  it('assembles complete instances and scopes link-local addresses', () => {
    const c = new RecordCache();
    load(c, zoneRecords(spec('ctl', 'g1', 0), { ipv4: ['10.0.0.1'], ipv6: ['fe80::1', '2001:db8::1'] }), T0);
    const view = instancesOf(c, '_iolus._tcp', T0 + 1_000);
    expect(view.incomplete).toEqual([]);
    expect(view.complete).toHaveLength(1);
    expect(view.complete[0]).toMatchObject({
      instance: 'ctl',
      host: 'ctl.local',
      port: 7000,
      addresses: ['10.0.0.1', 'fe80::1%eth0', '2001:db8::1'],
      txt: { txtvers: '1', group: 'g1', role: 'controller', level: '0', fp: FP },
      ttl: 119,
      seenAt: T0,
    });
  });

  it('reports what incomplete instances lack', () => {
    const c = new RecordCache();
    const all = zoneRecords(spec('ia', 'g1', 1), { ipv4: ['10.0.0.2'], ipv6: [] });
    load(c, all.filter((r) => r.type === 'PTR'), T0);
    expect(instancesOf(c, '_iolus._tcp', T0).incomplete).toEqual([
      {
        name: 'ia._iolus._tcp.local',
        missing: [
          { name: 'ia._iolus._tcp.local', type: 'SRV' },
          { name: 'ia._iolus._tcp.local', type: 'TXT' },
        ],
      },
    ]);
    load(c, all.filter((r) => r.type === 'SRV' || r.type === 'TXT'), T0);
    expect(instancesOf(c, '_iolus._tcp', T0).incomplete[0]?.missing).toEqual([
      { name: 'ia.local', type: 'A' },
      { name: 'ia.local', type: 'AAAA' },
    ]);
    load(c, all.filter((r) => r.type === 'A'), T0);
    expect(instancesOf(c, '_iolus._tcp', T0).complete.map((i) => i.instance)).toEqual(['ia']);
  });

  it('filters agents by group and explains rejected TXT records', () => {
    const c = new RecordCache();
    load(c, zoneRecords(spec('ctl', 'g1', 0), { ipv4: ['10.0.0.1'], ipv6: [] }), T0);
    load(c, zoneRecords(spec('ib', 'g1', 1), { ipv4: ['10.0.0.3'], ipv6: [] }), T0);
    load(c, zoneRecords(spec('other', 'g2', 1), { ipv4: ['10.0.0.4'], ipv6: [] }), T0);
    load(c, zoneRecords({ ...spec('rogue', 'g1', 1), txt: encodeTxt([['txtvers', '9'], ['group', 'g1']]) }, { ipv4: ['10.0.0.5'], ipv6: [] }), T0);
    const { candidates, rejected } = agentCandidates(instancesOf(c, '_iolus._tcp', T0).complete, 'g1');
    expect(candidates.map((x) => [x.instance, x.role, x.level, x.port, x.addresses])).toEqual([
      ['ctl', 'controller', 0, 7000, ['10.0.0.1']],
      ['ib', 'intermediary', 1, 7001, ['10.0.0.3']],
    ]);
    expect(rejected).toEqual([{ instance: 'rogue', reason: expect.stringContaining('txtvers') }]);
  });

  it('drops an agent as soon as its goodbye arrives, and everything after the TTL', () => {
    const c = new RecordCache();
    const s = spec('ib', 'g1', 1);
    load(c, zoneRecords(s, { ipv4: ['10.0.0.3'], ipv6: [] }), T0);
    load(c, zoneRecords(spec('ctl', 'g1', 0), { ipv4: ['10.0.0.1'], ipv6: [] }), T0);
    load(c, goodbyeRecords(s), T0 + 10_000);
    expect(agentCandidates(instancesOf(c, '_iolus._tcp', T0 + 10_000).complete, 'g1').candidates.map((x) => x.instance)).toEqual(['ctl']);
    expect(instancesOf(c, '_iolus._tcp', T0 + 120_000).complete).toEqual([]);
  });
});
