/**
 * The group's access control list (paper §6.2: the GSC is supplied an ACL, and delegates it to
 * intermediaries), with entitlements for metered services (DESIGN.md, Metering):
 *
 *   - principal: "alice" | "site-a.*" | "*"     exact name, or a glob where * matches any run
 *   - roles:     [member, originator, …]         roles this entry grants (never controller)
 *   - until:     ISO 8601 time                   entitlement ends then
 *   - minutes:   budget of member-minutes        from the usage ledger; ends when used up
 *
 * Deciding: the requested role must be the certificate's role; among the entries that match
 * the principal and grant the role, the most specific decides (an exact name beats a glob, a
 * glob with more literal characters beats one with fewer, ties go to the earlier entry). Its
 * entitlement window then applies even if a broader entry would allow: the specific entry is
 * that principal's contract.
 */
import { z } from 'zod';
import type { Identity } from './identity.js';
import { NAME_PATTERN } from './names.js';
import { grantableRoleSchema, type Role } from './roles.js';

const GLOB_PATTERN = /^[A-Za-z0-9._*-]{1,64}$/;

export function isPrincipalPattern(value: string): boolean {
  return value.includes('*') ? GLOB_PATTERN.test(value) : NAME_PATTERN.test(value);
}

export const aclEntrySchema = z.strictObject({
  principal: z.string().refine(isPrincipalPattern, {
    error: 'must be a principal name or a glob with * (e.g. "alice", "site-a.*", "*")',
  }),
  roles: z.array(grantableRoleSchema).min(1, { error: 'must grant at least one role' }),
  until: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time with a zone, e.g. 2026-12-31T23:59:00Z' }).optional(),
  minutes: z.number().int().positive({ error: 'must be a positive whole number of minutes' }).optional(),
});
export const aclSchema = z.array(aclEntrySchema);

export type AclEntry = z.infer<typeof aclEntrySchema>;
export type Acl = readonly AclEntry[];

export type DenyCode = 'acl.no-match' | 'acl.role' | 'acl.ended' | 'acl.role-mismatch';

export type AclDecision =
  | {
      readonly allow: true;
      readonly entry: AclEntry;
      /** Position of `entry` in the ACL. */
      readonly index: number;
      /** When the entitlement ends (from `until`), if it does. */
      readonly until?: Date;
      /** Minutes left of the entry's budget, if it has one. */
      readonly minutesLeft?: number;
    }
  | {
      readonly allow: false;
      readonly code: DenyCode;
      /** For a human: why, naming the principal, the role and the entitlement. */
      readonly reason: string;
      readonly entry?: AclEntry;
    };

/**
 * May `identity` act as `requestedRole` at `now`? `minutesUsed` is what the principal has
 * consumed of a minutes budget (from the usage ledger); as a function it is called only when
 * the deciding entry has a budget (a ledger query saved on every join under a plain entry).
 * Pure, if `minutesUsed` is.
 */
export function decide(
  acl: Acl,
  identity: Pick<Identity, 'principal' | 'role'>,
  requestedRole: Role,
  now: Date,
  minutesUsed: number | (() => number) = 0,
): AclDecision {
  const { principal } = identity;
  if (identity.role !== requestedRole) {
    return deny('acl.role-mismatch', `certificate role mismatch: ${principal}'s certificate carries role ${identity.role}, the request is for ${requestedRole}`);
  }
  const matching = acl.map((entry, index) => ({ entry, index })).filter(({ entry }) => globMatches(entry.principal, principal));
  if (matching.length === 0) return deny('acl.no-match', `no ACL entry matches principal ${principal}`);
  const granting = matching.filter(({ entry }) => (entry.roles as readonly Role[]).includes(requestedRole));
  if (granting.length === 0) {
    const granted = [...new Set(matching.flatMap(({ entry }) => entry.roles))].join(', ');
    return deny('acl.role', `role ${requestedRole} is not permitted for ${principal} (its ACL entries grant ${granted})`);
  }
  const chosen = granting.reduce((best, c) => (specificity(c.entry.principal) > specificity(best.entry.principal) ? c : best));
  const { entry, index } = chosen;

  const until = entry.until === undefined ? undefined : new Date(entry.until);
  if (until && now.getTime() >= until.getTime()) {
    return deny('acl.ended', `entitlement of ${principal} (ACL entry "${entry.principal}") ended at ${until.toISOString()}`, entry);
  }
  const minutesLeft = entry.minutes === undefined ? undefined : entry.minutes - (typeof minutesUsed === 'function' ? minutesUsed() : minutesUsed);
  if (minutesLeft !== undefined && minutesLeft <= 0) {
    return deny('acl.ended', `entitlement of ${principal} (ACL entry "${entry.principal}") ended: its budget of ${entry.minutes} minutes is used up`, entry);
  }
  return {
    allow: true,
    entry,
    index,
    ...(until ? { until } : {}),
    ...(minutesLeft !== undefined ? { minutesLeft } : {}),
  };
}

function deny(code: DenyCode, reason: string, entry?: AclEntry): AclDecision {
  return entry ? { allow: false, code, reason, entry } : { allow: false, code, reason };
}

/** Exact names rank above every glob; globs by their number of literal characters. */
function specificity(pattern: string): number {
  return pattern.includes('*') ? pattern.replaceAll('*', '').length : Number.MAX_SAFE_INTEGER;
}

const compiled = new Map<string, RegExp>();

/** Does `pattern` (a name, or a glob where * matches any run of characters) match `name`? */
export function globMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*')) return pattern === name;
  let re = compiled.get(pattern);
  if (!re) {
    const body = pattern.split('*').map((lit) => lit.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    re = new RegExp(`^${body}$`);
    if (compiled.size > 1024) compiled.clear();
    compiled.set(pattern, re);
  }
  return re.test(name);
}
