/** Time as an injected dependency: the state machines never read the wall clock themselves. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(private t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): number {
    if (ms < 0) throw new RangeError('a clock does not go back');
    this.t += ms;
    return this.t;
  }
  set(t: number): void {
    if (t < this.t) throw new RangeError('a clock does not go back');
    this.t = t;
  }
}
