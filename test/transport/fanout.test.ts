/**
 * Fan-out bookkeeping without sockets: who a datagram came from, where its reflection goes
 * (everyone but the sender), endpoint checks, and the default method-1/method-2 routing.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { checkEndpoint, defaultScope, FanoutTable, normalizeAddress } from '../../src/transport/fanout.js';
import { MessageType } from '../../src/wire/header.js';

describe('FanoutTable', () => {
  it('reflects to every member but the sender', () => {
    const t = new FanoutTable();
    t.add(1, { host: '10.0.0.1', port: 4001 });
    t.add(2, { host: '10.0.0.2', port: 4002 });
    t.add(3, { host: '10.0.0.3', port: 4003 });
    expect(t.memberAt('10.0.0.2', 4002)).toBe(2);
    expect([...t.targets(2)].map((e) => e.port)).toEqual([4001, 4003]);
    expect([...t.targets()].map((e) => e.port)).toEqual([4001, 4002, 4003]);
    expect([...t.targets(99)]).toHaveLength(3);
  });

  it('identifies senders by address and port, IPv4-mapped or not', () => {
    const t = new FanoutTable();
    t.add(1, { host: '10.0.0.1', port: 4001 });
    t.add(2, { host: 'FD00::2', port: 4001 });
    expect(t.memberAt('::ffff:10.0.0.1', 4001)).toBe(1);
    expect(t.memberAt('10.0.0.1', 4002)).toBeUndefined();
    expect(t.memberAt('10.0.0.9', 4001)).toBeUndefined();
    expect(t.memberAt('fd00::2', 4001)).toBe(2);
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
  });

  it('moves a member, hands an endpoint to the later joiner, and forgets removed members', () => {
    const t = new FanoutTable();
    t.add(1, { host: '10.0.0.1', port: 4001 });
    t.add(1, { host: '10.0.0.1', port: 4009 });
    expect(t.memberAt('10.0.0.1', 4001)).toBeUndefined();
    expect(t.memberAt('10.0.0.1', 4009)).toBe(1);
    expect(t.add(2, { host: '10.0.0.1', port: 4009 })).toBe(1);
    expect(t.has(1)).toBe(false);
    expect(t.memberAt('10.0.0.1', 4009)).toBe(2);
    expect(t.remove(2)).toBe(true);
    expect(t.remove(2)).toBe(false);
    expect(t.size).toBe(0);
    expect([...t.targets()]).toEqual([]);
  });
});

describe('checkEndpoint', () => {
  it('accepts unicast IP literals of the socket family', () => {
    expect(checkEndpoint(1, { host: '127.0.0.1', port: 9 }, 4)).toEqual({ host: '127.0.0.1', port: 9 });
    expect(checkEndpoint(1, { host: 'fe80::1%eth0', port: 9 }, 6)).toEqual({ host: 'fe80::1%eth0', port: 9 });
  });
  it.each([
    [undefined, 4, /required/],
    [{ host: 'member.example', port: 9 }, 4, /not an IP address/],
    [{ host: '::1', port: 9 }, 4, /is IPv6, the agent's socket is IPv4/],
    [{ host: '255.255.255.255', port: 9 }, 4, /not a unicast address/],
    [{ host: '239.1.1.1', port: 9 }, 4, /not a unicast address/],
    [{ host: '0.0.0.0', port: 9 }, 4, /not a unicast address/],
    [{ host: '10.0.0.1', port: 0 }, 4, /port: 0 is not a port/],
    [{ host: '10.0.0.1', port: 70_000 }, 4, /not a port/],
  ] as const)('refuses %j', (endpoint, family, why) => {
    expect(() => checkEndpoint(7, endpoint, family)).toThrow(ValidationError);
    expect(() => checkEndpoint(7, endpoint, family)).toThrow(why);
  });
});

describe('defaultScope', () => {
  it('keeps method 2 first hops (DataUp) with the agent and reflects the rest', () => {
    const frame = (type: number) => Uint8Array.of(1, 1, type, 0, 9, 9);
    expect(defaultScope(frame(MessageType.DataUp))).toBe('agent');
    expect(defaultScope(frame(MessageType.DataMethod1))).toBe('subgroup');
    expect(defaultScope(frame(MessageType.JoinKeyUpdate))).toBe('subgroup');
    expect(defaultScope(Uint8Array.of(1, 1))).toBe('subgroup');
  });
});
