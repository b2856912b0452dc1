/** The launcher's bookkeeping: frames per run and per epoch, the gap a receiver sees at a restart. */
import { describe, expect, it } from 'vitest';
import { RunBook } from '../../../src/adapters/pipeline/runBook.js';

describe('RunBook', () => {
  it('measures a restart from the old run\'s last frame to the new run\'s first, in ms and in frames', () => {
    const b = new RunBook(50); // 20 ms packets
    const r1 = b.begin(7, 0);
    b.decoded(r1, 10, 7, 100);
    b.decoded(r1, 5, 7, 1000);
    b.restarted(r1, 1010);
    const r2 = b.begin(8, 1010);
    b.decoded(r2, 3, 8, 1200);
    b.decoded(r2, 2, 8, 1300);
    const s = b.snapshot();
    expect(s.frames).toBe(20);
    expect(s.restarts).toBe(1);
    expect(s.perEpoch).toEqual([{ epoch: 7, frames: 15 }, { epoch: 8, frames: 5 }]);
    // 200 ms without a packet at 50 packets/s: 9 packets missing between the two that arrived.
    expect(s.restartGaps).toEqual([{ fromEpoch: 7, toEpoch: 8, gapMs: 200, frames: 9, restartMs: 190 }]);
    expect(s.runs.map((r) => [r.epoch, r.frames, r.firstFrameAt, r.lastFrameAt])).toEqual([[7, 15, 100, 1000], [8, 5, 1200, 1300]]);
  });

  it('records no gap when the old run decoded nothing, and estimates what earlier runs sent', () => {
    const b = new RunBook(10);
    const r1 = b.begin(1, 0);
    r1.endedAt = 1500;
    b.restarted(r1, 1500);
    const r2 = b.begin(2, 1600);
    b.decoded(r2, 1, 2, 1700);
    expect(b.snapshot().restartGaps).toEqual([]);
    expect(b.sentEstimate(r2)).toBe(15);
    b.srtpFailure(r2);
    expect(b.snapshot().srtpFailures).toBe(1);
    expect(b.snapshot().runs[1]!.srtpFailures).toBe(1);
  });
});
