/**
 * MdnsTransport against a stand-in for mdns-server that behaves as the real package does
 * (shared/notes/mdns.md; node_modules/mdns-server/index.js): it stores its sockets on the
 * interface entries we pass, drops a failed entry's sockets without closing the send socket,
 * joins IPv4 multicast "on" the multicast address, and emits 'error' for socket trouble.
 * No real socket is opened.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import dnsPacket from 'dns-packet';
import type { NetworkInterfaceInfo } from 'node:os';
import { silentLogger } from '../../src/util/log.js';
import { selectInterfaces, isOnLink, interfaceFor } from '../../src/discovery/mdns/interfaces.js';
import { queryPacket, responsePacket } from '../../src/discovery/mdns/message.js';
import { ValidationError } from '../../src/errors.js';

class FakeSocket extends EventEmitter {
  closed = false;
  memberships: [string, string | undefined][] = [];
  multicastInterface: string | undefined;
  sent: { bytes: Buffer; port: number; address: string }[] = [];
  addMembership(group: string, iface?: string): void {
    this.memberships.push([group, iface]);
  }
  setMulticastInterface(iface: string): void {
    this.multicastInterface = iface;
  }
  send(bytes: Buffer, port: number, address: string, cb: (err: Error | null) => void): void {
    this.sent.push({ bytes, port, address });
    cb(null);
  }
  close(cb?: () => void): void {
    if (this.closed) throw Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });
    this.closed = true;
    queueMicrotask(() => cb?.());
  }
}

interface Entry {
  name: string;
  address: string;
  family: string;
  socketSend?: FakeSocket | null;
  socketRecv?: FakeSocket | null;
  listening?: boolean;
}

/** What each test can tune, and what it can inspect. */
const world = {
  options: undefined as Record<string, unknown> | undefined,
  server: undefined as (EventEmitter & { sentPackets: { packet: Record<string, unknown>; scope: unknown }[] }) | undefined,
  sockets: [] as FakeSocket[],
  /** Entries (name/family) whose receive socket fails. */
  failRecv: new Set<string>(),
};

vi.mock('mdns-server', () => ({
  default: (options: Record<string, unknown>) => {
    world.options = options;
    const server = Object.assign(new EventEmitter(), {
      sentPackets: [] as { packet: Record<string, unknown>; scope: unknown }[],
      initServer() {
        const entries = options.interfaces as Entry[];
        void (async () => {
          let ok = 0;
          for (const e of entries) {
            const send = new FakeSocket();
            world.sockets.push(send);
            e.socketSend = send;
            send.emit('listening');
            const recv = new FakeSocket();
            world.sockets.push(recv);
            e.socketRecv = recv;
            recv.emit('listening');
            if (e.family === 'IPv4') recv.addMembership('224.0.0.251', '224.0.0.251'); // the package's call
            await Promise.resolve();
            if (world.failRecv.has(`${e.name}/${e.family}`)) {
              recv.close();
              server.emit('error', Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE', syscall: 'bind' }));
              e.socketRecv = null; // …and the send socket is dropped without being closed
              e.socketSend = null;
              continue;
            }
            e.listening = true;
            ok++;
          }
          if (ok > 0) server.emit('ready');
          else server.emit('error', new Error('No sockets created.'));
        })();
      },
      respond(packet: Record<string, unknown>, scope: unknown, cb: () => void) {
        dnsPacket.encode(packet as never);
        server.sentPackets.push({ packet: { ...packet, type: 'response' }, scope });
        cb();
      },
      query(packet: Record<string, unknown>, _t: null, scope: unknown, cb: () => void) {
        server.sentPackets.push({ packet: { ...packet, type: 'query' }, scope });
        cb();
      },
      destroy(cb: () => void) {
        for (const e of options.interfaces as Entry[]) {
          e.socketSend?.close();
          e.socketRecv?.close();
        }
        cb();
      },
    });
    world.server = server;
    return server;
  },
}));

const { MdnsTransport } = await import('../../src/discovery/mdns/transport.js');

const nic = (address: string, family: 'IPv4' | 'IPv6', cidr: string, internal = false): NetworkInterfaceInfo =>
  ({ address, family, cidr, internal, netmask: '', mac: '00:00:00:00:00:00', ...(family === 'IPv6' ? { scopeid: 2 } : {}) }) as NetworkInterfaceInfo;
const table = {
  lo: [nic('127.0.0.1', 'IPv4', '127.0.0.1/8', true)],
  eth0: [nic('10.1.2.3', 'IPv4', '10.1.2.3/24'), nic('fe80::1', 'IPv6', 'fe80::1/64'), nic('2001:db8::3', 'IPv6', '2001:db8::3/64')],
  eth1: [nic('192.168.9.1', 'IPv4', '192.168.9.1/24')],
};
const logger = silentLogger();
const make = (init = {}) => new MdnsTransport(init, { logger, networkInterfaces: () => table });

beforeEach(() => {
  world.sockets = [];
  world.failRecv.clear();
});
afterEach(() => vi.restoreAllMocks());

describe('interface selection', () => {
  it('takes every non-loopback interface, one address per family, IPv6 link-local for the sockets', () => {
    const list = selectInterfaces(table, undefined, true);
    expect(list.map((i) => [i.name, i.ipv4, i.ipv6])).toEqual([
      ['eth0', '10.1.2.3', 'fe80::1'],
      ['eth1', '192.168.9.1', undefined],
    ]);
    expect(list[0]?.publish).toEqual({ ipv4: ['10.1.2.3'], ipv6: ['fe80::1', '2001:db8::3'] });
    expect(selectInterfaces(table, ['eth0'], false)[0]?.publish.ipv6).toEqual([]);
  });

  it('refuses loopback and unknown names, naming them', () => {
    expect(() => selectInterfaces(table, ['lo'], true)).toThrow(/'lo'.*loopback/);
    expect(() => selectInterfaces(table, ['eth9'], true)).toThrow(ValidationError);
    expect(() => selectInterfaces({ lo: table.lo }, undefined, true)).toThrow(/no usable interface/);
  });

  it('checks that a source is on the link (RFC 6762 §11) and attributes it to its interface', () => {
    const [eth0, eth1] = selectInterfaces(table, undefined, true);
    expect(isOnLink('10.1.2.77', 'IPv4', eth0!)).toBe(true);
    expect(isOnLink('10.1.3.77', 'IPv4', eth0!)).toBe(false);
    expect(isOnLink('fe80::99', 'IPv6', eth1!)).toBe(true);
    expect(isOnLink('2001:db8::77', 'IPv6', eth0!)).toBe(true);
    expect(isOnLink('2001:db9::77', 'IPv6', eth0!)).toBe(false);
    expect(interfaceFor('192.168.9.5', 'IPv4', [eth0!, eth1!])?.name).toBe('eth1');
    expect(interfaceFor('fe80::5', 'IPv6', [eth0!, eth1!])).toBeUndefined(); // ambiguous
  });
});

describe('MdnsTransport over mdns-server', () => {
  it('configures the package: source port 5353, TTL 255, our own entries, init after listeners', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    expect(world.options).toMatchObject({ srcPort: 5353, reuseAddr: true, ttl: 255, noInit: true });
    expect((world.options!.interfaces as Entry[]).map((e) => [e.name, e.address, e.family])).toEqual([
      ['eth0', '10.1.2.3', 'IPv4'],
      ['eth0', 'fe80::1', 'IPv6'],
    ]);
    expect(t.interfaces.map((i) => i.name)).toEqual(['eth0']);
    await t.stop();
  });

  it('joins IPv4 multicast on the interface address and pins each send socket to its interface', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    const [send4, recv4, send6] = world.sockets;
    expect(recv4!.memberships).toEqual([['224.0.0.251', '10.1.2.3']]);
    expect(send4!.multicastInterface).toBe('10.1.2.3');
    expect(send6!.multicastInterface).toBe('::%eth0');
    await t.stop();
  });

  it('closes the send socket the package leaks when an interface fails, and every other socket on stop', async () => {
    world.failRecv.add('eth1/IPv4');
    const t = make();
    await t.start();
    expect(t.interfaces.map((i) => i.name)).toEqual(['eth0']);
    await t.stop();
    expect(world.sockets).toHaveLength(6);
    expect(world.sockets.filter((s) => !s.closed)).toEqual([]);
  });

  it('rejects start when no interface works, with no socket left open', async () => {
    world.failRecv.add('eth0/IPv4');
    world.failRecv.add('eth0/IPv6');
    const t = make({ interfaces: ['eth0'] });
    await expect(t.start()).rejects.toThrow('No sockets created.');
    expect(world.sockets.filter((s) => !s.closed)).toEqual([]);
  });

  it('survives socket errors after start (an unhandled error event would throw)', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    expect(() => world.server!.emit('error', Object.assign(new Error('send EHOSTUNREACH'), { code: 'EHOSTUNREACH', syscall: 'send' }))).not.toThrow();
    await t.stop();
  });

  it('sends responses with AA set through respond(), scoped to interface and family', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    await t.multicast(responsePacket([{ name: 'h.local', type: 'A', ttl: 120, flush: true, data: '10.1.2.3' }]), { interface: 'eth0', family: 'IPv4' });
    await t.multicast(queryPacket([{ name: '_iolus._tcp.local', type: 'PTR' }]));
    const [r, q4, q6] = world.server!.sentPackets;
    expect(r).toMatchObject({ packet: { type: 'response', flags: 0x400, id: 0 }, scope: { interface: 'eth0', family: 'IPv4' } });
    expect([q4?.scope, q6?.scope]).toEqual([
      { interface: 'eth0', family: 'IPv4' },
      { interface: 'eth0', family: 'IPv6' },
    ]);
    expect(t.stats.sent).toBe(3);
    await t.stop();
  });

  it('sends legacy unicast replies from the 5353 send socket of the right interface and family', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    const to = { address: 'fe80::9', port: 40000, family: 'IPv6' as const, interface: 'eth0', own: false };
    await t.unicast(responsePacket([]), to);
    expect(world.sockets[2]!.sent.map((s) => [s.port, s.address])).toEqual([[40000, 'fe80::9%eth0']]);
    await t.stop();
  });

  it('delivers mDNS messages, counts garbage, ignores responses not from 5353 and sources off the link', async () => {
    const t = make({ interfaces: ['eth0'] });
    await t.start();
    const got: string[] = [];
    t.onMessage((m, from) => got.push(`${m.kind} ${from.address}:${from.port} ${from.interface}${from.own ? ' own' : ''}`));
    const s = world.server!;
    const decode = (p: object) => dnsPacket.decode(dnsPacket.encode(p as never));
    const rinfo = (address: string, port = 5353, family = 'IPv4') => ({ address, port, family, size: 0, interface: 'eth0' });
    s.emit('packet', decode(queryPacket([{ name: 'x.local', type: 'A' }])), rinfo('10.1.2.9'));
    s.emit('packet', decode(responsePacket([])), rinfo('10.1.2.3'));
    s.emit('packet', decode(responsePacket([])), rinfo('10.1.2.9', 40000)); // RFC 6762 §6
    s.emit('packet', decode(responsePacket([])), rinfo('10.9.9.9')); // §11
    s.emit('packet', { type: 'query', opcode: 'UPDATE', rcode: 'NOERROR' }, rinfo('10.1.2.9'));
    s.emit('packet', null, rinfo('10.1.2.9'));
    s.emit('warning', new Error('Cannot decode name (bad pointer)')); // the package's decode failure
    t.onMessage(() => {
      throw new Error('a listener bug');
    });
    expect(() => s.emit('packet', decode(queryPacket([{ name: 'x.local', type: 'A' }])), rinfo('fe80::7', 5353, 'IPv6'))).not.toThrow();
    expect(got).toEqual(['query 10.1.2.9:5353 eth0', 'response 10.1.2.3:5353 eth0 own', 'query fe80::7:5353 eth0']);
    expect(t.stats).toMatchObject({ received: 8, queries: 2, responses: 1, ignored: 2, malformed: 4 });
    await t.stop();
  });

  it('refuses to send when not running', async () => {
    const t = make({ interfaces: ['eth0'] });
    await expect(t.multicast(responsePacket([]))).rejects.toThrow(/not running/);
  });
});
