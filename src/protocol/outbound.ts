/**
 * What the state machines ask their owner to send. They never touch a socket: the daemon (or
 * a test's in-memory transport) carries these.
 */
import type { JoinRole } from '../wire/control.js';

export type Outbound =
  /** Multicast into the subgroup this agent keys (or, from a Member, into the subgroup it belongs to). */
  | { kind: 'subgroup'; bytes: Uint8Array }
  /** Unicast to the agent of the subgroup (method 2's first hop). */
  | { kind: 'agent'; bytes: Uint8Array }
  /** From an intermediary, as a member of its parent's subgroup: multicast there. */
  | { kind: 'parent-subgroup'; bytes: Uint8Array }
  /** From an intermediary, as a member of its parent's subgroup: unicast to the parent agent. */
  | { kind: 'parent-agent'; bytes: Uint8Array }
  /** An intermediary's request to its parent over the control plane. */
  | { kind: 'parent-control'; request: ParentControl };

export type ParentControl =
  | { op: 'join'; role: JoinRole }
  | { op: 'refresh'; memberId: number }
  | { op: 'leave'; memberId: number }
  | { op: 'catch-up'; memberId: number }
  /** An expulsion made the pending next group key void: ask up the tree for a fresh one. */
  | { op: 'void'; epoch: number };
