/** Signed types: the agent's signature covers header ‖ body, and any flipped bit breaks it. */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { generateSigningKey, verifyBytes } from '../../src/crypto/sign.js';
import { CodecError } from '../../src/errors.js';
import { HEADER_LENGTH, isSignedType, MessageType } from '../../src/wire/header.js';
import { decodeMessage } from '../../src/wire/message.js';
import * as S from './samples.js';

const k = S.makeKeys();
const signed = S.allSamples(k).filter((s) => s.name !== 'LeaveKeyUpdate (1,000 entries)' && isSignedType(s.bytes[2] as MessageType));

/** True if the flipped message is refused by the decoder or its signature fails. */
function refused(bytes: Uint8Array): boolean {
  let m;
  try {
    m = decodeMessage(bytes);
  } catch (e) {
    if (e instanceof CodecError) return true;
    throw e;
  }
  return !m.frame.signed || !verifyBytes(k.agent.publicKey, m.frame.signed.covered, m.frame.signed.signature);
}

describe('agent signatures', () => {
  it('the signed types are exactly JoinKeyUpdate, LeaveKeyUpdate, Heartbeat, DataMethod2 and GroupEnd', () => {
    const types = Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number');
    expect(types.filter(isSignedType)).toEqual([1, 2, 3, 5, 7]);
    expect(signed.map((s) => s.name)).toEqual(['JoinKeyUpdate', 'LeaveKeyUpdate', 'LeaveKeyUpdate (empty, partial)', 'Heartbeat', 'DataMethod2', 'GroupEnd']);
  });

  it.each(signed.map((s) => [s.name, s.bytes] as const))('%s: verifies over frame.signed.covered = header ‖ body', (_name, bytes) => {
    const m = decodeMessage(bytes);
    const sig = m.frame.signed!;
    expect(sig.signature.length).toBe(64);
    expect(toHex(sig.covered)).toBe(toHex(bytes.subarray(0, bytes.length - 64)));
    expect(toHex(sig.signature)).toBe(toHex(bytes.subarray(bytes.length - 64)));
    expect(sig.covered.length).toBe(HEADER_LENGTH + m.frame.body.length);
    expect(verifyBytes(k.agent.publicKey, sig.covered, sig.signature)).toBe(true);
    expect(verifyBytes(generateSigningKey().publicKey, sig.covered, sig.signature)).toBe(false);
    expect(verifyBytes(k.originator.publicKey, sig.covered, sig.signature)).toBe(false);
  });

  it.each(signed.map((s) => [s.name, s.bytes] as const))('%s: any flipped bit in header, body or signature fails', (_name, bytes) => {
    let checked = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        // Every bit of the header and signature; every bit of the first and last 64 body bytes, one per byte elsewhere.
        const inBody = i >= HEADER_LENGTH && i < bytes.length - 64;
        if (inBody && i >= HEADER_LENGTH + 64 && i < bytes.length - 128 && bit !== i % 8) continue;
        const b = new Uint8Array(bytes);
        b[i] = b[i]! ^ (1 << bit);
        expect(refused(b), `byte ${i} bit ${bit}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual((HEADER_LENGTH + 64) * 8);
  });

  it('the signature is not transferable between messages of the same agent', () => {
    const a = S.heartbeat(k);
    const b = S.heartbeat(k, { sequence: 1_700_000_000_000_124 });
    const swapped = new Uint8Array(b);
    swapped.set(a.subarray(a.length - 64), b.length - 64);
    expect(refused(swapped)).toBe(true);
    expect(refused(b)).toBe(false);
  });

  it('an unsigned DataMethod1 retyped as DataMethod2 does not carry a valid signature', () => {
    const m1 = S.allSamples(k).find((s) => s.name === 'DataMethod1')!.bytes;
    const forged = new Uint8Array(m1.length + 64);
    forged.set(m1);
    forged[2] = MessageType.DataMethod2;
    expect(refused(forged)).toBe(true);
  });
});
