/**
 * Chooses a subgroup transport by kind: the agent's from its config (the daemon's `transport:`
 * section, parsed with AgentTransportConfig), a member's from the descriptor in its join grant.
 * Nothing is started: the caller calls start() and, for an agent, reads `descriptor` after it.
 */
import { UsageError, ValidationError } from '../errors.js';
import type { Logger } from '../util/log.js';
import type { TransportDescriptor } from '../wire/control.js';
import type { AgentTransport, MemberTransport } from './types.js';
import { AgentTransportConfig, parseTransportConfig, type AgentTransportConfigInput } from './config.js';
import type { InterfaceList } from './interfaces.js';
import { MemoryAgentTransport, MemoryMemberTransport, type MemoryBus } from './memory.js';
import { SseHub, SseMemberTransport, type SseHttpClient } from './sse.js';
import { MulticastAgentTransport, MulticastMemberTransport } from './udpMulticast.js';
import { UnicastAgentTransport, UnicastMemberTransport } from './udpUnicast.js';

export interface AgentTransportDeps {
  logger?: Logger;
  /** The SSE stream's path on the control API, when the config does not give one. */
  ssePath?: string;
  memoryBus?: MemoryBus;
  networkInterfaces?: () => InterfaceList;
}

/**
 * Opens (without starting) the agent side of a subgroup. Throws ValidationError
 * (`transport.config`) with one `transport.<field>: <why>` per problem. For kind 'sse' the
 * result is an SseHub: the control API attaches member streams to it (see sse.ts).
 */
export function openAgentTransport(config: AgentTransportConfigInput, deps: AgentTransportDeps = {}): AgentTransport {
  const c = parseTransportConfig(AgentTransportConfig, config);
  const logger = deps.logger ? { logger: deps.logger } : {};
  switch (c.kind) {
    case 'multicast':
      return new MulticastAgentTransport(c, { ...logger, ...(deps.networkInterfaces ? { networkInterfaces: deps.networkInterfaces } : {}) });
    case 'unicast':
      return new UnicastAgentTransport(c, logger);
    case 'sse': {
      const path = c.path ?? deps.ssePath;
      if (!path) throw new ValidationError('transport.config', 'transport.path: required for sse (or pass deps.ssePath)');
      return new SseHub({ path, heartbeatMs: c.heartbeatMs, maxBufferedBytes: c.maxBufferedBytes }, logger);
    }
    case 'memory':
      return new MemoryAgentTransport({ channel: c.channel }, { ...logger, ...(deps.memoryBus ? { bus: deps.memoryBus } : {}) });
  }
}

export interface MemberTransportDeps {
  logger?: Logger;
  /** Required for 'sse' descriptors: the member's control-plane client. */
  sseClient?: SseHttpClient;
  memoryBus?: MemoryBus;
  /** Multicast: this host's interface toward the group (default: the descriptor's if present here). */
  interface?: string;
  /** Unicast: local address and port to bind (default: any; the route to the agent picks the address). */
  localHost?: string;
  localPort?: number;
  networkInterfaces?: () => InterfaceList;
  /**
   * Unicast: the transport bound before the join (its endpoint went into the JoinRequest);
   * the factory points it at the agent and returns it. Without one, a new one is made.
   */
  unicast?: UnicastMemberTransport;
}

/**
 * Opens (without starting) the member side for the descriptor of a join grant. Unicast fan-out
 * needs the member's endpoint in the JoinRequest, before the grant names the agent's: make a
 * `new UnicastMemberTransport({ towards: <agent's control host> })`, `await bind()`, join with
 * `endpoint()`, then pass it here as `deps.unicast` (close it yourself if the kind differs).
 */
export function openMemberTransport(descriptor: TransportDescriptor, deps: MemberTransportDeps = {}): MemberTransport {
  const logger = deps.logger ? { logger: deps.logger } : {};
  switch (descriptor.kind) {
    case 'multicast':
      return new MulticastMemberTransport(
        { descriptor, ...(deps.interface !== undefined ? { interface: deps.interface } : {}) },
        { ...logger, ...(deps.networkInterfaces ? { networkInterfaces: deps.networkInterfaces } : {}) },
      );
    case 'unicast': {
      if (deps.unicast) {
        deps.unicast.setAgent(descriptor.agentHost, descriptor.agentPort);
        return deps.unicast;
      }
      return new UnicastMemberTransport({
        agentHost: descriptor.agentHost, agentPort: descriptor.agentPort,
        ...(deps.localHost !== undefined ? { localHost: deps.localHost } : {}),
        ...(deps.localPort !== undefined ? { localPort: deps.localPort } : {}),
      }, logger);
    }
    case 'sse':
      if (!deps.sseClient) throw new UsageError('transport.sse-client', 'an sse descriptor needs deps.sseClient (the member\'s control-plane client)');
      return new SseMemberTransport({ path: descriptor.path }, { client: deps.sseClient, ...logger });
    case 'memory':
      return new MemoryMemberTransport({ channel: descriptor.channel }, { ...logger, ...(deps.memoryBus ? { bus: deps.memoryBus } : {}) });
  }
}
