/**
 * Addresses, prefixes and the locality order (pure), and the registry's soft state on a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { formatIp, parseCidr, parseIp, sharePrefix } from '../../../src/discovery/directory/prefix.js';
import { rankAgents, SiteMap, tierOf, type Placed } from '../../../src/discovery/directory/locality.js';
import { Registry, type RegistrationInput, type RegistryChange } from '../../../src/discovery/directory/registry.js';
import { FakeClock } from '../../../src/util/clock.js';
import { PolicyError } from '../../../src/errors.js';

describe('prefix', () => {
  it('parses IPv4, IPv6 (with ::, embedded IPv4, zones, brackets) and reads IPv4-mapped IPv6 as IPv4', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, bytes: Uint8Array.from([10, 1, 2, 3]) });
    expect(parseIp('::ffff:10.1.2.3')).toEqual({ family: 4, bytes: Uint8Array.from([10, 1, 2, 3]) });
    expect(formatIp(parseIp('fe80::1%eth0')!)).toBe('fe80::1');
    expect(formatIp(parseIp('[2001:db8::a:0:0:1]')!)).toBe('2001:db8::a:0:0:1');
    expect(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!)).toBe('2001:db8::1:0:0:1');
    expect(formatIp(parseIp('::')!)).toBe('::');
    expect(formatIp(parseIp('64:ff9b::192.0.2.33')!)).toBe('64:ff9b::c000:221');
    for (const bad of ['', 'x', '1.2.3', '256.1.1.1', '1::2::3', 'fe80::g', '10.0.0.1/8']) expect(parseIp(bad), bad).toBeUndefined();
  });

  it('parses prefixes and compares addresses bit by bit', () => {
    const c = parseCidr('10.1.0.0/16')!;
    expect(c.length).toBe(16);
    expect(parseCidr('10.1.2.3')!.length).toBe(32);
    expect(parseCidr('fd00::/8')!.length).toBe(8);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/x', '10/8/1', 'fe80::1%eth0/64']) expect(parseCidr(bad), bad).toBeUndefined();
    expect(sharePrefix(parseIp('10.1.200.1')!, c, 16)).toBe(true);
    expect(sharePrefix(parseIp('10.2.0.1')!, c, 16)).toBe(false);
    expect(sharePrefix(parseIp('10.1.0.129')!, parseIp('10.1.0.1')!, 25)).toBe(false);
    expect(sharePrefix(parseIp('10.1.0.127')!, parseIp('10.1.0.1')!, 25)).toBe(true);
    expect(sharePrefix(parseIp('fd00::1')!, parseIp('10.0.0.1')!, 0)).toBe(false);
  });
});

describe('locality', () => {
  const sites = new SiteMap([{ name: 'a', prefixes: ['10.1.0.0/16'] }, { name: 'a-lab', prefixes: ['10.1.9.0/24'] }, { name: 'b', prefixes: ['10.2.0.0/16', 'fd02::/16'] }]);
  const at = (principal: string, ip: string, level: number, members = 0, site?: string): Placed => ({ principal, level, members, site: site ?? sites.siteOf(ip), address: parseIp(ip) });

  it('finds the site of an address by the longest prefix', () => {
    expect(sites.siteOf('10.1.3.4')).toBe('a');
    expect(sites.siteOf('10.1.9.4')).toBe('a-lab');
    expect(sites.siteOf('fd02::5')).toBe('b');
    expect(sites.siteOf('192.0.2.1')).toBeUndefined();
    expect(() => new SiteMap([{ name: 'x', prefixes: ['nope'] }])).toThrow(/not an address prefix/);
  });

  it('site, then prefix, then elsewhere; deepest first nearby, shallowest first far away; then load; then name', () => {
    const agents = [
      at('ctl', '10.9.0.1', 0), at('i-b', '10.2.0.2', 1), at('i-a', '10.1.0.2', 1, 50), at('i-a-deep', '10.1.0.3', 2, 99),
      at('i-a-light', '10.1.0.4', 1, 2), at('neighbour', '192.0.2.7', 3), at('far', '198.51.100.1', 1),
    ];
    const asker = { site: 'a', address: parseIp('192.0.2.9') };
    expect(rankAgents(agents, asker).map((r) => [r.agent.principal, r.tier])).toEqual([
      ['i-a-deep', 'site'], ['i-a-light', 'site'], ['i-a', 'site'], ['neighbour', 'prefix'], ['ctl', 'elsewhere'], ['far', 'elsewhere'], ['i-b', 'elsewhere'],
    ]);
    expect(tierOf(at('x', 'fd02::9', 1), { site: undefined, address: parseIp('fd02::1') }, { ipv4: 24, ipv6: 64 })).toBe('prefix');
    expect(tierOf(at('x', '10.0.0.1', 1), { site: undefined, address: undefined })).toBe('elsewhere');
  });
});

describe('registry', () => {
  const input = (principal: string, over: Partial<RegistrationInput> = {}): RegistrationInput => ({
    group: 'g1', principal, role: 'intermediary', fingerprint: 'ab'.repeat(32), url: 'https://10.1.0.2:7443', level: 1, members: 0, site: undefined, source: '10.1.0.2', ttlMs: 10_000, ...over,
  });

  it('adds, refreshes, updates, unregisters, expires; says which', () => {
    const clock = new FakeClock();
    const r = new Registry({ maxAgentsPerGroup: 10, maxRegistrations: 100 }, clock);
    const seen: string[] = [];
    r.onChange((c: RegistryChange) => seen.push(c.kind === 'removed' ? `removed:${c.cause}:${c.registration.principal}` : `${c.kind}:${c.registration.principal}`));
    r.upsert(input('a'));
    r.upsert(input('a', { members: 7 }));
    r.upsert(input('a', { level: 2 }));
    r.upsert(input('b', { url: 'https://[fd00::1]:7443' }));
    expect(r.get('g1', 'b')!.address).toEqual(parseIp('fd00::1'));
    expect(r.groupNames()).toEqual(['g1']);
    clock.advance(9_999);
    r.upsert(input('b', { url: 'https://[fd00::1]:7443' }));
    clock.advance(1);
    expect(r.agents('g1').map((x) => x.principal)).toEqual(['b']);
    expect(r.sweep().map((x) => x.principal)).toEqual(['a']);
    expect(r.unregister('g1', 'b')?.principal).toBe('b');
    expect(r.unregister('g1', 'b')).toBeUndefined();
    expect(r.size).toBe(0);
    expect(r.groupNames()).toEqual([]);
    expect(seen).toEqual(['added:a', 'refreshed:a', 'updated:a', 'added:b', 'refreshed:b', 'removed:expired:a', 'removed:unregistered:b']);
  });

  it('an expired registration registering again is new; capacity is enforced per group and in all', () => {
    const clock = new FakeClock();
    const r = new Registry({ maxAgentsPerGroup: 2, maxRegistrations: 3 }, clock);
    r.upsert(input('a'));
    clock.advance(10_000);
    expect(r.upsert(input('a')).kind).toBe('added');
    r.upsert(input('b'));
    expect(() => r.upsert(input('c'))).toThrow(PolicyError);
    r.upsert(input('x', { group: 'g2' }));
    expect(() => r.upsert(input('y', { group: 'g3' }))).toThrow(/limit/);
    expect(r.upsert(input('a', { members: 3 })).kind).toBe('refreshed');
  });
});
