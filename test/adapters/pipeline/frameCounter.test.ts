/** Decoded frames counted across arbitrary pipe chunk boundaries; the newest one kept intact. */
import { describe, expect, it } from 'vitest';
import { FrameCounter } from '../../../src/adapters/pipeline/frameCounter.js';

describe('FrameCounter', () => {
  it('counts frames whatever the chunking, and keeps the newest complete frame', () => {
    const frames = [0, 1, 2, 3, 4].map((v) => Buffer.alloc(10, v));
    const all = Buffer.concat(frames);
    for (const cut of [1, 3, 7, 10, 11, 25, 50]) {
      let t = 0;
      const c = new FrameCounter(10, () => ++t);
      const seen: number[] = [];
      for (let off = 0; off < all.length; off += cut) {
        c.push(all.subarray(off, off + cut));
        seen.push(c.frames);
      }
      expect(c.frames, `chunks of ${cut}`).toBe(5);
      expect(c.lastFrame(), `chunks of ${cut}`).toEqual(frames[4]);
      expect(c.bytes).toBe(50);
      expect(c.firstFrameAt).toBeDefined();
    }
  });

  it('keeps the newest frame when a chunk ends inside the next one', () => {
    const c = new FrameCounter(4);
    c.push(Buffer.from([1, 1, 1, 1, 2, 2]));
    expect(c.frames).toBe(1);
    expect(c.lastFrame()).toEqual(Buffer.from([1, 1, 1, 1]));
    c.push(Buffer.from([2, 2]));
    expect(c.lastFrame()).toEqual(Buffer.from([2, 2, 2, 2]));
  });

  it('refuses a frame size that is not a positive integer', () => {
    expect(() => new FrameCounter(0)).toThrow(RangeError);
    expect(() => new FrameCounter(1.5)).toThrow(RangeError);
  });
});
