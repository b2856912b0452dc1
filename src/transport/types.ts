/**
 * The subgroup plane behind one interface (DESIGN.md "Planes"): UDP IP multicast, UDP unicast
 * fan-out, and server-sent events over the control plane. An agent opens the agent side of its
 * subgroup's transport; a member (or an intermediary's uplink) opens the member side of its
 * agent's. Transports move opaque datagrams: all protocol checks happen in the state machines.
 */
import type { TransportDescriptor } from '../wire/control.js';

/** Where a datagram came from, as far as the transport can tell. */
export interface DatagramSource {
  address: string;
  port: number;
  /** Set when the transport knows the member (SSE POSTs carry the member's identity). */
  memberId?: number;
}

export interface TransportCounters {
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Datagrams refused by the transport itself (oversized, from nowhere it knows), by cause. */
  dropped: Map<string, number>;
}

/** The agent's side of its subgroup. */
export interface AgentTransport {
  /** What members are told in their join grant. */
  readonly descriptor: TransportDescriptor;
  readonly counters: TransportCounters;
  start(): Promise<void>;
  /** To every member of the subgroup. */
  multicast(bytes: Uint8Array): void;
  /**
   * Every datagram from the subgroup plane: method-1 data heard on the group (for fan-out and
   * SSE: sent to the agent, which has already reflected it to the other members), and
   * method-2 data unicast to the agent.
   */
  onDatagram(handler: (bytes: Uint8Array, source: DatagramSource) => void): void;
  /** Membership as fan-out and SSE need it (multicast ignores it). */
  addMember(memberId: number, endpoint?: { host: string; port: number }): void;
  removeMember(memberId: number): void;
  stop(): Promise<void>;
}

/** A member's side of its agent's subgroup. */
export interface MemberTransport {
  readonly counters: TransportCounters;
  start(): Promise<void>;
  /** Method-1 data to the subgroup (multicast, or to the agent for it to reflect). */
  sendSubgroup(bytes: Uint8Array): void;
  /** Method-2 data to the agent. */
  sendAgent(bytes: Uint8Array): void;
  onDatagram(handler: (bytes: Uint8Array) => void): void;
  /** The local endpoint the agent should send to (unicast fan-out), once started. */
  endpoint(): { host: string; port: number } | undefined;
  stop(): Promise<void>;
}

export function newCounters(): TransportCounters {
  return { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, dropped: new Map() };
}
