/**
 * Bounded binary reading and writing. A Reader never reads past its buffer and never
 * allocates more than the caller's bound; every failure is a CodecError with a code that
 * says what was wrong (`codec.truncated`, `codec.oversized`, `codec.trailing`, …).
 */
import { CodecError } from '../errors.js';

/** Largest message we emit or accept: fits a UDP/IPv4 datagram (65,507 B) with room to spare. */
export const MAX_MESSAGE_LENGTH = 65_000;
/** Epochs, sequence numbers and timestamps are u64 on the wire but must be safe JS integers. */
export const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

export class Reader {
  private off = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get offset(): number {
    return this.off;
  }
  get remaining(): number {
    return this.buf.length - this.off;
  }
  private need(n: number, what: string): void {
    if (n > this.buf.length - this.off) {
      throw new CodecError('codec.truncated', `truncated: ${what} needs ${n} bytes, ${this.buf.length - this.off} left`);
    }
  }
  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.off++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.off, false);
    this.off += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.off, false);
    this.off += 4;
    return v;
  }
  /** u64 that must fit a safe integer (epochs, sequences, times). */
  u64(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.off, false);
    const lo = this.view.getUint32(this.off + 4, false);
    this.off += 8;
    const v = hi * 2 ** 32 + lo;
    if (v > MAX_SAFE_U64) throw new CodecError('codec.range', `${what} out of range`);
    return v;
  }
  /** A view (no copy) of the next `n` bytes. */
  bytes(n: number, what: string): Uint8Array {
    this.need(n, what);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  /** u32 length prefix, then that many bytes, refusing lengths above `max`. */
  vbytes(max: number, what: string): Uint8Array {
    const n = this.u32(`${what} length`);
    if (n > max) throw new CodecError('codec.oversized', `${what}: length ${n} exceeds ${max}`);
    return this.bytes(n, what);
  }
  end(what: string): void {
    if (this.off !== this.buf.length) {
      throw new CodecError('codec.trailing', `${what}: ${this.buf.length - this.off} trailing bytes`);
    }
  }
}

/** Writes into a buffer allocated once at the size the encoder computed first. */
export class Writer {
  private off = 0;
  private readonly view: DataView;
  readonly buf: Uint8Array;
  constructor(size: number) {
    if (size > MAX_MESSAGE_LENGTH) throw new CodecError('codec.oversized', `message of ${size} bytes exceeds ${MAX_MESSAGE_LENGTH}`);
    // Not zero-filled: every byte is written before done() lets the buffer out (a 32 KB
    // forward would otherwise pay a memset it does not need).
    const b = Buffer.allocUnsafe(size);
    this.buf = new Uint8Array(b.buffer, b.byteOffset, size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, size);
  }
  get offset(): number {
    return this.off;
  }
  u8(v: number): this {
    this.view.setUint8(this.off, v);
    this.off += 1;
    return this;
  }
  u16(v: number): this {
    this.view.setUint16(this.off, v, false);
    this.off += 2;
    return this;
  }
  u32(v: number): this {
    this.view.setUint32(this.off, v >>> 0, false);
    this.off += 4;
    return this;
  }
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64: ${v} is not a non-negative safe integer`);
    this.view.setUint32(this.off, Math.floor(v / 2 ** 32), false);
    this.view.setUint32(this.off + 4, v >>> 0, false);
    this.off += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.buf.set(b, this.off);
    this.off += b.length;
    return this;
  }
  vbytes(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }
  /** Skips `n` bytes that are filled in later (a signature over what precedes it). */
  reserve(n: number): number {
    const at = this.off;
    this.buf.fill(0, at, at + n);
    this.off += n;
    return at;
  }
  done(): Uint8Array {
    if (this.off !== this.buf.length) throw new Error(`encoder wrote ${this.off} of ${this.buf.length} bytes`);
    return this.buf;
  }
}
