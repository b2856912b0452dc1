/**
 * The usage ledger (src/keyd/ledger.ts; paper §3, §11 metering): deliveries per epoch and
 * principal, usage by member and by intermediary, voided epochs unbilled, the counts a budget of
 * "minutes" is checked against, and durability (a second connection sees committed rows, a
 * reopened file still has them).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Ledger, type DeliveryRow } from '../../src/keyd/ledger.js';
import { decide } from '../../src/pki/acl.js';

const MIN = 60_000;
const T0 = 1_800_000_000_000;

/** The delivery of epoch `e` (one minute each, from T0) to `principal`. */
function row(e: number, principal: string, extra: Partial<DeliveryRow> = {}): DeliveryRow {
  return { epoch: e, notBefore: T0 + (e - 1) * MIN, notAfter: T0 + e * MIN, principal, role: 'member', memberId: 1, subtree: 1, ...extra };
}

describe('usage ledger', () => {
  let dir: string;
  let path: string;
  let ledger: Ledger;

  beforeEach(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'iolus-ledger-'));
    path = join(dir, 'state', 'ledger.sqlite');
    ledger = new Ledger(path);
  });

  afterEach(() => {
    ledger.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts the epochs a principal received, once each, and how many of them have ended', () => {
    ledger.recordDeliveries([row(1, 'alice'), row(1, 'bob')]);
    ledger.recordDeliveries([row(2, 'alice'), row(2, 'alice')]); // the same delivery twice: one row
    ledger.recordDeliveries([row(3, 'alice')]);
    expect(ledger.epochsReceived('alice')).toBe(3);
    expect(ledger.epochsReceived('bob')).toBe(1);
    expect(ledger.epochsReceived('carol')).toBe(0);
    // "May alice have epoch 3?" does not count epoch 3 against itself.
    expect(ledger.epochsReceived('alice', 3)).toBe(2);
    expect(ledger.epochsReceived('alice', 4)).toBe(3);
    expect(ledger.epochsOf('alice')).toEqual([1, 2, 3]);
    // A budget is spent when the epochs are over, not when the keys went out.
    expect(ledger.epochsEnded('alice', T0 + MIN - 1)).toBe(0);
    expect(ledger.epochsEnded('alice', T0 + MIN)).toBe(1);
    expect(ledger.epochsEnded('alice', T0 + 2.5 * MIN)).toBe(2);
    expect(ledger.epochsEnded('alice', T0 + 3 * MIN)).toBe(3);
  });

  it('a budget of 3 minutes, as the daemon applies it: 3 epochs, each usable to its end, no fourth', () => {
    const acl = [{ principal: 'alice', roles: ['member' as const], minutes: 3 }];
    const alice = { principal: 'alice', role: 'member' as const };
    // Admission (join, refresh) at `now` counts the epochs that have ended…
    const admitted = (now: number) => decide(acl, alice, 'member', new Date(now), ledger.epochsEnded('alice', now)).allow;
    // …the sweep before an epoch, and the keys handed over, count every other epoch received.
    const mayHave = (e: number) => decide(acl, alice, 'member', new Date(T0 + (e - 1) * MIN), ledger.epochsReceived('alice', e)).allow;
    for (const e of [1, 2, 3]) {
      expect(mayHave(e), `epoch ${e}`).toBe(true);
      ledger.recordDeliveries([row(e, 'alice')]);
    }
    expect(mayHave(4), 'a fourth epoch').toBe(false);
    expect(mayHave(3), 'epoch 3 again (a rejoin during it)').toBe(true);
    // Epoch 3's key went out a lead before it began: alice stays a member until it is over.
    expect(admitted(T0 + 2 * MIN - 10_000)).toBe(true);
    expect(admitted(T0 + 3 * MIN - 1)).toBe(true);
    expect(admitted(T0 + 3 * MIN)).toBe(false);
  });

  it('a voided epoch is not billed', () => {
    ledger.recordDeliveries([row(1, 'alice'), row(2, 'alice'), row(2, 'bob')]);
    ledger.voidEpoch(2);
    expect(ledger.epochsOf('alice')).toEqual([1]);
    expect(ledger.epochsReceived('bob')).toBe(0);
    expect(ledger.usage(0, 'member').map((r) => r.principal)).toEqual(['alice']);
  });

  it('prints member-minutes by member and, for intermediaries, minutes × subtree (the largest reported)', () => {
    ledger.recordDeliveries([row(1, 'alice'), row(2, 'alice'), row(1, 'i-a', { role: 'intermediary', subtree: 10 }), row(2, 'i-a', { role: 'intermediary', subtree: 4 })]);
    ledger.recordDeliveries([row(2, 'i-a', { role: 'intermediary', subtree: 12 })]); // it grew during epoch 2
    ledger.recordDeliveries([row(2, 'i-a', { role: 'intermediary', subtree: 3 })]); // the largest stays
    const members = ledger.usage(0, 'member');
    expect(members).toEqual([{ principal: 'alice', role: 'member', epochs: 2, minutes: 2, memberMinutes: 2, firstEpoch: 1, lastEpoch: 2 }]);
    const inter = ledger.usage(0, 'intermediary');
    expect(inter).toEqual([{ principal: 'i-a', role: 'intermediary', epochs: 2, minutes: 2, memberMinutes: 22, firstEpoch: 1, lastEpoch: 2 }]);
    // --since / --until select by the epoch's start.
    expect(ledger.usage(T0 + MIN, 'member')[0]).toMatchObject({ epochs: 1, firstEpoch: 2 });
    expect(ledger.usage(0, 'member', T0 + MIN)[0]).toMatchObject({ epochs: 1, lastEpoch: 1 });
    expect(ledger.usage(T0 + 10 * MIN, 'member')).toEqual([]);
  });

  it('remembers the newest epoch made or delivered (epochs never go back after a restart)', () => {
    expect(ledger.lastEpoch()).toBe(0);
    ledger.recordEpoch({ epoch: 7, notBefore: T0, notAfter: T0 + MIN, voids: 0, reason: 'start' });
    ledger.recordEpoch({ epoch: 7, notBefore: T0, notAfter: T0 + MIN, voids: 0, reason: 'again' }); // ignored
    expect(ledger.lastEpoch()).toBe(7);
    ledger.recordDeliveries([row(9, 'alice')]);
    expect(ledger.lastEpoch()).toBe(9);
  });

  it('is durable (WAL): committed rows are visible to another connection and after reopening', () => {
    ledger.recordEpoch({ epoch: 5, notBefore: T0, notAfter: T0 + MIN, voids: 0, reason: 'start' });
    ledger.recordDeliveries([row(5, 'alice'), row(5, 'bob')]);
    const other = new Database(path, { readonly: true });
    try {
      expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
      expect((other.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n).toBe(2);
    } finally {
      other.close();
    }
    // The writer is still open (as after a kill -9, nothing was closed): a new Ledger sees everything.
    const again = new Ledger(path);
    try {
      expect(again.epochsOf('bob')).toEqual([5]);
      expect(again.lastEpoch()).toBe(5);
    } finally {
      again.close();
    }
    ledger.close();
    ledger = new Ledger(path);
    expect(ledger.usage(0, 'member').map((r) => `${r.principal}:${r.epochs}`)).toEqual(['alice:1', 'bob:1']);
  });
  it('group commit: rows queued in one turn are on disk, for another connection, when the promise resolves', async () => {
    const seen = () => {
      const other = new Database(path, { readonly: true });
      try {
        return (other.prepare('SELECT count(*) AS n FROM deliveries').get() as { n: number }).n;
      } finally {
        other.close();
      }
    };
    const a = ledger.recordDeliveriesSoon([row(1, 'alice')]);
    const b = ledger.recordDeliveriesSoon([row(1, 'bob'), row(2, 'bob')]);
    expect(seen()).toBe(0); // queued, not yet committed
    await Promise.all([a, b]);
    expect(seen()).toBe(3);
    await ledger.recordDeliveriesSoon([]); // nothing to wait for
  });

  it('group commit: every read and write takes what is queued first, in order', async () => {
    const q = ledger.recordDeliveriesSoon([row(3, 'alice'), row(4, 'alice')]);
    expect(ledger.epochsReceived('alice')).toBe(2);
    // A void after the deliveries removes them (it does not run before the queued insert).
    void ledger.recordDeliveriesSoon([row(5, 'bob')]);
    ledger.voidEpoch(5);
    expect(ledger.epochsOf('bob')).toEqual([]);
    await q;
  });

  it('group commit: a failed commit rejects every waiting caller', async () => {
    const bad = { ...row(1, 'alice'), principal: null as unknown as string }; // NOT NULL
    const a = ledger.recordDeliveriesSoon([row(1, 'bob')]);
    const b = ledger.recordDeliveriesSoon([bad]);
    await expect(a).rejects.toThrow(/NOT NULL/);
    await expect(b).rejects.toThrow(/NOT NULL/);
    expect(ledger.epochsOf('bob')).toEqual([]); // one transaction: nothing of it committed
  });
});
