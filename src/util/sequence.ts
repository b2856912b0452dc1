/**
 * A sender's sequence numbers. They start from the clock (now × 1000) and then count by one,
 * so a sender that restarts continues above what receivers hold (unless it sent more than
 * 1,000 messages per millisecond on average, which no agent does) instead of being refused
 * as a replay.
 */
import type { Clock } from './clock.js';

export class SequenceCounter {
  private last: number;
  constructor(clock: Clock) {
    this.last = clock.now() * 1000;
  }
  next(): number {
    this.last += 1;
    return this.last;
  }
}
