/**
 * Which held key is good for what at one instant (DESIGN.md, KGRP2; paper §7):
 * - send: the highest epoch whose [notBefore, notAfter) holds now;
 * - live: every key with now < notAfter + grace (the previous one through its grace window,
 *   the next one before it activates), in trial order: the send key first, then newest first;
 * - expired: held but past notAfter + grace (only used to name a refusal).
 * The view stays valid until the next boundary, so the key ring recomputes it only then.
 */
import type { DerivedKey } from '../../client/keyMaterial.js';

export interface EpochView<C> {
  readonly send: C | undefined;
  readonly live: readonly C[];
  readonly expired: readonly C[];
  /** The view holds for now in [validFrom, validUntil). */
  readonly validFrom: number;
  readonly validUntil: number;
}

export function epochView<C extends { readonly key: DerivedKey; readonly epoch: number }>(contexts: readonly C[], now: number): EpochView<C> {
  let validFrom = -Infinity;
  let validUntil = Infinity;
  let send: C | undefined;
  const live: C[] = [];
  const expired: C[] = [];
  for (const c of contexts) {
    const { notBefore, notAfter, graceMs } = c.key;
    for (const b of [notBefore, notAfter, notAfter + graceMs]) {
      if (b <= now) validFrom = Math.max(validFrom, b);
      else validUntil = Math.min(validUntil, b);
    }
    if (notBefore <= now && now < notAfter && (!send || c.epoch > send.epoch)) send = c;
    if (now < notAfter + graceMs) live.push(c);
    else expired.push(c);
  }
  live.sort((a, b) => (a === send ? -1 : b === send ? 1 : b.epoch - a.epoch));
  return { send, live, expired, validFrom, validUntil };
}
