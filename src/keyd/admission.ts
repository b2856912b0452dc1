/**
 * The agent's access decision (paper §6.1: the GSC is supplied with an ACL; §6.2: the GSA checks
 * its database). The agent only sees this function; the daemon builds it from the ACL in its
 * config, or from the policy its parent delegated.
 */
import type { JoinRole } from '../wire/control.js';

export type Admission =
  | { ok: true; /** End of the entitlement (ms), or null for none. */ until: number | null }
  | { ok: false; reason: string };

export type Admit = (principal: string, role: JoinRole, now: number) => Admission;

/** Admits everyone, for tests and the in-process simulation. */
export const admitAll: Admit = () => ({ ok: true, until: null });
