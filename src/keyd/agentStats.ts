/** Counters an agent keeps: the costs the paper argues about, and every drop by cause. */
import { RekeyReason } from '../wire/keyUpdate.js';

export class AgentStats {
  /** Key wraps performed ({K'}K, {K'}Kmember, data-key rewraps). */
  wraps = 0;
  /** Subgroup-plane messages and bytes emitted. */
  messagesOut = 0;
  bytesOut = 0;
  /** Rekeys by reason name. */
  readonly rekeys = new Map<string, number>();
  /** Incoming messages dropped, by cause. */
  readonly dropped = new Map<string, number>();
  /** Data units forwarded (up or down). */
  forwarded = 0;

  countRekey(reason: RekeyReason): void {
    const k = RekeyReason[reason].toLowerCase();
    this.rekeys.set(k, (this.rekeys.get(k) ?? 0) + 1);
  }

  drop(cause: string): void {
    this.dropped.set(cause, (this.dropped.get(cause) ?? 0) + 1);
  }
}
