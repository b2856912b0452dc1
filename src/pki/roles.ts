/**
 * Roles a certificate carries (DESIGN.md, vocabulary). `controller` and `intermediary` are
 * agents (paper's GSC and GSI): they also serve the control plane, so their certificates are
 * TLS server certificates too. `controller` is the root agent's own certificate and is never
 * granted by an ACL.
 */
import { z } from 'zod';

export const ROLES = ['member', 'intermediary', 'originator', 'admin', 'controller'] as const;
export type Role = (typeof ROLES)[number];

export const AGENT_ROLES = ['controller', 'intermediary'] as const satisfies readonly Role[];
export type AgentRole = (typeof AGENT_ROLES)[number];

/** Roles an ACL entry may grant. */
export const GRANTABLE_ROLES = ['member', 'intermediary', 'originator', 'admin'] as const satisfies readonly Role[];
export type GrantableRole = (typeof GRANTABLE_ROLES)[number];

export const roleSchema = z.enum(ROLES);
export const grantableRoleSchema = z.enum(GRANTABLE_ROLES);

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isAgentRole(role: Role): role is AgentRole {
  return (AGENT_ROLES as readonly string[]).includes(role);
}
