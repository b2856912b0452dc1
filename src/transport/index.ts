/**
 * The subgroup plane (DESIGN.md "Planes"): one interface (types.ts), four transports, a factory.
 *
 *   openAgentTransport(config, deps)     multicast | unicast (fan-out) | sse (SseHub) | memory
 *   openMemberTransport(descriptor, deps)
 */
export type { AgentTransport, DatagramSource, MemberTransport, TransportCounters } from './types.js';
export { newCounters } from './types.js';
export { openAgentTransport, openMemberTransport, type AgentTransportDeps, type MemberTransportDeps } from './factory.js';
export {
  AgentTransportConfig, MulticastConfig, UnicastConfig, SseConfig, MemoryConfig, parseTransportConfig, multicastGroupProblem,
  type AgentTransportConfigInput,
} from './config.js';
export { DropCause, snapshot, totalDropped } from './datagram.js';
export { checkEndpoint, defaultScope, type Endpoint, type Scope } from './fanout.js';
export { MulticastAgentTransport, MulticastMemberTransport, DEFAULT_MULTICAST_TTL, type MulticastDescriptor } from './udpMulticast.js';
export { UnicastAgentTransport, UnicastMemberTransport, type UnicastMemberInit } from './udpUnicast.js';
export {
  SseHub, SseMemberTransport, defaultPostPath,
  type SseHttpClient, type SseResponse, type SseHubInit, type SseMemberInit, type ReceiveOptions, type ReceiveResult,
} from './sse.js';
export { MemoryBus, MemoryAgentTransport, MemoryMemberTransport, defaultMemoryBus } from './memory.js';
