/**
 * Control-plane bodies (JSON over mutual TLS; DESIGN.md "Planes"), as zod schemas. The secure
 * channel carries keys in base64: the member key and K' on join (paper §6.2), the current state
 * on catch-up. Every schema is strict: unknown fields are refused, lengths are bounded.
 */
import { z } from 'zod';
import { KGRP2_ANNOUNCEMENT_LENGTH } from './kgrp2Announcement.js';

export const API_VERSION = 'v1';

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
function base64OfLength(n: number, what: string) {
  const chars = 4 * Math.ceil(n / 3);
  return z.string().length(chars, `${what}: expected base64 of ${n} bytes`).regex(B64, `${what}: not base64`)
    .refine((s) => Buffer.from(s, 'base64').length === n, `${what}: expected ${n} bytes`);
}

export const Key32 = base64OfLength(32, 'key');
export const PublicKey32 = base64OfLength(32, 'public key');
export const Kgrp2AnnouncementB64 = base64OfLength(KGRP2_ANNOUNCEMENT_LENGTH, 'KGRP2 announcement');

/** Global group names: DNS-label-like, dot separated, at most 128 characters. */
export const GroupName = z.string().min(1).max(128)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, 'group: lower-case letters, digits, dashes and dots');

export const JoinRole = z.enum(['member', 'intermediary', 'originator']);
export type JoinRole = z.infer<typeof JoinRole>;

const Port = z.number().int().min(1).max(65_535);
const Host = z.string().min(1).max(253).regex(/^[A-Za-z0-9.:%-]+$/, 'host: an address or host name');

/**
 * How a member reaches its subgroup plane; handed over in the join grant. Every kind names
 * the agent's datagram endpoint: where method-2 data goes (and, without multicast, method-1
 * data too, which the agent reflects to the other members).
 */
const AgentDatagram = { agentHost: Host, agentPort: Port };
export const TransportDescriptor = z.discriminatedUnion('kind', [
  /** UDP IP multicast (IPv4 admin-scoped 239/8, or IPv6 ff0X::/16). */
  z.object({ kind: z.literal('multicast'), address: Host, port: Port, ttl: z.number().int().min(0).max(255).optional(), interface: Host.optional(), ...AgentDatagram }).strict(),
  /** Unicast fan-out: the agent sends each datagram to every member's endpoint (paper footnote 6). */
  z.object({ kind: z.literal('unicast'), ...AgentDatagram }).strict(),
  /** Server-sent events on the control plane, for members that get no datagrams at all; they POST theirs. */
  z.object({ kind: z.literal('sse'), path: z.string().max(200) }).strict(),
  /** In-process, for tests. */
  z.object({ kind: z.literal('memory'), channel: z.string().max(200) }).strict(),
]);
export type TransportDescriptor = z.infer<typeof TransportDescriptor>;

export const JoinRequest = z.object({
  group: GroupName,
  role: JoinRole.default('member'),
  /** Where a unicast fan-out transport should send this member's datagrams. */
  endpoint: z.object({ host: Host, port: Port }).strict().optional(),
  /** From an originator: the Ed25519 key its KGRP2 announcements are signed with. */
  originatorKey: PublicKey32.optional(),
}).strict();
export type JoinRequest = z.infer<typeof JoinRequest>;

export const SubgroupState = z.object({
  id: z.number().int().min(1).max(0xffff_ffff),
  epoch: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  key: Key32,
}).strict();
export type SubgroupState = z.infer<typeof SubgroupState>;

export const JoinGrant = z.object({
  version: z.literal(API_VERSION),
  group: GroupName,
  memberId: z.number().int().min(1).max(0xffff_ffff),
  memberKey: Key32,
  /** Absent while a batch window is open: K' then arrives in the batch's key update (or catch-up). */
  subgroup: SubgroupState.extend({ key: Key32.optional() }).strict(),
  agent: z.object({ name: z.string().max(200), publicKey: PublicKey32 }).strict(),
  /** Ed25519 keys allowed to announce KGRP2. */
  originators: z.array(PublicKey32).max(16),
  expiresAt: z.number().int().nonnegative(),
  refreshMs: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
  transport: TransportDescriptor,
  /** The KGRP2 epochs the member is entitled to now (current and next), originator-signed. */
  groupKeys: z.array(Kgrp2AnnouncementB64).max(8),
  /** The group key schedule (for an originator, and for members to know when to expect keys). */
  groupKeyPolicy: z.object({ periodMs: z.number().int().positive(), leadMs: z.number().int().nonnegative(), graceMs: z.number().int().nonnegative(), method: z.union([z.literal(1), z.literal(2)]) }).strict().optional(),
  /** For an intermediary: the policy its parent delegates (paper §6.2), and the end of its entitlement. */
  delegation: z.object({ until: z.number().int().nullable(), acl: z.array(z.unknown()).max(10_000) }).strict().optional(),
}).strict();
export type JoinGrant = z.infer<typeof JoinGrant>;

export const RefreshRequest = z.object({
  memberId: z.number().int().min(1).max(0xffff_ffff),
  /** From an intermediary: how many members its subtree holds (the parent's ledger charges by it). */
  subtree: z.number().int().min(0).max(100_000_000).optional(),
}).strict();
export const RefreshResponse = z.object({ expiresAt: z.number().int().nonnegative() }).strict();
export const LeaveRequest = z.object({ memberId: z.number().int().min(1).max(0xffff_ffff) }).strict();

export const CatchUpResponse = z.object({
  subgroup: SubgroupState,
  groupKeys: z.array(Kgrp2AnnouncementB64).max(8),
  /** The keys allowed to announce KGRP2 now (an originator may have joined since our grant). */
  originators: z.array(PublicKey32).max(16).optional(),
  expiresAt: z.number().int().nonnegative(),
}).strict();
export type CatchUpResponse = z.infer<typeof CatchUpResponse>;
