/**
 * MdnsTransport: the only code that knows mdns-server. It sends and receives mDNS messages on
 * chosen interfaces and hides the package's defects (shared/notes/mdns.md):
 *
 * - source port: send sockets bind 5353, or avahi drops our answers (RFC 6762 §6, §11);
 * - authoritative bit: responses always carry AA (RFC 6762 §18.4), see message.ts;
 * - interface choice: we hand it one entry per interface and family (it would open one socket
 *   pair per address, and fail on the second IPv6 one); IPv4 membership is joined on the
 *   interface's own address, not the multicast address the package passes (which fails, then
 *   falls back to "whatever the multicast route says"); each send socket's multicast interface
 *   is set explicitly; loopback is refused (the package cannot use it);
 * - sockets: every socket it creates is recorded as it is assigned, so the send socket it leaks
 *   when an interface fails, and sockets created after destroy(), are closed by stop();
 * - errors: an 'error' listener is always installed (an unhandled one would throw), decode
 *   failures are counted, never thrown; legacy unicast replies (RFC 6762 §6.7) go out through
 *   the recorded send socket, which the package cannot do.
 */
import os from 'node:os';
import type { Socket } from 'node:dgram';
import createMdnsServer from 'mdns-server';
import dnsPacket, { type Packet } from 'dns-packet';
import type { Logger } from '../../util/log.js';
import { createLogger } from '../../util/log.js';
import { InternalError, UsageError } from '../../errors.js';
import { parseConfig, TransportConfig, type TransportConfigInput } from './config.js';
import { readMessage, type MdnsMessage } from './message.js';
import { interfaceFor, isOnLink, isOwnAddress, selectInterfaces, type Family, type MdnsInterface } from './interfaces.js';

export const MDNS_PORT = 5353;

export interface MdnsSource {
  address: string;
  port: number;
  family: Family;
  /** Interface it arrived on. */
  interface: string;
  /** Sent by this host (multicast loopback). */
  own: boolean;
}

export type MessageListener = (message: MdnsMessage, from: MdnsSource) => void;

/** Multicast on one interface and family, or (no scope) on every interface and family. */
export interface SendScope {
  interface: string;
  family?: Family;
}

/** What the advertiser and browser need from a transport (a fake implements it in unit tests). */
export interface MdnsLink {
  readonly interfaces: readonly MdnsInterface[];
  onMessage(listener: MessageListener): () => void;
  multicast(packet: Packet, scope?: SendScope): Promise<void>;
  /** A unicast reply to a legacy querier (RFC 6762 §6.7). */
  unicast(packet: Packet, to: MdnsSource): Promise<void>;
}

export interface TransportStats {
  received: number;
  queries: number;
  responses: number;
  /** Packets that did not decode, were not mDNS, or whose handling threw. */
  malformed: number;
  /** Malformed records inside otherwise good packets. */
  malformedRecords: number;
  /** Responses from a port other than 5353 (RFC 6762 §6) or sources off the link (§11). */
  ignored: number;
  sent: number;
  sendErrors: number;
}

export interface TransportComponents {
  logger?: Logger;
  /** os.networkInterfaces, replaceable in tests. */
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

type Entry = createMdnsServer.InterfaceEntry;
type PacketInfo = createMdnsServer.PacketInfo;

export class MdnsTransport implements MdnsLink {
  private readonly config: ReturnType<typeof TransportConfig.parse>;
  private readonly log: Logger;
  private readonly listInterfaces: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
  private server: createMdnsServer.Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Send socket per `${interface}/${family}`, for unicast replies. */
  private readonly sendSockets = new Map<string, Socket>();
  private readonly listeners = new Set<MessageListener>();
  private active: MdnsInterface[] = [];
  private state: 'idle' | 'starting' | 'running' | 'stopped' = 'idle';
  readonly stats: TransportStats = { received: 0, queries: 0, responses: 0, malformed: 0, malformedRecords: 0, ignored: 0, sent: 0, sendErrors: 0 };

  constructor(init: TransportConfigInput = {}, components: TransportComponents = {}) {
    this.config = parseConfig(TransportConfig, init, 'mdns.transport');
    this.log = components.logger ?? createLogger('mdns.transport');
    this.listInterfaces = components.networkInterfaces ?? os.networkInterfaces;
  }

  get interfaces(): readonly MdnsInterface[] {
    return this.active;
  }

  get running(): boolean {
    return this.state === 'running';
  }

  onMessage(listener: MessageListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('mdns.state', `transport cannot start from state ${this.state}`);
    this.state = 'starting';
    const chosen = selectInterfaces(this.listInterfaces(), this.config.interfaces, this.config.ipv6);
    const entries: { iface: MdnsInterface; entry: Entry }[] = [];
    for (const iface of chosen) {
      if (iface.ipv4) entries.push({ iface, entry: this.entry(iface.name, iface.ipv4, 'IPv4') });
      if (iface.ipv6) entries.push({ iface, entry: this.entry(iface.name, iface.ipv6, 'IPv6') });
    }
    const server = createMdnsServer({
      interfaces: entries.map((e) => e.entry),
      srcPort: MDNS_PORT, // RFC 6762 §6: responses must come from 5353
      reuseAddr: true, // share 5353 with other responders on the host (avahi)
      loopback: true, // same-host queriers must see our answers
      ttl: 255, // RFC 6762 §11: IP TTL / hop limit 255
      noInit: true, // so that our 'error' listener is in place before any socket exists
    });
    this.server = server;
    server.on('packet', (decoded: unknown, rinfo: PacketInfo) => this.receive(decoded, rinfo));
    server.on('warning', (err: Error) => this.warning(err));
    try {
      await this.waitReady(server);
    } catch (err) {
      await this.stop();
      throw err;
    }
    // The package marks the entries whose sockets came up with `listening`; keep those families.
    const works = (iface: MdnsInterface, family: Family) => entries.some((e) => e.iface === iface && e.entry.family === family && e.entry.listening === true);
    for (const e of entries) {
      if (e.entry.listening !== true) this.log.warn({ interface: e.entry.name, family: e.entry.family }, 'mDNS sockets failed on this interface and family; skipping it');
    }
    this.active = chosen
      .filter((iface) => works(iface, 'IPv4') || works(iface, 'IPv6'))
      .map((iface) => ({ ...iface, ipv4: works(iface, 'IPv4') ? iface.ipv4 : undefined, ipv6: works(iface, 'IPv6') ? iface.ipv6 : undefined }));
    this.state = 'running';
    this.log.debug({ interfaces: this.active.map((i) => i.name) }, 'mDNS transport running');
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.destroy(() => resolve()));
    // destroy() closes only the sockets still attached to an interface entry; close the rest.
    await Promise.all([...this.sockets].map((s) => closeSocket(s)));
    this.sockets.clear();
    this.sendSockets.clear();
    this.listeners.clear();
  }

  async multicast(packet: Packet, scope?: SendScope): Promise<void> {
    const server = this.requireServer();
    const targets: SendScope[] = scope ? [scope] : this.active.map((i) => ({ interface: i.name }));
    for (const t of targets) {
      const families: Family[] = t.family ? [t.family] : ['IPv4', 'IPv6'];
      for (const family of families) {
        try {
          // The package sends to every entry whose name and family match the scope.
          await new Promise<void>((resolve) => {
            if (packet.type === 'response') server.respond(packet, { interface: t.interface, family }, resolve);
            else server.query(packet, null, { interface: t.interface, family }, resolve);
          });
          this.stats.sent++;
        } catch (err) {
          this.stats.sendErrors++;
          this.log.warn({ err, interface: t.interface, family }, 'mDNS send failed');
        }
      }
    }
  }

  async unicast(packet: Packet, to: MdnsSource): Promise<void> {
    this.requireServer();
    const socket = this.sendSockets.get(`${to.interface}/${to.family}`);
    if (!socket) throw new InternalError('mdns.noSocket', `no send socket on ${to.interface}/${to.family}`);
    const bytes = dnsPacket.encode(packet);
    const address = to.family === 'IPv6' && /^fe[89ab]/i.test(to.address) && !to.address.includes('%') ? `${to.address}%${to.interface}` : to.address;
    await new Promise<void>((resolve) => {
      socket.send(bytes, to.port, address, (err) => {
        if (err) {
          this.stats.sendErrors++;
          this.log.debug({ err, to: address }, 'mDNS unicast reply failed');
        } else this.stats.sent++;
        resolve();
      });
    });
  }

  /**
   * An interface entry for the package, with accessors that record every socket it stores there
   * (including the ones it later drops on failure) and fix the interface it uses.
   */
  private entry(name: string, address: string, family: Family): Entry {
    const record = (kind: 'send' | 'recv', s: Socket | null | undefined) => {
      if (!s || this.sockets.has(s)) return;
      this.sockets.add(s);
      if (this.state === 'stopped') {
        void closeSocket(s); // created after stop(): close at once
        return;
      }
      if (kind === 'recv' && family === 'IPv4') {
        // The package joins 224.0.0.251 "on interface 224.0.0.251" (not a local address: it
        // fails) and then on 0.0.0.0 (the multicast route's interface). Join on ours instead.
        const join = s.addMembership.bind(s);
        s.addMembership = (group: string) => join(group, address);
      }
      if (kind === 'send') {
        s.once('listening', () => {
          try {
            s.setMulticastInterface(family === 'IPv4' ? address : `::%${name}`);
            this.sendSockets.set(`${name}/${family}`, s);
          } catch (err) {
            this.log.debug({ err, interface: name }, 'setMulticastInterface failed');
          }
        });
      }
    };
    let send: Socket | null | undefined;
    let recv: Socket | null | undefined;
    const e = { name, address, family } as Entry;
    Object.defineProperty(e, 'socketSend', {
      get: () => send,
      set: (s: Socket | null) => {
        record('send', s);
        send = s;
      },
      enumerable: true,
    });
    Object.defineProperty(e, 'socketRecv', {
      get: () => recv,
      set: (s: Socket | null) => {
        record('recv', s);
        recv = s;
      },
      enumerable: true,
    });
    return e;
  }

  private waitReady(server: createMdnsServer.Server): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new InternalError('mdns.start', `mDNS sockets not ready after ${this.config.startTimeoutMs} ms`)), this.config.startTimeoutMs);
      const onError = (err: Error) => {
        // Errors of one interface arrive here too while the others still come up; only the
        // package's final verdicts end the start.
        if (err.message === 'No sockets created.' || err.message === 'No available interfaces.') finish(err);
        else this.warning(err);
      };
      const finish = (err?: Error) => {
        clearTimeout(timer);
        server.off('ready', onReady);
        server.off('error', onError);
        server.on('error', (e: Error) => this.warning(e)); // never leave 'error' unhandled
        if (err) reject(err);
        else resolve();
      };
      const onReady = () => finish();
      server.on('ready', onReady);
      server.on('error', onError);
      server.initServer();
    });
  }

  private warning(err: Error & { syscall?: string; code?: string }): void {
    if (err.syscall === undefined && !/^E[A-Z]+$/.test(err.code ?? '')) {
      // dns-packet could not decode a datagram: garbage from the network.
      this.stats.received++;
      this.stats.malformed++;
      this.log.debug({ err: err.message }, 'undecodable mDNS packet');
      return;
    }
    this.log.warn({ err }, 'mDNS socket error');
  }

  private receive(decoded: unknown, rinfo: PacketInfo): void {
    this.stats.received++;
    try {
      const family: Family = rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4';
      // With several interfaces, every receive socket sees every group member's packets
      // (IP_MULTICAST_ALL): attribute by source prefix when that is unambiguous.
      const iface = interfaceFor(rinfo.address, family, this.active) ?? this.active.find((i) => i.name === rinfo.interface);
      if (!iface || !isOnLink(rinfo.address, family, iface)) {
        this.stats.ignored++; // RFC 6762 §11: not from the local link
        return;
      }
      const message = readMessage(decoded);
      this.stats.malformedRecords += message.malformed;
      if (message.kind === 'response' && rinfo.port !== MDNS_PORT) {
        this.stats.ignored++; // RFC 6762 §6: responses must come from port 5353
        return;
      }
      if (message.kind === 'query') this.stats.queries++;
      else this.stats.responses++;
      const from: MdnsSource = { address: rinfo.address, port: rinfo.port, family, interface: iface.name, own: isOwnAddress(rinfo.address, this.active) };
      for (const l of this.listeners) l(message, from);
    } catch (err) {
      this.stats.malformed++;
      this.log.debug({ err, from: rinfo.address }, 'mDNS packet refused');
    }
  }

  private requireServer(): createMdnsServer.Server {
    if (this.state !== 'running' || !this.server) throw new UsageError('mdns.state', 'mDNS transport is not running');
    return this.server;
  }
}

function closeSocket(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}
