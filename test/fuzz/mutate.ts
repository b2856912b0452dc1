/** Mutations of valid encodings: bit flips, byte replacements, truncations, extensions, splices, huge length fields. */
import type { Rng } from './prng.js';

const INTERESTING_U8 = [0x00, 0x01, 0x02, 0x07, 0x08, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING_U16 = [0, 1, 999, 1000, 1001, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_U32 = [0, 1, 27, 28, 60, 64, 65_000, 65_001, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff];
const INTERESTING_U64 = [0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

/** Offsets of length and count fields in the sample encodings (src/wire/*.ts layouts). */
export const LENGTH_FIELDS: ReadonlyArray<{ offset: number; size: 2 | 4 | 8; what: string }> = [
  { offset: 44, size: 4, what: 'header body length' },
  { offset: 20, size: 8, what: 'header epoch' },
  { offset: 28, size: 8, what: 'header sequence' },
  { offset: 36, size: 8, what: 'header timestamp' },
  { offset: 48, size: 8, what: 'JoinKeyUpdate prevEpoch / Heartbeat groupEpoch' },
  { offset: 50, size: 2, what: 'LeaveKeyUpdate part' },
  { offset: 52, size: 2, what: 'LeaveKeyUpdate parts' },
  { offset: 54, size: 2, what: 'LeaveKeyUpdate count' },
  { offset: 48 + 1 + 16 + 60, size: 4, what: 'Data payload length' },
  { offset: 48 + 1 + 8, size: 8, what: 'Data origin seq' },
];

function setUint(b: Uint8Array, offset: number, size: 2 | 4 | 8, value: bigint): void {
  for (let i = size - 1; i >= 0; i--) {
    if (offset + i < b.length) b[offset + i] = Number(value & 0xffn);
    value >>= 8n;
  }
}

export type Mutator = (rng: Rng, input: Uint8Array, other: Uint8Array) => Uint8Array;

export const MUTATORS: Record<string, Mutator> = {
  bitFlips(rng, input) {
    const b = new Uint8Array(input);
    if (b.length === 0) return b;
    for (let n = rng.range(1, 8); n > 0; n--) {
      const i = rng.chance(0.5) ? rng.int(Math.min(b.length, 64)) : rng.int(b.length);
      b[i] = b[i]! ^ (1 << rng.int(8));
    }
    return b;
  },
  byteReplacements(rng, input) {
    const b = new Uint8Array(input);
    if (b.length === 0) return b;
    for (let n = rng.range(1, 8); n > 0; n--) {
      const i = rng.chance(0.5) ? rng.int(Math.min(b.length, 140)) : rng.int(b.length);
      b[i] = rng.chance(0.5) ? rng.pick(INTERESTING_U8) : rng.int(256);
    }
    return b;
  },
  truncation(rng, input) {
    return input.slice(0, rng.int(input.length + 1));
  },
  extension(rng, input) {
    const extra = rng.chance(0.9) ? rng.range(1, 128) : rng.range(1, 70_000 - input.length > 0 ? 70_000 - input.length : 1);
    const b = new Uint8Array(input.length + extra);
    b.set(input);
    b.set(rng.bytes(extra), input.length);
    return b;
  },
  splice(rng, input, other) {
    const a = rng.int(input.length + 1);
    const s = rng.int(other.length + 1);
    const b = new Uint8Array(a + other.length - s);
    b.set(input.subarray(0, a));
    b.set(other.subarray(s), a);
    return b;
  },
  lengthField(rng, input) {
    const b = new Uint8Array(input);
    const f = rng.pick(LENGTH_FIELDS);
    const pool = f.size === 2 ? INTERESTING_U16 : f.size === 4 ? INTERESTING_U32 : null;
    let v: bigint;
    if (pool) v = BigInt(rng.chance(0.8) ? rng.pick(pool) : rng.int(f.size === 2 ? 0x10000 : 2 ** 32));
    else v = rng.chance(0.8) ? rng.pick(INTERESTING_U64) : BigInt(rng.u32()) * 2n ** 32n + BigInt(rng.u32());
    setUint(b, f.offset, f.size, v);
    return b;
  },
  headerOnlyRetype(rng, input) {
    // Another type byte over a valid body: the decoder must refuse or decode the body as that type.
    const b = new Uint8Array(input);
    if (b.length > 2) b[2] = rng.range(0, 9);
    return b;
  },
};

export const MUTATOR_NAMES = Object.keys(MUTATORS);

/** One to three stacked mutations. */
export function mutate(rng: Rng, input: Uint8Array, other: () => Uint8Array): { bytes: Uint8Array; steps: string[] } {
  let b = input;
  const steps: string[] = [];
  for (let n = rng.chance(0.7) ? 1 : rng.range(2, 3); n > 0; n--) {
    const name = rng.pick(MUTATOR_NAMES);
    b = MUTATORS[name]!(rng, b, other());
    steps.push(name);
  }
  return { bytes: b, steps };
}
