/**
 * The usage ledger (paper §3 and §11, per-minute metering): which member, or which child
 * intermediary with how large a subtree, received the group key of which epoch. SQLite in WAL
 * mode (better-sqlite3), synchronous=FULL: a row written is on disk before the key goes out,
 * and survives a crash or kill -9. The originator's epochs are kept here too, so epochs keep
 * increasing across a restart. Joins answered in the same turn of the event loop share one
 * transaction (group commit, `recordDeliveriesSoon`), each grant still waiting for it.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

export interface DeliveryRow {
  epoch: number;
  notBefore: number;
  notAfter: number;
  principal: string;
  role: string;
  memberId: number;
  subtree: number;
}

export interface UsageRow {
  principal: string;
  role: string;
  epochs: number;
  /** Σ (notAfter − notBefore) over the epochs received, in minutes. */
  minutes: number;
  /** For intermediaries: Σ minutes × subtree members (what a controller charges them). */
  memberMinutes: number;
  firstEpoch: number;
  lastEpoch: number;
}

export class Ledger {
  private readonly db: Database.Database;
  private readonly insertDelivery: Database.Statement;
  private readonly insertEpoch: Database.Statement;
  private readonly countEpochs: Database.Statement;
  private readonly countEnded: Database.Statement;
  private readonly insertMany: (rows: (DeliveryRow & { at: number })[]) => void;
  /** Rows queued for the next group commit, and the promise their callers wait on. */
  private queued: (DeliveryRow & { at: number })[] = [];
  private batch: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } | undefined;

  constructor(readonly path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS epochs (
        epoch INTEGER PRIMARY KEY, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
        voids INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL, created INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS deliveries (
        epoch INTEGER NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,
        principal TEXT NOT NULL, role TEXT NOT NULL, member_id INTEGER NOT NULL, subtree INTEGER NOT NULL,
        at INTEGER NOT NULL, PRIMARY KEY (epoch, principal));
      CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (not_before);
      CREATE INDEX IF NOT EXISTS deliveries_by_principal ON deliveries (principal, epoch);
    `);
    // The largest subtree seen wins: an intermediary reports its size as members come.
    this.insertDelivery = this.db.prepare(`
      INSERT INTO deliveries (epoch, not_before, not_after, principal, role, member_id, subtree, at)
      VALUES (@epoch, @notBefore, @notAfter, @principal, @role, @memberId, @subtree, @at)
      ON CONFLICT (epoch, principal) DO UPDATE SET subtree = max(subtree, excluded.subtree)`);
    this.insertEpoch = this.db.prepare(`
      INSERT OR IGNORE INTO epochs (epoch, not_before, not_after, voids, reason, created)
      VALUES (@epoch, @notBefore, @notAfter, @voids, @reason, @created)`);
    this.countEpochs = this.db.prepare('SELECT count(*) AS n FROM deliveries WHERE principal = ? AND epoch <> ?');
    this.countEnded = this.db.prepare('SELECT count(*) AS n FROM deliveries WHERE principal = ? AND not_after <= ?');
    this.insertMany = this.db.transaction((list: (DeliveryRow & { at: number })[]) => {
      for (const r of list) this.insertDelivery.run(r);
    });
  }

  /** Records the recipients of one epoch's key, in one transaction, now (after anything queued). */
  recordDeliveries(rows: DeliveryRow[], at = Date.now()): void {
    this.flush();
    if (rows.length === 0) return;
    this.insertMany(rows.map((r) => ({ ...r, at })));
  }

  /**
   * Group commit: queues `rows` and commits them with every other row queued in this turn of
   * the event loop, in one transaction (one fsync of the WAL instead of one per join), at the
   * end of the turn. The promise settles once they are on disk (or the commit failed): a
   * caller hands the key out only after it resolves, so a kill -9 loses no billing. Every other
   * read and write of the ledger commits what is queued first, so none sees a partial picture.
   */
  recordDeliveriesSoon(rows: DeliveryRow[], at = Date.now()): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    for (const r of rows) this.queued.push({ ...r, at });
    if (!this.batch) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const promise = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.batch = { promise, resolve, reject };
      setImmediate(() => this.flush());
    }
    return this.batch.promise;
  }

  /** Commits the queued rows now. Never throws: a failure goes to the callers waiting on them. */
  flush(): void {
    const b = this.batch;
    if (!b) return;
    const rows = this.queued;
    this.batch = undefined;
    this.queued = [];
    try {
      this.insertMany(rows);
      b.resolve();
    } catch (err) {
      b.reject(err);
    }
  }

  recordEpoch(e: { epoch: number; notBefore: number; notAfter: number; voids: number; reason: string }, at = Date.now()): void {
    this.flush();
    this.insertEpoch.run({ ...e, created: at });
  }

  /** A voided epoch was never in force: nobody is billed for it. */
  voidEpoch(epoch: number): void {
    this.flush();
    this.db.prepare('DELETE FROM deliveries WHERE epoch = ?').run(epoch);
  }

  /** The newest epoch ever created or delivered here (0 if none). */
  lastEpoch(): number {
    this.flush();
    const r = this.db.prepare('SELECT max(e) AS e FROM (SELECT max(epoch) AS e FROM epochs UNION ALL SELECT max(epoch) FROM deliveries)').get() as { e: number | null };
    return r.e ?? 0;
  }

  /**
   * How many epochs' keys `principal` has received: a budget of "minutes" counts these. With
   * `except`, that epoch is not counted ("may it have epoch e?": one it already has is paid for).
   */
  epochsReceived(principal: string, except = 0): number {
    this.flush();
    return (this.countEpochs.get(principal, except) as { n: number }).n;
  }

  /** How many of them have ended by `now`: a budget is spent once the last epoch it paid for is over. */
  epochsEnded(principal: string, now: number): number {
    this.flush();
    return (this.countEnded.get(principal, now) as { n: number }).n;
  }

  /** Usage since `since` (ms), by member or by intermediary. */
  usage(since: number, by: 'member' | 'intermediary', until = Number.MAX_SAFE_INTEGER): UsageRow[] {
    this.flush();
    const roleFilter = by === 'intermediary' ? "role = 'intermediary'" : "role <> 'intermediary'";
    return this.db.prepare(`
      SELECT principal, role, count(*) AS epochs,
             sum(not_after - not_before) / 60000.0 AS minutes,
             sum((not_after - not_before) * subtree) / 60000.0 AS memberMinutes,
             min(epoch) AS firstEpoch, max(epoch) AS lastEpoch
      FROM deliveries WHERE not_before >= ? AND not_before < ? AND ${roleFilter}
      GROUP BY principal, role ORDER BY principal`).all(since, until) as UsageRow[];
  }

  /** The epochs one principal received (tests, audits). */
  epochsOf(principal: string): number[] {
    this.flush();
    return (this.db.prepare('SELECT epoch FROM deliveries WHERE principal = ? ORDER BY epoch').all(principal) as { epoch: number }[]).map((r) => r.epoch);
  }

  close(): void {
    this.flush();
    this.db.close();
  }
}
