/**
 * A sender's sequence numbers. They start from the clock (µs-scale: now × 1000), so a sender
 * that restarts continues above what receivers hold instead of being refused as a replay.
 */
import type { Clock } from './clock.js';

export class SequenceCounter {
  private last: number;
  constructor(private readonly clock: Clock) {
    this.last = clock.now() * 1000;
  }
  next(): number {
    this.last = Math.max(this.last + 1, this.clock.now() * 1000);
    return this.last;
  }
}
