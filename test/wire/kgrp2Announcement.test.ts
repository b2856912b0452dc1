/** The originator-signed KGRP2 announcement (paper §7). */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { signBytes, verifyBytes } from '../../src/crypto/sign.js';
import { CodecError } from '../../src/errors.js';
import { groupIdFor } from '../../src/wire/header.js';
import {
  decodeKgrp2Announcement, encodeKgrp2Announcement, KGRP2_ANNOUNCEMENT_LENGTH, kgrp2SignedBytes, originatorKeyId,
} from '../../src/wire/kgrp2Announcement.js';
import * as S from './samples.js';

const k = S.makeKeys();
const group = groupIdFor(S.GROUP_NAME);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (!(e instanceof CodecError)) throw new Error(`expected a CodecError, got ${String(e)}`, { cause: e });
    return e.code;
  }
  throw new Error('expected a CodecError, got a result');
}

/** Encodes fields with a filler signature: the decoder's checks do not depend on it. */
function unsigned(over: Parameters<typeof S.kgrp2Fields>[1]): Uint8Array {
  return encodeKgrp2Announcement({ ...S.kgrp2Fields(k, over), signature: new Uint8Array(64) });
}

describe('KGRP2 announcement', () => {
  it('is 138 bytes and round-trips every field; the originator signature verifies', () => {
    expect(KGRP2_ANNOUNCEMENT_LENGTH).toBe(8 + 8 + 8 + 8 + 4 + 32 + 8 + 64);
    const fields = S.kgrp2Fields(k, { epoch: 2 ** 53 - 1, voids: 2 ** 53 - 2, graceMs: 0xffff_ffff });
    const signature = signBytes(k.originator, kgrp2SignedBytes(group, fields));
    const bytes = encodeKgrp2Announcement({ ...fields, signature });
    expect(bytes.length).toBe(KGRP2_ANNOUNCEMENT_LENGTH);
    const a = decodeKgrp2Announcement(bytes);
    const { key, originatorKeyId: id, signature: sig, ...rest } = a;
    expect(rest).toEqual({ epoch: 2 ** 53 - 1, voids: 2 ** 53 - 2, notBefore: fields.notBefore, notAfter: fields.notAfter, graceMs: 0xffff_ffff });
    expect(toHex(key)).toBe(toHex(fields.key));
    expect(toHex(id)).toBe(toHex(originatorKeyId(k.originator.publicKey)));
    expect(verifyBytes(k.originator.publicKey, kgrp2SignedBytes(group, a), sig)).toBe(true);
  });

  it('the signature binds the group and every field', () => {
    const a = decodeKgrp2Announcement(S.kgrp2Announcement(k));
    expect(verifyBytes(k.originator.publicKey, kgrp2SignedBytes(groupIdFor('other.example'), a), a.signature)).toBe(false);
    expect(verifyBytes(k.agent.publicKey, kgrp2SignedBytes(group, a), a.signature)).toBe(false);
    const bytes = S.kgrp2Announcement(k);
    for (let i = 0; i < KGRP2_ANNOUNCEMENT_LENGTH - 64; i++) {
      const b = new Uint8Array(bytes);
      b[i] = b[i]! ^ (1 << (i % 8));
      let ok: boolean;
      try {
        const d = decodeKgrp2Announcement(b);
        ok = verifyBytes(k.originator.publicKey, kgrp2SignedBytes(group, d), d.signature);
      } catch (e) {
        if (!(e instanceof CodecError)) throw e;
        ok = false;
      }
      expect(ok, `byte ${i}`).toBe(false);
    }
  });

  it('the signed bytes are "iolus/kgrp2/v1" ‖ group ‖ the announcement without its signature', () => {
    const bytes = S.kgrp2Announcement(k);
    const a = decodeKgrp2Announcement(bytes);
    const signedBytes = kgrp2SignedBytes(group, a);
    expect(Buffer.from(signedBytes.subarray(0, 14)).toString()).toBe('iolus/kgrp2/v1');
    expect(toHex(signedBytes.subarray(14, 22))).toBe(toHex(group));
    expect(toHex(signedBytes.subarray(22))).toBe(toHex(bytes.subarray(0, KGRP2_ANNOUNCEMENT_LENGTH - 64)));
  });

  it('wrong length → codec.length', () => {
    const bytes = S.kgrp2Announcement(k);
    for (const n of [0, 1, 68, KGRP2_ANNOUNCEMENT_LENGTH - 1]) expect(codeOf(() => decodeKgrp2Announcement(bytes.subarray(0, n)))).toBe('codec.length');
    for (const n of [1, 64, 1000]) {
      const b = new Uint8Array(KGRP2_ANNOUNCEMENT_LENGTH + n);
      b.set(bytes);
      expect(codeOf(() => decodeKgrp2Announcement(b))).toBe('codec.length');
    }
  });

  it('notAfter ≤ notBefore → codec.validity', () => {
    expect(codeOf(() => decodeKgrp2Announcement(unsigned({ notBefore: 1000, notAfter: 1000 })))).toBe('codec.validity');
    expect(codeOf(() => decodeKgrp2Announcement(unsigned({ notBefore: 1000, notAfter: 999 })))).toBe('codec.validity');
    expect(codeOf(() => decodeKgrp2Announcement(unsigned({ notBefore: 2 ** 53 - 1, notAfter: 0 })))).toBe('codec.validity');
    expect(decodeKgrp2Announcement(unsigned({ notBefore: 1000, notAfter: 1001 })).notAfter).toBe(1001);
  });

  it('epoch 0 → codec.epoch; u64 fields above 2^53 − 1 → codec.range', () => {
    expect(codeOf(() => decodeKgrp2Announcement(unsigned({ epoch: 0 })))).toBe('codec.epoch');
    expect(decodeKgrp2Announcement(unsigned({ epoch: 1 })).epoch).toBe(1);
    // epoch, voids, notBefore, notAfter
    expect(codeOf(() => decodeKgrp2Announcement(unsigned({ epoch: 5, voids: 5 })))).toBe('codec.epoch');
    for (const off of [0, 8, 16, 24]) {
      const b = unsigned({});
      new DataView(b.buffer).setBigUint64(off, 2n ** 53n);
      expect(codeOf(() => decodeKgrp2Announcement(b)), `offset ${off}`).toBe('codec.range');
    }
  });

  it('the encoder checks its byte fields, naming them', () => {
    const f = S.kgrp2Fields(k);
    expect(() => encodeKgrp2Announcement({ ...f, key: new Uint8Array(16), signature: new Uint8Array(64) })).toThrow(/^key:/);
    expect(() => encodeKgrp2Announcement({ ...f, originatorKeyId: new Uint8Array(7), signature: new Uint8Array(64) })).toThrow(/^originatorKeyId:/);
    expect(() => encodeKgrp2Announcement({ ...f, signature: new Uint8Array(63) })).toThrow(/^signature:/);
  });

  it('originatorKeyId is 8 bytes, stable and distinct per key', () => {
    expect(originatorKeyId(k.originator.publicKey).length).toBe(8);
    expect(toHex(originatorKeyId(k.originator.publicKey))).toBe(toHex(originatorKeyId(new Uint8Array(k.originator.publicKey))));
    expect(toHex(originatorKeyId(k.originator.publicKey))).not.toBe(toHex(originatorKeyId(k.agent.publicKey)));
  });
});
