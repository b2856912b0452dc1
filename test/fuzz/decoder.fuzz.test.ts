/**
 * Fuzzing the subgroup-plane decoder (issue 2): ≥100,000 random and mutated inputs. For each,
 * decodeMessage returns or throws a CodecError, within a time bound, and what it returns is
 * views into the input (no copies, no amplification). The KGRP2 announcement decoder gets the
 * same treatment. Reproduce a run with FUZZ_SEED=<seed> npx vitest run test/fuzz.
 */
import { describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import { decodeMessage } from '../../src/wire/message.js';
import { MAX_MESSAGE_LENGTH } from '../../src/wire/codec.js';
import { decodeKgrp2Announcement, KGRP2_ANNOUNCEMENT_LENGTH } from '../../src/wire/kgrp2Announcement.js';
import { MessageType } from '../../src/wire/header.js';
import * as S from '../wire/samples.js';
import { CodecError } from '../../src/errors.js';
import { checkOne, footprint, TIME_BOUND_MS, type Outcome } from './harness.js';
import { mutate } from './mutate.js';
import { fuzzSeed, Rng } from './prng.js';

const SEED = fuzzSeed();
console.log(`decoder fuzz: FUZZ_SEED=${SEED} (replay: FUZZ_SEED=${SEED} npx vitest run test/fuzz)`);

const RANDOM_INPUTS = 40_000;
const MUTATED_INPUTS = 80_000;
const KGRP2_INPUTS = 15_000;

// Keys and nonces from the seed, so the corpus (and every mutation of it) is the same on replay.
const corpusRng = new Rng(SEED, 0xc0ffee);
const keys = S.makeKeys(undefined, (n) => corpusRng.bytes(n));
const corpus = S.allSamples(keys);

/** Feeds some inputs as views at an odd offset inside a larger buffer, as a socket layer might. */
function maybeEmbed(rng: Rng, b: Uint8Array): Uint8Array {
  if (!rng.chance(0.125)) return b;
  const pre = rng.range(1, 17);
  const host = rng.bytes(pre + b.length + rng.range(0, 16));
  host.set(b, pre);
  return host.subarray(pre, pre + b.length);
}

class Tally {
  readonly codes = new Map<string, number>();
  decoded = 0;
  total = 0;
  add(o: Outcome): void {
    this.total++;
    if (o.ok) this.decoded++;
    else this.codes.set(o.code, (this.codes.get(o.code) ?? 0) + 1);
  }
  toString(): string {
    const codes = [...this.codes].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c}=${n}`).join(' ');
    return `${this.total} inputs, ${this.decoded} decoded; ${codes}`;
  }
}

describe(`decodeMessage fuzz (seed ${SEED})`, () => {
  it('the corpus holds a valid encoding of every message type', () => {
    const types = new Set(corpus.map((s) => decodeMessage(s.bytes).type));
    expect([...types].sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const s of corpus) {
      const fp = footprint(decodeMessage(s.bytes), s.bytes);
      expect(fp.foreign, s.name).toBeUndefined();
      expect(fp.leafBytes, s.name).toBeLessThanOrEqual(s.bytes.length);
    }
  });

  it('the footprint check catches a copy and an amplification', () => {
    const b = corpus[0]!.bytes;
    expect(footprint({ frame: { body: new Uint8Array(b) } }, b).foreign).toBe('frame.body');
    expect(footprint({ a: b, c: b.subarray(1) }, b).leafBytes).toBe(2 * b.length - 1);
    expect(footprint({ a: b.subarray(0, 8) }, b).foreign).toBeUndefined();
  });

  it('the harness fails a decoder that throws something else, copies, amplifies or hangs, with the case and input hex', () => {
    const input = new Uint8Array([1, 2, 3, 0xab]);
    const where = () => 'case 7, FUZZ_SEED=1';
    expect(() => checkOne(() => { throw new RangeError('offset out of bounds'); }, input, where)).toThrow(/RangeError: offset out of bounds, not a CodecError\n {2}case 7, FUZZ_SEED=1\n {2}input \(4 bytes\): 010203ab/);
    expect(() => checkOne((b) => ({ body: new Uint8Array(b) }), input, where)).toThrow(/body is not a view/);
    expect(() => checkOne((b) => ({ x: b, y: b }), input, where)).toThrow(/holds 8 bytes, more than the 4/);
    expect(() => checkOne(() => Array.from({ length: 1000 }, () => 0), input, where)).toThrow(/values for 4 input bytes/);
    expect(() => checkOne(() => { const t = performance.now(); while (performance.now() - t < TIME_BOUND_MS + 5); return null; }, input, where)).toThrow(/took .* ms/);
    expect(checkOne(() => { throw new CodecError('codec.x', 'x'); }, input, where)).toEqual({ ok: false, code: 'codec.x' });
  });

  it(`${RANDOM_INPUTS} random byte strings of 0…70,000 bytes`, () => {
    const t0 = performance.now();
    const tally = new Tally();
    for (let i = 0; i < RANDOM_INPUTS; i++) {
      const rng = new Rng(SEED, 1_000_000 + i);
      const r = rng.u32() / 2 ** 32;
      const len = r < 0.5 ? rng.int(128) : r < 0.85 ? rng.int(4096) : rng.int(70_001);
      const b = rng.bytes(len);
      // Half get a plausible start (version, suite, a type, no flags, a consistent body length) to reach the body decoders.
      if (rng.chance(0.5) && len >= 48) {
        b[0] = 1;
        b[1] = 1;
        b[2] = rng.range(1, 7);
        b[3] = 0;
        // u64 fields below 2^48, so they pass the safe-integer check.
        for (const o of [20, 28, 36]) b[o] = b[o + 1] = 0;
        const sig = [1, 2, 3, 5, 7].includes(b[2]) ? 64 : 0;
        if (rng.chance(0.8) && len >= 48 + sig) new DataView(b.buffer).setUint32(44, len - 48 - sig);
      }
      const input = maybeEmbed(rng, b);
      tally.add(checkOne(decodeMessage, input, () => `random case ${i}, FUZZ_SEED=${SEED}`));
    }
    console.log(`random: ${tally} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    expect(tally.total).toBe(RANDOM_INPUTS);
    for (const code of ['codec.version', 'codec.oversized', 'codec.truncated']) expect(tally.codes.get(code), code).toBeGreaterThan(0);
  });

  it(`${MUTATED_INPUTS} mutations of valid encodings of every message type`, () => {
    const t0 = performance.now();
    const tally = new Tally();
    const byType = new Map<number, number>();
    for (let i = 0; i < MUTATED_INPUTS; i++) {
      const rng = new Rng(SEED, 2_000_000 + i);
      const base = corpus[i % corpus.length]!;
      const { bytes, steps } = mutate(rng, base.bytes, () => rng.pick(corpus).bytes);
      const input = maybeEmbed(rng, bytes);
      const o = checkOne(decodeMessage, input, () => `mutation case ${i} of ${base.name} (${steps.join(' + ')}), FUZZ_SEED=${SEED}`);
      tally.add(o);
      if (o.ok) {
        const t = (o.result as { type: MessageType }).type;
        byType.set(t, (byType.get(t) ?? 0) + 1);
      }
    }
    console.log(`mutations: ${tally} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    // The mutations reach every body decoder: some survive as each type, and each refusal shows up.
    expect([...byType.keys()].sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    for (const code of [
      'codec.truncated', 'codec.trailing', 'codec.oversized', 'codec.version', 'codec.suite', 'codec.type', 'codec.flags',
      'codec.range', 'codec.epoch', 'codec.order', 'codec.length', 'codec.part', 'codec.reason', 'codec.payload', 'codec.content',
    ]) expect(tally.codes.get(code) ?? 0, code).toBeGreaterThan(0);
  });

  it('inputs around the size limit', () => {
    const rng = new Rng(SEED, 3);
    for (const n of [MAX_MESSAGE_LENGTH - 1, MAX_MESSAGE_LENGTH, MAX_MESSAGE_LENGTH + 1, 65_507, 70_000]) {
      for (let j = 0; j < 20; j++) {
        const b = rng.bytes(n);
        b.set([1, 1, rng.range(1, 7), 0]);
        b.fill(0, 20, 44);
        new DataView(b.buffer).setUint32(44, n - 48 - (j % 2 ? 64 : 0));
        const o = checkOne(decodeMessage, b, () => `size ${n} case ${j}, FUZZ_SEED=${SEED}`);
        if (n > MAX_MESSAGE_LENGTH) expect(o).toEqual({ ok: false, code: 'codec.oversized' });
      }
    }
  });
});

describe(`decodeKgrp2Announcement fuzz (seed ${SEED})`, () => {
  it(`${KGRP2_INPUTS} random and mutated announcements`, () => {
    const tally = new Tally();
    const valid = Array.from({ length: 8 }, (_, i) => S.kgrp2Announcement(keys, { epoch: i + 1, voids: i }));
    for (let i = 0; i < KGRP2_INPUTS; i++) {
      const rng = new Rng(SEED, 4_000_000 + i);
      let b: Uint8Array;
      let how: string;
      const r = rng.int(4);
      if (r === 0) {
        b = rng.bytes(rng.chance(0.5) ? KGRP2_ANNOUNCEMENT_LENGTH : rng.int(400));
        how = 'random';
      } else if (r === 1) {
        // One field set to an edge value: epoch, voids, notBefore, notAfter or graceMs.
        b = new Uint8Array(rng.pick(valid));
        const [offset, size] = rng.pick([[0, 8], [8, 2], [10, 8], [18, 8], [26, 4]] as const);
        const v = rng.pick([0n, 1n, 2n ** 32n - 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n]);
        for (let j = 0; j < size; j++) b[offset + j] = Number((v >> BigInt(8 * (size - 1 - j))) & 0xffn);
        how = `field at ${offset} = ${v}`;
      } else {
        const m = mutate(rng, rng.pick(valid), () => rng.pick(valid));
        b = m.bytes;
        how = m.steps.join(' + ');
      }
      tally.add(checkOne(decodeKgrp2Announcement, maybeEmbed(rng, b), () => `KGRP2 case ${i} (${how}), FUZZ_SEED=${SEED}`));
    }
    console.log(`KGRP2: ${tally}`);
    expect(tally.decoded).toBeGreaterThan(0);
    for (const code of ['codec.length', 'codec.validity', 'codec.epoch', 'codec.range']) expect(tally.codes.get(code) ?? 0, code).toBeGreaterThan(0);
  });
});
