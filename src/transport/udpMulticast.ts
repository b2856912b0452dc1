/**
 * UDP IP multicast (DESIGN.md "Planes"; the default where the network has it), IPv4 in
 * 239.0.0.0/8 or IPv6 ff1X::/ff3X:: (config.ts has the rules).
 *
 * Agent: a group socket (bound to group:port with SO_REUSEADDR, joined on the interface)
 * hears method-1 data, its own multicasts included (loopback on: the state machines drop their
 * own echoes); a datagram socket at agentHost:agentPort receives method-2 data and is the
 * source of the agent's multicasts, so members see the agent's datagram endpoint as sender.
 *
 * Member: a group socket (shared port: several members on one host each get every datagram)
 * and an ephemeral send socket for sendSubgroup (to the group) and sendAgent (to the agent).
 *
 * Binding the group socket to the group address (not the wildcard) keeps other groups on the
 * same port out (Linux delivers a wildcard-bound socket every group joined on that port); an
 * IPv6 link-local group gets the interface as zone. If that bind fails, the wildcard is used.
 */
import os from 'node:os';
import type { RemoteInfo, Socket } from 'node:dgram';
import { UsageError, ValidationError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import type { TransportDescriptor } from '../wire/control.js';
import { newCounters, type AgentTransport, type DatagramSource, type MemberTransport, type TransportCounters } from './types.js';
import { ipFamily, ipv6Scope, MulticastConfig, multicastGroupProblem, parseTransportConfig, type Family, type MulticastConfigInput } from './config.js';
import { admit, countDrop, DropCause, Handlers, plain, sizeProblem } from './datagram.js';
import { normalizeAddress } from './fanout.js';
import { resolveInterface, withZone, type InterfaceList, type MulticastInterface } from './interfaces.js';
import { closeSocket, openSocket, sendTo, type SocketContext } from './udpSocket.js';

/** Default IPv4 TTL / IPv6 hop limit: this link only. */
export const DEFAULT_MULTICAST_TTL = 1;
const RECV_BUFFER = 4 * 1024 * 1024;

export type MulticastDescriptor = Extract<TransportDescriptor, { kind: 'multicast' }>;

export interface MulticastComponents {
  logger?: Logger;
  /** os.networkInterfaces, replaceable in tests. */
  networkInterfaces?: () => InterfaceList;
}

type State = 'idle' | 'starting' | 'running' | 'stopped';

interface GroupSpec {
  address: string;
  port: number;
  family: Family;
  ttl: number;
  loopback: boolean;
  iface: MulticastInterface | undefined;
}

/** Opens a socket on the group: bound to group:port (shared), joined on the interface. */
async function openGroupSocket(g: GroupSpec, ctx: SocketContext, role: string): Promise<Socket> {
  const zoned = g.family === 6 && ipv6Scope(g.address) === 'link-local' && g.iface?.name ? `${g.address}%${g.iface.name}` : g.address;
  let socket: Socket;
  try {
    socket = await openSocket({ family: g.family, address: zoned, port: g.port, reuseAddr: true, recvBufferSize: RECV_BUFFER, role }, ctx);
  } catch (err) {
    ctx.log.warn({ err, group: g.address }, 'cannot bind the group address; binding the wildcard address');
    socket = await openSocket({ family: g.family, port: g.port, reuseAddr: true, recvBufferSize: RECV_BUFFER, role }, ctx);
  }
  try {
    socket.addMembership(g.address, g.iface?.socketInterface);
    socket.setMulticastLoopback(g.loopback);
  } catch (err) {
    await closeSocket(socket);
    throw new ValidationError('transport.membership', `cannot join ${g.address}${g.iface ? ` on ${g.iface.name ?? g.iface.socketInterface}` : ''}: ${(err as Error).message} (is there a multicast route?)`, { cause: err });
  }
  return socket;
}

/** Multicast options on a socket that sends to the group. */
function configureSender(socket: Socket, g: GroupSpec): void {
  socket.setMulticastTTL(g.ttl);
  socket.setMulticastLoopback(g.loopback);
  if (g.iface) socket.setMulticastInterface(g.iface.socketInterface);
}

function sourceOf(rinfo: Pick<RemoteInfo, 'address' | 'port'>): DatagramSource {
  return { address: normalizeAddress(rinfo.address), port: rinfo.port };
}

export class MulticastAgentTransport implements AgentTransport {
  readonly counters: TransportCounters = newCounters();
  private readonly config: ReturnType<typeof MulticastConfig.parse>;
  private readonly log: Logger;
  private readonly listInterfaces: () => InterfaceList;
  private readonly handlers: Handlers<[Uint8Array, DatagramSource]>;
  private readonly ctx: SocketContext;
  private group: Socket | undefined;
  private datagram: Socket | undefined;
  /** The socket multicast() sends from: the datagram socket, or the group socket if families differ. */
  private sender: Socket | undefined;
  private spec: GroupSpec | undefined;
  private boundPort: number | undefined;
  private state: State = 'idle';
  private stopping: Promise<void> | undefined;

  constructor(init: MulticastConfigInput, components: MulticastComponents = {}) {
    this.config = parseTransportConfig(MulticastConfig, init);
    this.log = components.logger ?? createLogger('transport.multicast');
    this.listInterfaces = components.networkInterfaces ?? os.networkInterfaces;
    this.handlers = new Handlers(this.counters, this.log);
    this.ctx = { counters: this.counters, log: this.log };
  }

  get descriptor(): TransportDescriptor {
    const c = this.config;
    const agentPort = this.boundPort ?? c.agentPort;
    if (agentPort === 0) throw new UsageError('transport.not-started', 'multicast transport: agentPort 0 is chosen at start(); read the descriptor after it');
    return {
      kind: 'multicast', address: c.address, port: c.port, agentHost: c.agentHost, agentPort,
      ...(c.ttl !== undefined ? { ttl: c.ttl } : {}), ...(c.interface !== undefined ? { interface: c.interface } : {}),
    };
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `multicast transport cannot start from state ${this.state}`);
    this.state = 'starting';
    const c = this.config;
    const family = ipFamily(c.address) ?? 4;
    try {
      const iface = resolveInterface(c.interface, family, this.listInterfaces());
      const spec: GroupSpec = { address: c.address, port: c.port, family, ttl: c.ttl ?? DEFAULT_MULTICAST_TTL, loopback: c.loopback, iface };
      this.spec = spec;
      this.group = await openGroupSocket(spec, this.ctx, 'group');
      const agentFamily = ipFamily(c.agentHost) ?? 4;
      this.datagram = await openSocket({ family: agentFamily, address: withZone(c.agentHost, iface), port: c.agentPort, recvBufferSize: RECV_BUFFER, role: 'agent' }, this.ctx);
      this.sender = agentFamily === family ? this.datagram : this.group;
      configureSender(this.sender, spec);
    } catch (err) {
      await this.closeAll();
      this.state = 'stopped';
      throw err;
    }
    if (this.state !== 'starting') return this.closeAll();
    this.boundPort = this.datagram.address().port;
    this.group.on('message', (msg, rinfo) => this.receive(plain(msg), rinfo));
    this.datagram.on('message', (msg, rinfo) => this.receive(plain(msg), rinfo));
    this.state = 'running';
    this.log.info({ group: c.address, port: c.port, interface: this.spec.iface?.name, agentHost: c.agentHost, agentPort: this.boundPort }, 'multicast subgroup open');
  }

  multicast(bytes: Uint8Array): void {
    if (this.state !== 'running' || !this.sender || !this.spec) return void countDrop(this.counters, DropCause.NotRunning);
    const p = sizeProblem(bytes);
    if (p) return void countDrop(this.counters, p);
    sendTo(this.sender, bytes, this.spec.port, this.spec.address, this.ctx);
  }

  onDatagram(handler: (bytes: Uint8Array, source: DatagramSource) => void): void {
    this.handlers.add(handler);
  }

  /** Multicast needs no membership list. */
  addMember(): void {}

  removeMember(): void {}

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      await this.closeAll();
    })();
    return this.stopping;
  }

  /** Exposed for tests: what both sockets' 'message' handlers do. */
  receive(msg: Uint8Array, rinfo: Pick<RemoteInfo, 'address' | 'port'>): void {
    if (admit(this.counters, msg)) return;
    this.handlers.emit(msg, sourceOf(rinfo));
  }

  private async closeAll(): Promise<void> {
    await Promise.all([closeSocket(this.group), closeSocket(this.datagram)]);
    this.group = this.datagram = this.sender = undefined;
  }
}

export interface MulticastMemberInit {
  descriptor: MulticastDescriptor;
  /** This host's interface toward the group (default: the descriptor's, if it exists here; else the route's). */
  interface?: string;
  /** Hear our own multicasts (default true). */
  loopback?: boolean;
}

export class MulticastMemberTransport implements MemberTransport {
  readonly counters: TransportCounters = newCounters();
  private readonly log: Logger;
  private readonly listInterfaces: () => InterfaceList;
  private readonly handlers: Handlers<[Uint8Array]>;
  private readonly ctx: SocketContext;
  private group: Socket | undefined;
  private sender: Socket | undefined;
  private agentSender: Socket | undefined;
  private spec: GroupSpec | undefined;
  private agentHost: string;
  private state: State = 'idle';
  private stopping: Promise<void> | undefined;

  constructor(private readonly init: MulticastMemberInit, components: MulticastComponents = {}) {
    const problem = multicastGroupProblem(init.descriptor.address);
    if (problem) throw new ValidationError('transport.config', `transport.address: ${problem}`);
    this.log = components.logger ?? createLogger('transport.multicast.member');
    this.listInterfaces = components.networkInterfaces ?? os.networkInterfaces;
    this.handlers = new Handlers(this.counters, this.log);
    this.ctx = { counters: this.counters, log: this.log };
    this.agentHost = init.descriptor.agentHost;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `multicast member cannot start from state ${this.state}`);
    this.state = 'starting';
    const d = this.init.descriptor;
    const family = ipFamily(d.address) ?? 4;
    try {
      const iface = this.chooseInterface(family);
      const spec: GroupSpec = { address: d.address, port: d.port, family, ttl: d.ttl ?? DEFAULT_MULTICAST_TTL, loopback: this.init.loopback ?? true, iface };
      this.spec = spec;
      this.group = await openGroupSocket(spec, this.ctx, 'group');
      this.sender = await openSocket({ family, role: 'sender' }, this.ctx);
      configureSender(this.sender, spec);
      const agentFamily = ipFamily(d.agentHost);
      this.agentHost = withZone(d.agentHost, iface);
      this.agentSender = agentFamily === undefined || agentFamily === family ? this.sender : await openSocket({ family: agentFamily, role: 'agent-sender' }, this.ctx);
    } catch (err) {
      await this.closeAll();
      this.state = 'stopped';
      throw err;
    }
    if (this.state !== 'starting') return this.closeAll();
    this.group.on('message', (msg) => {
      if (admit(this.counters, msg)) return;
      this.handlers.emit(plain(msg));
    });
    this.state = 'running';
  }

  sendSubgroup(bytes: Uint8Array): void {
    if (!this.ready(bytes) || !this.sender || !this.spec) return;
    sendTo(this.sender, bytes, this.spec.port, this.spec.address, this.ctx);
  }

  sendAgent(bytes: Uint8Array): void {
    if (!this.ready(bytes) || !this.agentSender) return;
    sendTo(this.agentSender, bytes, this.init.descriptor.agentPort, this.agentHost, this.ctx);
  }

  onDatagram(handler: (bytes: Uint8Array) => void): void {
    this.handlers.add(handler);
  }

  /** Multicast members are reached through the group, not at an endpoint. */
  endpoint(): undefined {
    return undefined;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      await this.closeAll();
    })();
    return this.stopping;
  }

  private chooseInterface(family: Family): MulticastInterface | undefined {
    const list = this.listInterfaces();
    if (this.init.interface !== undefined) return resolveInterface(this.init.interface, family, list);
    const hint = this.init.descriptor.interface;
    if (hint === undefined) return undefined;
    try {
      return resolveInterface(hint, family, list);
    } catch {
      this.log.info({ interface: hint }, "the agent's interface is not on this host; the multicast route chooses");
      return undefined;
    }
  }

  private ready(bytes: Uint8Array): boolean {
    if (this.state !== 'running') {
      countDrop(this.counters, DropCause.NotRunning);
      return false;
    }
    const p = sizeProblem(bytes);
    if (p) countDrop(this.counters, p);
    return !p;
  }

  private async closeAll(): Promise<void> {
    const sockets = new Set([this.group, this.sender, this.agentSender]);
    await Promise.all([...sockets].map((s) => closeSocket(s)));
    this.group = this.sender = this.agentSender = undefined;
  }
}
