/**
 * KeySources for adapter tests and benchmarks, made from random KGRP2s with deriveKey, as
 * the key service will: a settable one (unit tests, fake clock) and a rolling one that
 * follows a period/lead/grace schedule in real time (integration tests, benchmarks).
 */
import { deriveKey, type DerivedKey, type GroupKeyEpoch, type KeySource } from '../../../src/client/keyMaterial.js';
import { randomKey } from '../../../src/crypto/bytes.js';

export interface EpochTimes {
  notBefore: number;
  notAfter: number;
  graceMs: number;
}

export function groupKeyEpoch(epoch: number, times: EpochTimes, kgrp2: Uint8Array = randomKey()): GroupKeyEpoch {
  return { epoch, ...times, kgrp2 };
}

/** A KeySource whose held keys a test sets explicitly. */
export class SettableKeySource implements KeySource {
  private held: GroupKeyEpoch[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(epochs: GroupKeyEpoch[] = []) {
    this.held = [...epochs];
  }

  set(epochs: GroupKeyEpoch[]): void {
    this.held = [...epochs].sort((a, b) => a.epoch - b.epoch);
    for (const l of this.listeners) l();
  }

  keys(label: string): DerivedKey[] {
    return this.held.map((g) => deriveKey(g, label));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export interface RollingSchedule {
  /** Start of epoch `firstEpoch` (ms since the Unix epoch). */
  t0: number;
  periodMs: number;
  /** The next key is held this long before it activates. */
  leadMs: number;
  graceMs: number;
  firstEpoch?: number;
}

/**
 * A table of KGRP2s by epoch, shared by every RollingKeySource of one test so that two
 * "members" (a sender and a receiver) hold the same keys.
 */
export class GroupKeyTable {
  private readonly kgrp2 = new Map<number, Uint8Array>();
  constructor(readonly schedule: RollingSchedule) {}

  epochAt(now: number): number {
    const { t0, periodMs, firstEpoch = 1 } = this.schedule;
    return firstEpoch + Math.floor((now - t0) / periodMs);
  }

  get(epoch: number): GroupKeyEpoch {
    const { t0, periodMs, graceMs, firstEpoch = 1 } = this.schedule;
    let k = this.kgrp2.get(epoch);
    if (!k) {
      k = randomKey();
      this.kgrp2.set(epoch, k);
    }
    const notBefore = t0 + (epoch - firstEpoch) * periodMs;
    return { epoch, notBefore, notAfter: notBefore + periodMs, graceMs, kgrp2: k };
  }
}

/**
 * What a member of a rolling group holds at each instant: previous, current and (from
 * notBefore - lead) next; onChange fires at every such change, from real timers.
 */
export class RollingKeySource implements KeySource {
  private readonly listeners = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private lastSet = '';

  constructor(
    private readonly table: GroupKeyTable,
    private readonly clock: () => number = Date.now,
  ) {}

  held(now = this.clock()): GroupKeyEpoch[] {
    const { firstEpoch = 1, leadMs } = this.table.schedule;
    const n = this.table.epochAt(now);
    const out: GroupKeyEpoch[] = [];
    if (n - 1 >= firstEpoch) out.push(this.table.get(n - 1));
    if (n >= firstEpoch) out.push(this.table.get(n));
    const next = this.table.get(n + 1);
    if (now >= next.notBefore - leadMs) out.push(next);
    return out;
  }

  keys(label: string): DerivedKey[] {
    return this.held().map((g) => deriveKey(g, label));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    this.arm();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    if (this.timer) return;
    this.lastSet = this.signature(this.clock());
    this.schedule(this.clock());
  }

  private signature(now: number): string {
    return this.held(now).map((g) => g.epoch).join(',');
  }

  /** Wakes at the next instant the held set can change (a lead point or an epoch start). */
  private schedule(now: number): void {
    const { periodMs, leadMs } = this.table.schedule;
    const start = this.table.get(this.table.epochAt(now) + 1).notBefore;
    const wake = Math.min(...[start - leadMs, start].filter((t) => t > now), now + periodMs);
    this.timer = setTimeout(() => {
      const t = this.clock();
      const set = this.signature(t);
      if (set !== this.lastSet) {
        this.lastSet = set;
        for (const l of this.listeners) l();
      }
      if (this.listeners.size > 0) this.schedule(t);
    }, Math.max(1, wake - now + 1));
    this.timer.unref();
  }
}
