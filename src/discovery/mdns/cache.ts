/**
 * The querier's record cache (RFC 6762 §5.2, §10). Pure: every method takes `now` (ms), so the
 * TTL, goodbye and cache-flush rules are tested with a fake clock.
 *
 * - TTL: a record lives `ttl` seconds from when it was received.
 * - Goodbye (§10.1): TTL 0 means "delete in one second"; we hide it from lookups at once.
 * - Cache flush (§10.2): a record with the flush bit invalidates, one second later, the other
 *   records of its RRset that were received more than one second ago.
 * - Bounded: at most `maxEntries` records, evicting those closest to expiry, so a flood of
 *   well-formed junk from the network costs bounded memory.
 */
import { rdataKey, rrsetKey, type MdnsRecord, type RecordType } from './record.js';

export interface CacheEntry {
  record: MdnsRecord;
  /** When we last received it (ms). */
  receivedAt: number;
  /** When it expires (ms). */
  expiresAt: number;
  /** Set by a goodbye: invisible to lookups until it expires one second later. */
  goodbye: boolean;
  /** Interface it arrived on (to scope IPv6 link-local addresses). */
  interface?: string;
}

export interface CacheOptions {
  maxEntries?: number;
  /** Longest TTL we honor, seconds (a hostile sender could ask for 136 years). */
  maxTtl?: number;
}

export type AddOutcome = 'added' | 'refreshed' | 'goodbye' | 'ignored';

const ONE_SECOND = 1000;

export class RecordCache {
  private readonly sets = new Map<string, Map<string, CacheEntry>>();
  private count = 0;
  private readonly maxEntries: number;
  private readonly maxTtl: number;

  constructor(options: CacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? 2048;
    this.maxTtl = options.maxTtl ?? 24 * 3600;
  }

  get size(): number {
    return this.count;
  }

  /** Adds the records of one received message (flush rules apply per message, §10.2). */
  addAll(records: readonly MdnsRecord[], now: number, iface?: string): AddOutcome[] {
    return records.map((r) => this.add(r, now, iface));
  }

  add(record: MdnsRecord, now: number, iface?: string): AddOutcome {
    const setKey = rrsetKey(record.name, record.type);
    const dataKey = rdataKey(record);
    let set = this.sets.get(setKey);
    const existing = set?.get(dataKey);

    if (record.ttl === 0) {
      // §10.1: keep it one more second (for a late re-assertion), but it is gone for lookups.
      if (!existing) return 'ignored';
      existing.goodbye = true;
      existing.expiresAt = Math.min(existing.expiresAt, now + ONE_SECOND);
      return 'goodbye';
    }

    if (record.flush && set) {
      for (const [k, e] of set) {
        if (k !== dataKey && e.receivedAt < now - ONE_SECOND) e.expiresAt = Math.min(e.expiresAt, now + ONE_SECOND);
      }
    }

    const expiresAt = now + Math.min(record.ttl, this.maxTtl) * 1000;
    const entry: CacheEntry = { record, receivedAt: now, expiresAt, goodbye: false, ...(iface !== undefined ? { interface: iface } : {}) };
    if (existing) {
      set!.set(dataKey, entry);
      return 'refreshed';
    }
    if (this.count >= this.maxEntries) {
      this.prune(now);
      if (this.count >= this.maxEntries) this.evictSoonest();
    }
    if (!set) {
      set = new Map();
      this.sets.set(setKey, set);
    }
    set.set(dataKey, entry);
    this.count++;
    return 'added';
  }

  /** Live records of one RRset (not expired, not said goodbye to). */
  lookup(name: string, type: RecordType, now: number): CacheEntry[] {
    const set = this.sets.get(rrsetKey(name, type));
    if (!set) return [];
    return [...set.values()].filter((e) => !e.goodbye && e.expiresAt > now);
  }

  /** Seconds of TTL left, rounded down (what we would put in a known-answer list). */
  remainingTtl(entry: CacheEntry, now: number): number {
    return Math.max(0, Math.floor((entry.expiresAt - now) / 1000));
  }

  /**
   * Records to list as known answers for a question (RFC 6762 §7.1): only those with more than
   * half their TTL left, with the TTL they have left.
   */
  knownAnswers(name: string, type: RecordType, now: number): MdnsRecord[] {
    return this.lookup(name, type, now)
      .filter((e) => e.expiresAt - now > (e.record.ttl * 1000) / 2)
      .map((e) => ({ ...e.record, ttl: this.remainingTtl(e, now) }));
  }

  /**
   * Live records past `fraction` of their lifetime: RFC 6762 §5.2 has a querier that still cares
   * re-ask at 80%, 85%, 90% and 95% of the TTL.
   */
  ageing(now: number, fraction: number): CacheEntry[] {
    const out: CacheEntry[] = [];
    for (const set of this.sets.values()) {
      for (const e of set.values()) {
        const life = e.expiresAt - e.receivedAt;
        if (!e.goodbye && e.expiresAt > now && now - e.receivedAt >= life * fraction) out.push(e);
      }
    }
    return out;
  }

  /** Drops expired entries; returns how many. */
  prune(now: number): number {
    let removed = 0;
    for (const [setKey, set] of this.sets) {
      for (const [k, e] of set) {
        if (e.expiresAt <= now) {
          set.delete(k);
          removed++;
        }
      }
      if (set.size === 0) this.sets.delete(setKey);
    }
    this.count -= removed;
    return removed;
  }

  clear(): void {
    this.sets.clear();
    this.count = 0;
  }

  private evictSoonest(): void {
    let victim: { setKey: string; key: string; at: number } | undefined;
    for (const [setKey, set] of this.sets) {
      for (const [key, e] of set) {
        if (!victim || e.expiresAt < victim.at) victim = { setKey, key, at: e.expiresAt };
      }
    }
    if (!victim) return;
    const set = this.sets.get(victim.setKey)!;
    set.delete(victim.key);
    if (set.size === 0) this.sets.delete(victim.setKey);
    this.count--;
  }
}
