/**
 * What was delivered recently, for exactly-once delivery across the tree: a bounded set of
 * (origin, sequence) keys that forgets by age and size. Unlike a sliding window it refuses
 * only what it has seen, so nobody can make it refuse future messages by sending one with a
 * sequence far ahead (an insider under method 1 could, with a window keyed by origin).
 * Replays older than its memory are the per-hop windows' job.
 */
export class RecentSet {
  private readonly seen = new Map<string, number>();

  constructor(private readonly maxEntries = 65_536, private readonly maxAgeMs = 120_000) {}

  /** Records `key` at `now`; false if it was already there (a duplicate). */
  add(key: string, now: number): boolean {
    if (this.seen.has(key)) return false;
    this.seen.set(key, now);
    while (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value as string);
    for (const [k, t] of this.seen) {
      if (now - t <= this.maxAgeMs) break;
      this.seen.delete(k);
    }
    return true;
  }

  has(key: string): boolean {
    return this.seen.has(key);
  }

  get size(): number {
    return this.seen.size;
  }
}
