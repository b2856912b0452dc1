/**
 * Multicast without touching a network (real multicast runs between namespaces in
 * integration/transport.test.ts; here nothing may leave the host): interface resolution,
 * descriptor validation on the member side, counters on the receive path, stop before start.
 */
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { resolveInterface, withZone } from '../../src/transport/interfaces.js';
import { MulticastAgentTransport, MulticastMemberTransport } from '../../src/transport/udpMulticast.js';
import type { DatagramSource } from '../../src/transport/types.js';

const logger = silentLogger();

function info(address: string, family: 'IPv4' | 'IPv6'): NetworkInterfaceInfo {
  return { address, family, netmask: '', mac: '00:00:00:00:00:00', internal: false, cidr: null, ...(family === 'IPv6' ? { scopeid: 2 } : {}) } as NetworkInterfaceInfo;
}
const LIST = {
  lo: [info('127.0.0.1', 'IPv4'), info('::1', 'IPv6')],
  eth0: [info('10.9.0.2', 'IPv4'), info('fe80::2', 'IPv6'), info('fd00::2', 'IPv6')],
  wlan0: [info('fe80::3', 'IPv6')],
};

describe('resolveInterface', () => {
  it('gives IPv4 groups an interface address, by name or address', () => {
    expect(resolveInterface('eth0', 4, LIST)).toEqual({ socketInterface: '10.9.0.2', name: 'eth0' });
    expect(resolveInterface('10.9.0.2', 4, LIST)).toEqual({ socketInterface: '10.9.0.2', name: 'eth0' });
    expect(resolveInterface(undefined, 4, LIST)).toBeUndefined();
  });
  it('gives IPv6 groups ::%name, from a name, a zone or an address', () => {
    for (const spec of ['eth0', '%eth0', '::%eth0', 'fe80::2%eth0', 'fd00::2']) {
      expect(resolveInterface(spec, 6, LIST)).toEqual({ socketInterface: '::%eth0', name: 'eth0' });
    }
  });
  it.each([
    ['eth9', 4, /no interface named eth9/],
    ['wlan0', 4, /wlan0 has no IPv4 address/],
    ['10.9.9.9', 4, /no local interface has the address 10\.9\.9\.9/],
    ['fe80::2%eth0', 4, /not an IPv4 address or an interface name/],
    ['10.9.0.2', 6, /IPv4 address, for an IPv6 group/],
    ['fd00::99', 6, /no local interface has the address/],
    ['%eth9', 6, /no interface named eth9/],
    ['junk%eth0', 6, /not an IPv6 address with a zone/],
  ] as const)('refuses %s for IPv%s', (spec, family, why) => {
    expect(() => resolveInterface(spec, family, LIST)).toThrow(ValidationError);
    expect(() => resolveInterface(spec, family, LIST)).toThrow(why);
  });
  it('adds the interface as zone to link-local unicast addresses only', () => {
    const eth0 = { socketInterface: '::%eth0', name: 'eth0' };
    expect(withZone('fe80::1', eth0)).toBe('fe80::1%eth0');
    expect(withZone('fe80::1%wlan0', eth0)).toBe('fe80::1%wlan0');
    expect(withZone('fd00::1', eth0)).toBe('fd00::1');
    expect(withZone('10.0.0.1', eth0)).toBe('10.0.0.1');
    expect(withZone('fe80::1', undefined)).toBe('fe80::1');
  });
});

describe('MulticastAgentTransport (no sockets)', () => {
  it('counts what arrives and drops empty and oversized datagrams by cause', () => {
    const t = new MulticastAgentTransport({ kind: 'multicast', address: '239.7.7.7', port: 5000, agentHost: '10.9.0.2', agentPort: 5001 }, { logger });
    const heard: DatagramSource[] = [];
    t.onDatagram((_, s) => heard.push(s));
    t.receive(new Uint8Array(10), { address: '::ffff:10.9.0.3', port: 4000 });
    t.receive(new Uint8Array(0), { address: '10.9.0.3', port: 4000 });
    t.receive(new Uint8Array(65_001), { address: '10.9.0.3', port: 4000 });
    t.receive(new Uint8Array(65_000), { address: '10.9.0.3', port: 4000 });
    expect(heard).toEqual([{ address: '10.9.0.3', port: 4000 }, { address: '10.9.0.3', port: 4000 }]);
    expect(t.counters.datagramsIn).toBe(4);
    expect(t.counters.bytesIn).toBe(10 + 65_001 + 65_000);
    expect(Object.fromEntries(t.counters.dropped)).toEqual({ empty: 1, oversized: 1 });
  });

  it('refuses a bad config, an unknown interface at start, and sends nothing before start', async () => {
    expect(() => new MulticastAgentTransport({ kind: 'multicast', address: '239.7.7.7', port: 5000, agentHost: '239.1.1.1', agentPort: 5001 } as never)).toThrow(/agentHost/);
    const t = new MulticastAgentTransport({ kind: 'multicast', address: '239.7.7.7', port: 5000, interface: 'eth9', agentHost: '10.9.0.2', agentPort: 5001 }, { logger, networkInterfaces: () => LIST });
    t.multicast(Uint8Array.of(1));
    expect(t.counters.dropped.get('not-running')).toBe(1);
    await expect(t.start()).rejects.toThrow(/no interface named eth9/);
    await t.stop();
    await t.stop();
  });
});

describe('MulticastMemberTransport (no sockets)', () => {
  it('refuses descriptors naming unscoped groups', () => {
    for (const address of ['224.0.0.1', 'ff0e::1', 'ff1e::1', '10.0.0.1']) {
      expect(() => new MulticastMemberTransport({ descriptor: { kind: 'multicast', address, port: 5000, agentHost: '10.9.0.2', agentPort: 5001 } }, { logger })).toThrow(ValidationError);
    }
  });
  it('has no endpoint, and stop() before start() is fine', async () => {
    const t = new MulticastMemberTransport({ descriptor: { kind: 'multicast', address: '239.7.7.7', port: 5000, agentHost: '10.9.0.2', agentPort: 5001 } }, { logger });
    expect(t.endpoint()).toBeUndefined();
    t.sendSubgroup(Uint8Array.of(1));
    expect(t.counters.dropped.get('not-running')).toBe(1);
    await t.stop();
    await expect(t.start()).rejects.toThrow(/cannot start/);
  });
});
