/** What every fuzzed decode must satisfy: returns or throws CodecError, in bounded time, without amplification. */
import { performance } from 'node:perf_hooks';
import { CodecError } from '../../src/errors.js';

/** Per-input time bound. A slow run is retried twice before it counts, so a loaded machine's pause is not a failure. */
export const TIME_BOUND_MS = 50;

/** Paths in a decoded message that are documented aggregate views over other fields (header ‖ body). */
const AGGREGATE_VIEWS = new Set(['frame.headerBytes', 'frame.body', 'frame.signed.covered']);

export interface Footprint {
  /** Sum of the lengths of the non-aggregate Uint8Arrays in the result. */
  leafBytes: number;
  /** Objects, arrays and values visited. */
  nodes: number;
  /** The first byte array that is not a view into the input, if any. */
  foreign?: string;
}

/** Walks a decode result: every Uint8Array must be a view into `input`, and the result must stay small. */
export function footprint(result: unknown, input: Uint8Array): Footprint {
  const fp: Footprint = { leafBytes: 0, nodes: 0 };
  const seen = new Set<object>();
  const lo = input.byteOffset;
  const hi = input.byteOffset + input.byteLength;
  const walk = (v: unknown, path: string): void => {
    fp.nodes++;
    if (v === null || typeof v !== 'object') return;
    if (v instanceof Uint8Array) {
      // Counted at every reference: the same view held twice is twice the bytes to a consumer.
      if (v.buffer !== input.buffer || v.byteOffset < lo || v.byteOffset + v.byteLength > hi) fp.foreign ??= path;
      if (!AGGREGATE_VIEWS.has(path)) fp.leafBytes += v.byteLength;
      return;
    }
    if (seen.has(v)) return;
    seen.add(v);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
      fp.foreign ??= `${path} (${v.constructor.name})`;
      return;
    }
    for (const [key, child] of Object.entries(v)) walk(child, path ? `${path}.${key}` : key);
  };
  walk(result, '');
  return fp;
}

export type Outcome = { ok: true; result: unknown } | { ok: false; code: string };

export class FuzzFailure extends Error {}

/** Runs `decode` on one input and checks the contract; throws FuzzFailure with everything needed to replay it. */
export function checkOne(decode: (b: Uint8Array) => unknown, input: Uint8Array, where: () => string): Outcome {
  const hexOf = () => {
    const hex = Buffer.from(input.buffer, input.byteOffset, Math.min(input.byteLength, 8192)).toString('hex');
    return input.byteLength > 8192 ? `${hex}… (${input.byteLength} bytes, first 8192 shown)` : hex;
  };
  const fail = (why: string, cause?: unknown): never => {
    throw new FuzzFailure(`${why}\n  ${where()}\n  input (${input.byteLength} bytes): ${hexOf()}`, { cause });
  };
  let best = Number.POSITIVE_INFINITY;
  let outcome: Outcome | undefined;
  for (let attempt = 0; attempt < 3 && best > TIME_BOUND_MS; attempt++) {
    const t0 = performance.now();
    try {
      const result = decode(input);
      outcome = { ok: true, result };
    } catch (e) {
      if (!(e instanceof CodecError)) fail(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a CodecError`, e);
      outcome = { ok: false, code: (e as CodecError).code };
    }
    best = Math.min(best, performance.now() - t0);
  }
  if (best > TIME_BOUND_MS) fail(`took ${best.toFixed(1)} ms (bound ${TIME_BOUND_MS} ms)`);
  const out = outcome!;
  if (out.ok) {
    const fp = footprint(out.result, input);
    if (fp.foreign !== undefined) fail(`result field ${fp.foreign} is not a view into the input`);
    if (fp.leafBytes > input.byteLength) fail(`result holds ${fp.leafBytes} bytes, more than the ${input.byteLength} of the input`);
    if (fp.nodes > 64 + input.byteLength / 8) fail(`result has ${fp.nodes} values for ${input.byteLength} input bytes`);
  }
  return out;
}
