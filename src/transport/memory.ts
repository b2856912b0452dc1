/**
 * An in-process subgroup plane, for tests of the daemon's wiring: one agent and any number of
 * members per named channel on a MemoryBus. It behaves like multicast: the agent's multicast()
 * reaches every started member, a member's sendSubgroup() reaches the agent and every other
 * member (not itself: no loopback), sendAgent() the agent alone. Every delivery is a copy and
 * goes through the same size checks and counters as the network transports.
 *
 * Deliveries are queued and run after the current task (setImmediate), in order; with
 * `{ delivery: 'manual' }` they wait for flush(), so a test decides when the network moves.
 */
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../util/log.js';
import type { TransportDescriptor } from '../wire/control.js';
import { newCounters, type AgentTransport, type DatagramSource, type MemberTransport, type TransportCounters } from './types.js';
import { admit, countDrop, countOut, DropCause, Handlers, sizeProblem } from './datagram.js';

interface Channel {
  agent: MemoryAgentTransport | undefined;
  members: Set<MemoryMemberTransport>;
}

export interface MemoryBusOptions {
  /** 'async' (default): deliveries run on their own after the current task; 'manual': on flush(). */
  delivery?: 'async' | 'manual';
  /** Bound on one drain, so a forwarding loop fails loudly instead of spinning (default 10 M). */
  maxDeliveriesPerDrain?: number;
}

export class MemoryBus {
  private readonly channels = new Map<string, Channel>();
  private queue: (() => void)[] = [];
  private scheduled = false;
  private readonly manual: boolean;
  private readonly maxPerDrain: number;
  delivered = 0;

  constructor(options: MemoryBusOptions = {}) {
    this.manual = options.delivery === 'manual';
    this.maxPerDrain = options.maxDeliveriesPerDrain ?? 10_000_000;
  }

  /** @internal */
  channel(name: string): Channel {
    let c = this.channels.get(name);
    if (!c) this.channels.set(name, (c = { agent: undefined, members: new Set() }));
    return c;
  }

  /** @internal */
  enqueue(delivery: () => void): void {
    this.queue.push(delivery);
    if (!this.manual && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Runs queued deliveries (and those they cause) until none is left; returns how many ran. */
  flush(): number {
    let n = 0;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const d of batch) {
        if (++n > this.maxPerDrain) throw new UsageError('transport.memory-loop', `memory bus: more than ${this.maxPerDrain} deliveries in one drain (a forwarding loop?)`);
        d();
      }
    }
    this.delivered += n;
    return n;
  }

  /** Resolves once nothing is queued (async delivery). */
  async settled(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled) await new Promise((r) => setImmediate(r));
  }
}

/** The bus the factory uses when none is given. */
export const defaultMemoryBus = new MemoryBus();

export interface MemoryComponents {
  bus?: MemoryBus;
  logger?: Logger;
}

type State = 'idle' | 'running' | 'stopped';

export class MemoryAgentTransport implements AgentTransport {
  readonly counters: TransportCounters = newCounters();
  readonly descriptor: TransportDescriptor;
  private readonly bus: MemoryBus;
  private readonly handlers: Handlers<[Uint8Array, DatagramSource]>;
  private state: State = 'idle';

  constructor(private readonly init: { channel: string }, components: MemoryComponents = {}) {
    this.descriptor = { kind: 'memory', channel: init.channel };
    this.bus = components.bus ?? defaultMemoryBus;
    this.handlers = new Handlers(this.counters, components.logger ?? createLogger('transport.memory'));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `memory transport cannot start from state ${this.state}`);
    const c = this.bus.channel(this.init.channel);
    if (c.agent) throw new UsageError('transport.memory-busy', `memory channel ${this.init.channel} already has an agent`);
    c.agent = this;
    this.state = 'running';
  }

  multicast(bytes: Uint8Array): void {
    if (!sendable(this.state, this.counters, bytes)) return;
    for (const m of this.bus.channel(this.init.channel).members) {
      countOut(this.counters, bytes);
      const copy = bytes.slice();
      this.bus.enqueue(() => m.deliver(copy));
    }
  }

  onDatagram(handler: (bytes: Uint8Array, source: DatagramSource) => void): void {
    this.handlers.add(handler);
  }

  addMember(): void {}

  removeMember(): void {}

  async stop(): Promise<void> {
    if (this.state === 'running') {
      const c = this.bus.channel(this.init.channel);
      if (c.agent === this) c.agent = undefined;
    }
    this.state = 'stopped';
  }

  /** @internal */
  deliver(bytes: Uint8Array, source: DatagramSource): void {
    if (this.state !== 'running' || admit(this.counters, bytes)) return;
    this.handlers.emit(bytes, source);
  }
}

let nextMemberPort = 1;

export class MemoryMemberTransport implements MemberTransport {
  readonly counters: TransportCounters = newCounters();
  /** Stands in for a source port in the agent's DatagramSource. */
  readonly port = nextMemberPort++;
  private readonly bus: MemoryBus;
  private readonly handlers: Handlers<[Uint8Array]>;
  private state: State = 'idle';

  constructor(private readonly init: { channel: string }, components: MemoryComponents = {}) {
    this.bus = components.bus ?? defaultMemoryBus;
    this.handlers = new Handlers(this.counters, components.logger ?? createLogger('transport.memory.member'));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('transport.state', `memory member cannot start from state ${this.state}`);
    this.bus.channel(this.init.channel).members.add(this);
    this.state = 'running';
  }

  sendSubgroup(bytes: Uint8Array): void {
    if (!sendable(this.state, this.counters, bytes)) return;
    const c = this.bus.channel(this.init.channel);
    for (const m of c.members) {
      if (m === this) continue;
      countOut(this.counters, bytes);
      const copy = bytes.slice();
      this.bus.enqueue(() => m.deliver(copy));
    }
    this.toAgent(c, bytes);
  }

  sendAgent(bytes: Uint8Array): void {
    if (!sendable(this.state, this.counters, bytes)) return;
    this.toAgent(this.bus.channel(this.init.channel), bytes);
  }

  onDatagram(handler: (bytes: Uint8Array) => void): void {
    this.handlers.add(handler);
  }

  endpoint(): undefined {
    return undefined;
  }

  async stop(): Promise<void> {
    this.bus.channel(this.init.channel).members.delete(this);
    this.state = 'stopped';
  }

  /** @internal */
  deliver(bytes: Uint8Array): void {
    if (this.state !== 'running' || admit(this.counters, bytes)) return;
    this.handlers.emit(bytes);
  }

  private toAgent(c: Channel, bytes: Uint8Array): void {
    const agent = c.agent;
    if (!agent) return;
    countOut(this.counters, bytes);
    const copy = bytes.slice();
    const source: DatagramSource = { address: 'memory', port: this.port };
    this.bus.enqueue(() => agent.deliver(copy, source));
  }
}

function sendable(state: State, counters: TransportCounters, bytes: Uint8Array): boolean {
  if (state !== 'running') {
    countDrop(counters, DropCause.NotRunning);
    return false;
  }
  const p = sizeProblem(bytes);
  if (p) countDrop(counters, p);
  return !p;
}
