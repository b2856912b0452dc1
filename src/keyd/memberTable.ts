/**
 * The agent's private database of members (paper §6.2 step 2): one record per member with its
 * member key (KGSA-MBR), identity, role and soft-state expiry. Member ids are never reused.
 */
import { wipe } from '../crypto/bytes.js';
import type { JoinRole } from '../wire/control.js';

export interface MemberRecord {
  readonly id: number;
  readonly principal: string;
  readonly role: JoinRole;
  readonly memberKey: Uint8Array;
  readonly joinedAt: number;
  /** Soft state: removed like a leave once passed without a REFRESH (§6.3). */
  expiresAt: number;
  /** End of the entitlement from the ACL (ms), or null. */
  entitledUntil: number | null;
  /** Joined inside an open batch window: holds no subgroup key yet. */
  pending: boolean;
  /** For an intermediary: the members of its whole subtree, as it last reported (metering). */
  subtree?: number;
  /** Unicast fan-out endpoint, if the member gave one. */
  endpoint?: { host: string; port: number };
}

export class MemberTable {
  private readonly byId = new Map<number, MemberRecord>();
  private readonly byPrincipal = new Map<string, number>();
  private nextId: number;

  constructor(firstId = 1) {
    this.nextId = firstId;
  }

  get size(): number {
    return this.byId.size;
  }

  allocateId(): number {
    if (this.nextId > 0xffff_fffe) throw new RangeError('member ids exhausted');
    return this.nextId++;
  }

  add(r: MemberRecord): void {
    this.byId.set(r.id, r);
    this.byPrincipal.set(r.principal, r.id);
  }

  get(id: number): MemberRecord | undefined {
    return this.byId.get(id);
  }

  byPrincipalName(principal: string): MemberRecord | undefined {
    const id = this.byPrincipal.get(principal);
    return id === undefined ? undefined : this.byId.get(id);
  }

  remove(id: number): MemberRecord | undefined {
    const r = this.byId.get(id);
    if (!r) return undefined;
    this.byId.delete(id);
    if (this.byPrincipal.get(r.principal) === id) this.byPrincipal.delete(r.principal);
    wipe(r.memberKey);
    return r;
  }

  values(): IterableIterator<MemberRecord> {
    return this.byId.values();
  }

  /** Member ids in ascending order (insertion order is ascending: ids only grow). */
  ids(): number[] {
    return [...this.byId.keys()];
  }
}
