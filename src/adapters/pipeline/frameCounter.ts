/**
 * Counts fixed-size decoded frames in a receiver's stdout and keeps the newest one (the
 * vic-like sample draws it). Chunks from a pipe do not respect frame boundaries: the
 * remainder is carried to the next chunk.
 */
export class FrameCounter {
  frames = 0;
  bytes = 0;
  firstFrameAt: number | undefined;
  lastFrameAt: number | undefined;
  private readonly current: Buffer;
  private filled = 0;
  private last: Buffer | undefined;

  constructor(readonly frameBytes: number, private readonly clock: () => number = Date.now) {
    if (!Number.isInteger(frameBytes) || frameBytes < 1) throw new RangeError(`frameBytes: expected a positive integer, got ${frameBytes}`);
    this.current = Buffer.alloc(frameBytes);
  }

  /** Feeds a chunk; returns how many frames it completed. */
  push(chunk: Uint8Array): number {
    this.bytes += chunk.length;
    let off = 0;
    let done = 0;
    while (off < chunk.length) {
      const n = Math.min(this.frameBytes - this.filled, chunk.length - off);
      this.current.set(chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === this.frameBytes) {
        this.filled = 0;
        done++;
        // Only the newest frame of the chunk is kept; copy it before the next one overwrites it.
        if (chunk.length - off < this.frameBytes) this.last = Buffer.from(this.current);
      }
    }
    if (done > 0) {
      const now = this.clock();
      this.frames += done;
      this.firstFrameAt ??= now;
      this.lastFrameAt = now;
    }
    return done;
  }

  /** The newest complete frame (a copy), if any. */
  lastFrame(): Buffer | undefined {
    return this.last;
  }
}
