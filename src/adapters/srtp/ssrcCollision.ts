/**
 * SSRC collisions among senders sharing a group key. Two senders that protect with one
 * master key and one SSRC produce packets with the same keystream for the same index: a
 * two-time pad (RFC 3711 §9.1). Distinct SSRCs make the keystreams distinct, so every
 * sender must notice when another source uses its SSRC.
 *
 * Two ways to notice, both on packets that authenticated under a group key:
 * - `local`: a packet carries an SSRC we protect with, and it is not one of our own packets
 *   looping back (cryptoContext.protectedByUs compares the tag);
 * - `remote`: one SSRC arrives from two transport addresses while the first is still
 *   active (RFC 3550 §8.2).
 * Reports are rate-limited per SSRC; every colliding packet is counted.
 */

export interface SsrcCollision {
  readonly ssrc: number;
  readonly kind: 'local' | 'remote';
  /** Transport address of the colliding packet, when the caller gave one. */
  readonly source?: string;
  /** For `remote`: the address that used the SSRC first. */
  readonly firstSource?: string;
}

export interface SsrcCollisionOptions {
  /** A source is still active if heard within this time (ms). */
  readonly sourceTimeoutMs: number;
  /** At most one report per SSRC per this time (ms). */
  readonly reportIntervalMs: number;
}

/** Remote SSRCs remembered; beyond this the least recently inserted is forgotten. */
const MAX_SOURCES = 4096;

export class SsrcCollisionDetector {
  private readonly sources = new Map<number, { address: string; lastSeen: number }>();
  private readonly lastReport = new Map<number, number>();

  constructor(private readonly options: SsrcCollisionOptions) {}

  /**
   * Called for each authenticated incoming packet. Returns the collision to count, with
   * `report` true when it should be raised as an event (first one in the interval).
   */
  observe(
    ssrc: number,
    source: string | undefined,
    ourSsrc: boolean,
    now: number,
  ): { collision: SsrcCollision; report: boolean } | undefined {
    let collision: SsrcCollision | undefined;
    if (ourSsrc) {
      collision = { ssrc, kind: 'local', ...(source !== undefined ? { source } : {}) };
    } else if (source !== undefined) {
      const seen = this.sources.get(ssrc);
      if (!seen || seen.address === source || now - seen.lastSeen > this.options.sourceTimeoutMs) {
        if (!seen && this.sources.size >= MAX_SOURCES) {
          const oldest = this.sources.keys().next().value;
          if (oldest !== undefined) this.sources.delete(oldest);
        }
        this.sources.set(ssrc, { address: source, lastSeen: now });
      } else {
        // The first source keeps the SSRC (RFC 3550 §8.2); the newcomer collides.
        collision = { ssrc, kind: 'remote', source, firstSource: seen.address };
      }
    }
    if (!collision) return undefined;
    const last = this.lastReport.get(ssrc);
    const report = last === undefined || now - last >= this.options.reportIntervalMs;
    if (report) {
      if (this.lastReport.size >= MAX_SOURCES) this.lastReport.clear();
      this.lastReport.set(ssrc, now);
    }
    return { collision, report };
  }
}
