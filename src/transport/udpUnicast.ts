/**
 * UDP unicast fan-out (paper footnote 6), for networks without multicast: the agent keeps the
 * endpoint each member gave at join and sends every subgroup datagram to each of them. A member
 * sends everything to the agent's datagram port; the agent reflects method-1 data to every
 * other member (never back to the sender) and hands every datagram to its handlers.
 *
 * Sources: a datagram from an address:port that is no member's endpoint is dropped
 * (`unknown-source`) unless `acceptUnknownSources`, and then it is delivered but never
 * reflected, so the agent cannot be used to amplify a stranger's traffic.
 */
import { lookup } from 'node:dns/promises';
import type { RemoteInfo, Socket } from 'node:dgram';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import type { TransportDescriptor } from '../wire/control.js';
import { newCounters, type AgentTransport, type DatagramSource, type MemberTransport, type TransportCounters } from './types.js';
import { ipFamily, parseTransportConfig, UnicastConfig, type Family, type UnicastConfigInput } from './config.js';
import { admit, countDrop, DropCause, Handlers, plain, sizeProblem } from './datagram.js';
import { checkEndpoint, defaultScope, FanoutTable, normalizeAddress, type Endpoint, type Scope } from './fanout.js';
import { closeSocket, openSocket, sendTo, type SocketContext } from './udpSocket.js';

/** Receive buffer we ask for (bursts of fan-in; the kernel caps it at rmem_max). */
const RECV_BUFFER = 4 * 1024 * 1024;

export interface UnicastComponents {
  logger?: Logger;
  /** How to route a member's datagram (default: defaultScope, DataUp stays with the agent). */
  scopeOf?: (bytes: Uint8Array) => Scope;
}

type State = 'idle' | 'starting' | 'running' | 'stopped';

export class UnicastAgentTransport implements AgentTransport {
  readonly counters: TransportCounters = newCounters();
  /** Datagrams reflected (each counted once, however many members it went to). */
  reflected = 0;
  private readonly config: UnicastConfig;
  private readonly log: Logger;
  private readonly scopeOf: (bytes: Uint8Array) => Scope;
  private readonly table = new FanoutTable();
  private readonly handlers: Handlers<[Uint8Array, DatagramSource]>;
  private readonly ctx: SocketContext;
  private socket: Socket | undefined;
  private boundPort: number | undefined;
  private state: State = 'idle';
  private stopping: Promise<void> | undefined;

  constructor(init: UnicastConfigInput, components: UnicastComponents = {}) {
    this.config = parseTransportConfig(UnicastConfig, init);
    this.log = components.logger ?? createLogger('transport.unicast');
    this.scopeOf = components.scopeOf ?? defaultScope;
    this.handlers = new Handlers(this.counters, this.log);
    this.ctx = { counters: this.counters, log: this.log };
  }

  get descriptor(): TransportDescriptor {
    const port = this.boundPort ?? this.config.port;
    if (port === 0) throw new UsageError('transport.not-started', 'unicast transport: port 0 is chosen at start(); read the descriptor after it');
    return { kind: 'unicast', agentHost: this.config.host, agentPort: port };
  }

  /** Members with an endpoint. */
  get memberCount(): number {
    return this.table.size;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `unicast transport cannot start from state ${this.state}`);
    this.state = 'starting';
    const family = ipFamily(this.config.host) ?? 4;
    try {
      this.socket = await openSocket({ family, address: this.config.host, port: this.config.port, recvBufferSize: RECV_BUFFER, role: 'agent' }, this.ctx);
    } catch (err) {
      this.state = 'stopped';
      throw err;
    }
    if (this.state !== 'starting') {
      await closeSocket(this.socket); // stopped while binding
      return;
    }
    this.boundPort = this.socket.address().port;
    this.socket.on('message', (msg, rinfo) => this.receive(plain(msg), rinfo));
    this.state = 'running';
    this.log.info({ host: this.config.host, port: this.boundPort }, 'unicast fan-out listening');
  }

  multicast(bytes: Uint8Array): void {
    if (!this.sendable(bytes)) return;
    for (const e of this.table.targets()) sendTo(this.socket!, bytes, e.port, e.host, this.ctx);
  }

  onDatagram(handler: (bytes: Uint8Array, source: DatagramSource) => void): void {
    this.handlers.add(handler);
  }

  /** Throws ValidationError (`transport.endpoint`) when the endpoint is missing or unusable: refuse the join. */
  addMember(memberId: number, endpoint?: { host: string; port: number }): void {
    const e = checkEndpoint(memberId, endpoint, ipFamily(this.config.host) ?? 4);
    const previous = this.table.add(memberId, e);
    if (previous !== undefined && previous !== memberId) this.log.info({ memberId, previous }, 'endpoint taken over from another member');
  }

  removeMember(memberId: number): void {
    this.table.remove(memberId);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      await closeSocket(this.socket);
      this.socket = undefined;
    })();
    return this.stopping;
  }

  /** Exposed for tests: what the socket's 'message' handler does. */
  receive(msg: Uint8Array, rinfo: Pick<RemoteInfo, 'address' | 'port'>): void {
    if (admit(this.counters, msg)) return;
    const memberId = this.table.memberAt(rinfo.address, rinfo.port);
    if (memberId === undefined && !this.config.acceptUnknownSources) {
      countDrop(this.counters, DropCause.UnknownSource);
      return;
    }
    if (memberId !== undefined && this.scopeOf(msg) === 'subgroup' && this.socket) {
      this.reflected++;
      for (const e of this.table.targets(memberId)) sendTo(this.socket, msg, e.port, e.host, this.ctx);
    }
    const source: DatagramSource = { address: normalizeAddress(rinfo.address), port: rinfo.port };
    if (memberId !== undefined) source.memberId = memberId;
    this.handlers.emit(msg, source);
  }

  private sendable(bytes: Uint8Array): boolean {
    if (this.state !== 'running' || !this.socket) {
      countDrop(this.counters, DropCause.NotRunning);
      return false;
    }
    const p = sizeProblem(bytes);
    if (p) {
      countDrop(this.counters, p);
      this.log.warn({ length: bytes.length, cause: p }, 'refusing to send');
      return false;
    }
    return true;
  }
}

export interface UnicastMemberInit {
  /** The agent's datagram endpoint (descriptor.agentHost/agentPort), here or later through setAgent(). */
  agentHost?: string;
  agentPort?: number;
  /** Local address to bind (default: the one the route toward `towards`, or the agent, picks). */
  localHost?: string;
  /** Local port (default 0: any). */
  localPort?: number;
  /**
   * A host the agent is reached through (its control-plane host name or address), for bind()
   * before the join: the endpoint must go in the JoinRequest, and the agent's datagram
   * endpoint only comes back in the grant.
   */
  towards?: string;
}

/**
 * A member of a fan-out subgroup: one UDP socket, bound to a concrete address (so the endpoint
 * it reports is where the agent can reach it, and its source address matches it), connected to
 * the agent once that is known, so only the agent's datagrams come in.
 *
 * Before a join: `await t.bind()` → `t.endpoint()` into the JoinRequest; after the grant:
 * `t.setAgent(agentHost, agentPort)` (the factory does it) and `await t.start()`.
 */
export class UnicastMemberTransport implements MemberTransport {
  readonly counters: TransportCounters = newCounters();
  private readonly log: Logger;
  private readonly handlers: Handlers<[Uint8Array]>;
  private readonly ctx: SocketContext;
  private agent: { host: string; port: number } | undefined;
  private socket: Socket | undefined;
  private binding: Promise<void> | undefined;
  private local: Endpoint | undefined;
  private state: State = 'idle';
  private stopping: Promise<void> | undefined;

  constructor(private readonly init: UnicastMemberInit = {}, components: { logger?: Logger } = {}) {
    this.log = components.logger ?? createLogger('transport.unicast.member');
    this.handlers = new Handlers(this.counters, this.log);
    this.ctx = { counters: this.counters, log: this.log };
    if (init.agentHost !== undefined && init.agentPort !== undefined) this.agent = { host: init.agentHost, port: init.agentPort };
  }

  /** Where the agent's datagrams are (from the join grant's descriptor); before start(). */
  setAgent(host: string, port: number): void {
    if (this.state !== 'idle') throw new UsageError('transport.state', 'unicast member: setAgent() after start()');
    this.agent = { host, port };
  }

  /** Binds the local socket (once); resolves to the endpoint to put in the JoinRequest. */
  async bind(): Promise<Endpoint | undefined> {
    this.binding ??= this.doBind();
    await this.binding;
    return this.endpoint();
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `unicast member cannot start from state ${this.state}`);
    if (!this.agent) throw new UsageError('transport.no-agent', 'unicast member: no agent endpoint (setAgent) to start with');
    this.state = 'starting';
    const agent = this.agent;
    try {
      await this.bind();
      const socket = this.socket!;
      const address = ipFamily(agent.host) ? agent.host : (await resolve(agent.host)).address;
      await new Promise<void>((res, rej) => {
        socket.once('connect', res);
        try {
          socket.connect(agent.port, address);
        } catch (err) {
          rej(err as Error);
        }
      });
      const a = socket.address();
      this.local = { host: a.address, port: a.port };
      socket.on('message', (msg) => {
        if (admit(this.counters, msg)) return;
        this.handlers.emit(plain(msg));
      });
    } catch (err) {
      await closeSocket(this.socket);
      this.socket = undefined;
      this.state = 'stopped';
      throw err;
    }
    if (this.state === 'starting') this.state = 'running';
    else await closeSocket(this.socket);
  }

  sendSubgroup(bytes: Uint8Array): void {
    this.send(bytes);
  }

  sendAgent(bytes: Uint8Array): void {
    this.send(bytes);
  }

  onDatagram(handler: (bytes: Uint8Array) => void): void {
    this.handlers.add(handler);
  }

  endpoint(): { host: string; port: number } | undefined {
    return this.local && { ...this.local };
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopped';
      await this.binding?.catch(() => undefined);
      await closeSocket(this.socket);
      this.socket = undefined;
    })();
    return this.stopping;
  }

  private async doBind(): Promise<void> {
    const towards = this.init.towards ?? this.agent?.host;
    let host = this.init.localHost;
    let family: Family = host ? ipFamily(host) ?? 4 : 4;
    if (!host && towards) {
      const target = ipFamily(towards) ? { address: towards, family: ipFamily(towards)! } : await resolve(towards);
      family = target.family;
      host = await routeSource(target.address, family, this.ctx);
    }
    this.socket = await openSocket({ family, port: this.init.localPort ?? 0, role: 'member', ...(host ? { address: host } : {}) }, this.ctx);
    if (this.state === 'stopped') return closeSocket(this.socket);
    const a = this.socket.address();
    if (host) this.local = { host: a.address, port: a.port };
  }

  private send(bytes: Uint8Array): void {
    if (this.state !== 'running' || !this.socket) return void countDrop(this.counters, DropCause.NotRunning);
    const p = sizeProblem(bytes);
    if (p) return void countDrop(this.counters, p);
    sendTo(this.socket, bytes, 0, undefined, this.ctx);
  }
}

async function resolve(host: string): Promise<{ address: string; family: Family }> {
  const r = await lookup(host);
  return { address: r.address, family: r.family === 6 ? 6 : 4 };
}

/** The local address the kernel's route picks toward `address` (a UDP connect sends nothing). */
async function routeSource(address: string, family: Family, ctx: SocketContext): Promise<string> {
  const probe = await openSocket({ family, role: 'route-probe' }, ctx);
  try {
    await new Promise<void>((res, rej) => {
      probe.once('connect', res);
      probe.once('error', rej);
      probe.connect(9, address);
    });
    return probe.address().address;
  } finally {
    await closeSocket(probe);
  }
}
