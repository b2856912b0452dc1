/**
 * Fuzzing the control-plane schemas: random JSON values and mutations of valid bodies. safeParse
 * never throws, and a body it accepts carries no field the schema does not know (strictness).
 * Reproduce with FUZZ_SEED=<seed> npx vitest run test/fuzz.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CatchUpResponse, GroupName, JoinGrant, JoinRequest, Key32, LeaveRequest, RefreshRequest, RefreshResponse, TransportDescriptor,
} from '../../src/wire/control.js';
import { KGRP2_ANNOUNCEMENT_LENGTH } from '../../src/wire/kgrp2Announcement.js';
import { fuzzSeed, Rng } from './prng.js';

const SEED = fuzzSeed();
console.log(`control fuzz: FUZZ_SEED=${SEED}`);

const INPUTS = 30_000;

const SCHEMAS: Record<string, z.ZodType> = {
  JoinRequest, JoinGrant, RefreshRequest, RefreshResponse, LeaveRequest, CatchUpResponse, TransportDescriptor, GroupName, Key32,
};

const FIELD_NAMES = [
  'group', 'role', 'endpoint', 'host', 'port', 'version', 'memberId', 'memberKey', 'subgroup', 'id', 'epoch', 'key', 'agent', 'name',
  'publicKey', 'originators', 'expiresAt', 'refreshMs', 'heartbeatMs', 'transport', 'kind', 'address', 'ttl', 'interface', 'agentHost',
  'agentPort', 'path', 'channel', 'groupKeys', 'delegation', 'until', 'acl', '__proto__', 'constructor', 'toString', 'hasOwnProperty', '',
];
const STRINGS = ['', 'v1', 'member', 'intermediary', 'multicast', 'unicast', 'sse', 'memory', 'conf.example', '239.1.2.3', 'a', '=', '==', 'A'.repeat(44), '\u0000', '\ud800', '💥'];
const NUMBERS = [0, -0, 1, -1, 0.5, 255, 256, 65_535, 65_536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, Number.MAX_VALUE, -Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];

function randomString(rng: Rng): string {
  const r = rng.int(6);
  if (r === 0) return rng.pick(STRINGS);
  if (r === 1) return Buffer.from(rng.bytes(rng.pick([0, 16, 24, 31, 32, 33, 64, KGRP2_ANNOUNCEMENT_LENGTH, KGRP2_ANNOUNCEMENT_LENGTH + 1]))).toString('base64');
  if (r === 2) return 'a'.repeat(rng.pick([1, 63, 127, 128, 129, 253, 254, 100_000]));
  const n = rng.int(r === 3 ? 300 : 40);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rng.chance(0.8) ? rng.range(0x20, 0x7e) : rng.int(0x10000));
  return s;
}

function randomValue(rng: Rng, depth: number): unknown {
  const r = rng.int(depth > 3 ? 5 : 8);
  switch (r) {
    case 0: return null;
    case 1: return rng.chance(0.5);
    case 2: return rng.chance(0.5) ? rng.pick(NUMBERS) : (rng.u32() - 2 ** 31) * (rng.chance(0.5) ? 1 : 1 / 7);
    case 3:
    case 4: return randomString(rng);
    case 5: return Array.from({ length: rng.int(rng.chance(0.95) ? 4 : 40) }, () => randomValue(rng, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let n = rng.int(6); n > 0; n--) {
        const key = rng.chance(0.8) ? rng.pick(FIELD_NAMES) : randomString(rng);
        Object.defineProperty(o, key, { value: randomValue(rng, depth + 1), enumerable: true, configurable: true, writable: true });
      }
      return o;
    }
  }
}

const b64 = (rng: Rng, n: number) => Buffer.from(rng.bytes(n)).toString('base64');
function validBodies(rng: Rng): Record<string, unknown> {
  return {
    JoinRequest: { group: 'conf.example', role: 'member', endpoint: { host: '10.0.0.2', port: 5004 } },
    JoinGrant: {
      version: 'v1', group: 'conf.example', memberId: 17, memberKey: b64(rng, 32),
      subgroup: { id: 9, epoch: 4, key: b64(rng, 32) }, agent: { name: 'agent-a', publicKey: b64(rng, 32) },
      originators: [b64(rng, 32)], expiresAt: 1_700_000_060_000, refreshMs: 20_000, heartbeatMs: 5_000,
      transport: { kind: 'unicast', agentHost: 'agent.example', agentPort: 9000 },
      groupKeys: [b64(rng, KGRP2_ANNOUNCEMENT_LENGTH)], delegation: { until: null, acl: [] },
    },
    RefreshRequest: { memberId: 3 },
    RefreshResponse: { expiresAt: 1 },
    LeaveRequest: { memberId: 3 },
    CatchUpResponse: { subgroup: { id: 9, epoch: 5, key: b64(rng, 32) }, groupKeys: [], expiresAt: 2 },
    TransportDescriptor: { kind: 'multicast', address: '239.1.2.3', port: 5004, ttl: 1, agentHost: '10.0.0.1', agentPort: 7000 },
    GroupName: 'conf.example',
    Key32: b64(rng, 32),
  };
}

/** Replaces, deletes or adds one field somewhere in a copy of `v`. */
function mutateBody(rng: Rng, v: unknown, depth = 0): unknown {
  if (v === null || typeof v !== 'object' || (depth > 0 && rng.chance(0.3))) return randomValue(rng, 2);
  const copy: Record<string, unknown> = Array.isArray(v) ? ([...v] as unknown as Record<string, unknown>) : { ...(v as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const r = rng.int(4);
  if (r === 0 || keys.length === 0) copy[rng.chance(0.7) ? rng.pick(FIELD_NAMES) : randomString(rng)] = randomValue(rng, 2);
  else if (r === 1) delete copy[rng.pick(keys)];
  else {
    const k = rng.pick(keys);
    copy[k] = mutateBody(rng, copy[k], depth + 1);
  }
  return copy;
}

function shapeKeys(s: z.ZodType): Set<string> | undefined {
  return s instanceof z.ZodObject ? new Set(Object.keys(s.shape)) : undefined;
}

describe(`control schema fuzz (seed ${SEED})`, () => {
  it(`${INPUTS} random JSON values and mutated bodies: safeParse never throws, accepts only known fields`, () => {
    const names = Object.keys(SCHEMAS);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < INPUTS; i++) {
      const rng = new Rng(SEED, 5_000_000 + i);
      const name = names[i % names.length]!;
      const schema = SCHEMAS[name]!;
      const r = rng.int(20);
      const value = r === 0 ? validBodies(rng)[name] : r < 8 ? randomValue(rng, 0) : mutateBody(rng, validBodies(rng)[name]);
      let res: { success: boolean; data?: unknown };
      try {
        res = schema.safeParse(value);
      } catch (e) {
        throw new Error(`${name}.safeParse threw ${String(e)}\n  case ${i}, FUZZ_SEED=${SEED}\n  input: ${JSON.stringify(value)?.slice(0, 4000)}`, { cause: e });
      }
      if (typeof res.success !== 'boolean') throw new Error(`${name}.safeParse returned no verdict, case ${i}`);
      if (res.success) {
        accepted++;
        const known = shapeKeys(schema);
        if (known && value && typeof value === 'object') {
          for (const k of Object.keys(value)) {
            if (!known.has(k)) throw new Error(`${name} accepted unknown field ${JSON.stringify(k)}, case ${i}, FUZZ_SEED=${SEED}`);
          }
        }
      } else refused++;
    }
    console.log(`control: ${INPUTS} inputs, ${accepted} accepted, ${refused} refused`);
    expect(accepted).toBeGreaterThan(INPUTS / 40);
    expect(refused).toBeGreaterThan(INPUTS / 2);
  });

  it('deeply nested and very large values are refused without throwing', () => {
    let deep: unknown = [];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    let deepObj: unknown = {};
    for (let i = 0; i < 10_000; i++) deepObj = { acl: deepObj };
    const huge = Array.from({ length: 100_000 }, (_, i) => i);
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      for (const v of [deep, deepObj, huge, { group: 'a'.repeat(1_000_000) }, { delegation: { until: null, acl: huge } }]) {
        expect(() => schema.safeParse(v), name).not.toThrow();
        expect(schema.safeParse(v).success, name).toBe(false);
      }
    }
  });
});
