/** The decoder refuses every malformed input with a CodecError whose code says what was wrong. */
import { describe, expect, it } from 'vitest';
import { CodecError } from '../../src/errors.js';
import { MAX_MESSAGE_LENGTH } from '../../src/wire/codec.js';
import { MAX_SEALED_PAYLOAD } from '../../src/wire/data.js';
import { MessageType } from '../../src/wire/header.js';
import { LEAVE_ENTRY_LENGTH, RekeyReason } from '../../src/wire/keyUpdate.js';
import { decodeMessage } from '../../src/wire/message.js';
import * as S from './samples.js';

const k = S.makeKeys();
const samples = S.allSamples(k);
const sampleCases = samples.map((s) => [s.name, s.bytes] as const);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (!(e instanceof CodecError)) throw new Error(`expected a CodecError, got ${String(e)}`, { cause: e });
    return e.code;
  }
  throw new Error('expected a CodecError, got a result');
}
const decodeCode = (b: Uint8Array) => codeOf(() => decodeMessage(b));

function setField(bytes: Uint8Array, f: (v: DataView) => void): Uint8Array {
  const b = new Uint8Array(bytes);
  f(new DataView(b.buffer));
  return b;
}

function u8s(...parts: Array<number[] | Uint8Array>): Uint8Array {
  const out: number[] = [];
  for (const p of parts) out.push(...p);
  return new Uint8Array(out);
}
const be16 = (n: number) => [n >> 8, n & 0xff];
const be32 = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const be64 = (n: number) => [...be32(Math.floor(n / 2 ** 32)), ...be32(n >>> 0)];

/** A LeaveKeyUpdate body with the given entries (filler wraps). */
function leaveBody(o: { reason?: number; flags?: number; part?: number; parts?: number; count?: number; ids: number[] }): Uint8Array {
  return u8s(
    [o.reason ?? RekeyReason.Leave, o.flags ?? 0], be16(o.part ?? 0), be16(o.parts ?? 1), be16(o.count ?? o.ids.length),
    ...o.ids.map((id) => u8s(be32(id), new Uint8Array(60).fill(id & 0xff))),
  );
}

/** A data body: content type, origin, 60-byte wrap, u32 payload length and payload. */
function dataBody(o: { contentType?: number; payloadLength?: number; payload: Uint8Array }): Uint8Array {
  return u8s([o.contentType ?? 0], be32(1), be32(2), be64(3), new Uint8Array(60), be32(o.payloadLength ?? o.payload.length), o.payload);
}

describe('the hand-built frames are right when nothing is broken', () => {
  it('a rawFrame of each good body decodes', () => {
    expect(decodeMessage(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids: [1, 2, 3] }) })).type).toBe(MessageType.LeaveKeyUpdate);
    expect(decodeMessage(S.rawFrame({ type: MessageType.DataUp, body: dataBody({ payload: new Uint8Array(28) }) })).type).toBe(MessageType.DataUp);
    expect(decodeMessage(S.rawFrame({ type: MessageType.GroupEnd, body: new Uint8Array([1]) })).type).toBe(MessageType.GroupEnd);
    expect(decodeMessage(S.rawFrame({ type: MessageType.JoinKeyUpdate, body: u8s(be64(6), new Uint8Array(60)) })).type).toBe(MessageType.JoinKeyUpdate);
  });
});

describe('framing', () => {
  it.each(sampleCases)('%s: truncated at every length → codec.truncated', (_name, bytes) => {
    // Every prefix, for short messages; for the 64 kB one, every length in the header and the last 2,000.
    const lengths = [...Array(bytes.length).keys()].filter((n) => bytes.length < 5000 || n < 200 || n > bytes.length - 2000 || n % 97 === 0);
    for (const n of lengths) expect(decodeCode(bytes.subarray(0, n)), `length ${n}`).toBe('codec.truncated');
  });

  it.each(sampleCases)('%s: trailing bytes → codec.trailing', (_name, bytes) => {
    for (const extra of [1, 2, 63, 64, 65, 500]) {
      if (bytes.length + extra > MAX_MESSAGE_LENGTH) continue;
      const b = new Uint8Array(bytes.length + extra);
      b.set(bytes);
      expect(decodeCode(b), `+${extra}`).toBe('codec.trailing');
    }
  });

  it('oversized (> 65,000 bytes) → codec.oversized, whatever the header says', () => {
    for (const n of [MAX_MESSAGE_LENGTH + 1, 70_000, 1 << 20]) {
      const body = new Uint8Array(n - 48 - 64);
      expect(decodeCode(S.rawFrame({ type: MessageType.DataMethod2, body }))).toBe('codec.oversized');
      expect(decodeCode(new Uint8Array(n))).toBe('codec.oversized');
    }
    // 65,000 exactly is a frame like any other (here: an unknown content type inside it).
    expect(decodeCode(S.rawFrame({ type: MessageType.DataUp, body: new Uint8Array(MAX_MESSAGE_LENGTH - 48).fill(0xff) }))).toBe('codec.content');
  });

  it.each(sampleCases)('%s: unknown version, suite, type, reserved flags', (_name, bytes) => {
    for (const v of [0, 2, 255]) expect(decodeCode(setField(bytes, (d) => d.setUint8(S.OFF.version, v)))).toBe('codec.version');
    for (const s of [0, 2, 255]) expect(decodeCode(setField(bytes, (d) => d.setUint8(S.OFF.suite, s)))).toBe('codec.suite');
    for (const t of [0, 8, 9, 127, 255]) expect(decodeCode(setField(bytes, (d) => d.setUint8(S.OFF.type, t)))).toBe('codec.type');
    for (const f of [1, 2, 0x80, 0xff]) expect(decodeCode(setField(bytes, (d) => d.setUint8(S.OFF.flags, f)))).toBe('codec.flags');
  });

  it.each(sampleCases)('%s: body length field wrong → truncated or trailing', (_name, bytes) => {
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(S.OFF.bodyLength);
    for (const bad of [len + 1, len + 64, 0xffff_ffff, 2 ** 31]) {
      expect(decodeCode(setField(bytes, (d) => d.setUint32(S.OFF.bodyLength, bad)))).toBe('codec.truncated');
    }
    if (len > 0) expect(decodeCode(setField(bytes, (d) => d.setUint32(S.OFF.bodyLength, len - 1)))).toBe('codec.trailing');
    expect(decodeCode(setField(bytes, (d) => d.setUint32(S.OFF.bodyLength, 0)))).toMatch(/^codec\.(trailing|truncated)$/);
  });

  it('a signed type missing its signature is truncated; an unsigned type with one has trailing bytes', () => {
    expect(decodeCode(S.rawFrame({ type: MessageType.GroupEnd, body: new Uint8Array([1]), signature: null }))).toBe('codec.truncated');
    const up = S.allSamples(k).find((s) => s.name === 'DataUp')!.bytes;
    expect(decodeCode(u8s(up, new Uint8Array(64)))).toBe('codec.trailing');
  });

  it('u64 fields above 2^53 − 1 → codec.range', () => {
    const hb = samples.find((s) => s.name === 'Heartbeat')!.bytes;
    for (const off of [S.OFF.epoch, S.OFF.sequence, S.OFF.timestamp]) {
      expect(decodeCode(setField(hb, (d) => d.setBigUint64(off, 2n ** 53n)))).toBe('codec.range');
      expect(decodeCode(setField(hb, (d) => d.setBigUint64(off, 2n ** 64n - 1n)))).toBe('codec.range');
      expect(decodeMessage(setField(hb, (d) => d.setBigUint64(off, 2n ** 53n - 1n))).type).toBe(MessageType.Heartbeat);
    }
  });

  it('refuses what is not bytes with codec.type', () => {
    for (const v of [undefined, null, 'abc', [1, 1, 1], new Uint16Array(60), new ArrayBuffer(60)]) {
      expect(decodeCode(v as unknown as Uint8Array)).toBe('codec.type');
    }
  });
});

describe('bodies', () => {
  it('JoinKeyUpdate: prevEpoch not below the epoch → codec.epoch; wrong body length', () => {
    for (const prev of [7, 8, 2 ** 40]) {
      expect(decodeCode(S.rawFrame({ type: MessageType.JoinKeyUpdate, epoch: 7, body: u8s(be64(prev), new Uint8Array(60)) }))).toBe('codec.epoch');
    }
    expect(decodeCode(S.rawFrame({ type: MessageType.JoinKeyUpdate, body: u8s(be64(6), new Uint8Array(59)) }))).toBe('codec.truncated');
    expect(decodeCode(S.rawFrame({ type: MessageType.JoinKeyUpdate, body: u8s(be64(6), new Uint8Array(61)) }))).toBe('codec.trailing');
  });

  it('LeaveKeyUpdate: entries out of order or duplicated → codec.order', () => {
    const frame = (ids: number[]) => S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids }) });
    expect(decodeCode(frame([2, 1]))).toBe('codec.order');
    expect(decodeCode(frame([1, 5, 3, 9]))).toBe('codec.order');
    expect(decodeCode(frame([4, 4]))).toBe('codec.order');
    expect(decodeCode(frame([0xffff_ffff, 0]))).toBe('codec.order');
    expect(decodeMessage(frame([1, 2, 0xffff_ffff])).type).toBe(MessageType.LeaveKeyUpdate);
  });

  it('LeaveKeyUpdate: count not matching the entries → codec.length; above 1,000 → codec.oversized', () => {
    const ids = [1, 2, 3];
    for (const count of [0, 2, 4, 999]) {
      expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids, count }) })), `count ${count}`).toBe('codec.length');
    }
    const partial = leaveBody({ ids });
    expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: partial.subarray(0, partial.length - 1) }))).toBe('codec.length');
    expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: u8s(partial, [0]) }))).toBe('codec.length');
    for (const count of [1001, 0xffff]) {
      expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids, count }) }))).toBe('codec.oversized');
    }
    expect(LEAVE_ENTRY_LENGTH).toBe(64);
  });

  it('LeaveKeyUpdate: parts out of range → codec.part', () => {
    for (const [part, parts] of [[0, 0], [1, 1], [5, 3], [0xffff, 0xffff], [1, 0]] as const) {
      expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids: [1], part, parts }) })), `${part}/${parts}`).toBe('codec.part');
    }
    expect(decodeMessage(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids: [1], part: 0xfffe, parts: 0xffff }) })).type).toBe(MessageType.LeaveKeyUpdate);
  });

  it('LeaveKeyUpdate: unknown reason → codec.reason, unknown flags → codec.flags', () => {
    for (const reason of [0, 7, 255]) expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids: [1], reason }) }))).toBe('codec.reason');
    for (const flags of [2, 3, 0x80]) expect(decodeCode(S.rawFrame({ type: MessageType.LeaveKeyUpdate, body: leaveBody({ ids: [1], flags }) }))).toBe('codec.flags');
  });

  it.each([MessageType.DataMethod1, MessageType.DataMethod2, MessageType.DataUp])('Data type %i: payload shorter than nonce + tag → codec.payload', (type) => {
    for (const n of [0, 1, 12, 27]) expect(decodeCode(S.rawFrame({ type, body: dataBody({ payload: new Uint8Array(n) }) })), `${n}`).toBe('codec.payload');
    expect(decodeMessage(S.rawFrame({ type, body: dataBody({ payload: new Uint8Array(28) }) })).type).toBe(type);
  });

  it('Data: a payload length above the bound → codec.oversized, above what is present → codec.truncated, unknown content → codec.content', () => {
    const type = MessageType.DataMethod1;
    for (const n of [MAX_SEALED_PAYLOAD + 1, 0xffff_ffff]) {
      expect(decodeCode(S.rawFrame({ type, body: dataBody({ payload: new Uint8Array(28), payloadLength: n }) }))).toBe('codec.oversized');
    }
    expect(decodeCode(S.rawFrame({ type, body: dataBody({ payload: new Uint8Array(28), payloadLength: 29 }) }))).toBe('codec.truncated');
    expect(decodeCode(S.rawFrame({ type, body: dataBody({ payload: new Uint8Array(29), payloadLength: 28 }) }))).toBe('codec.trailing');
    for (const c of [2, 255]) expect(decodeCode(S.rawFrame({ type, body: dataBody({ contentType: c, payload: new Uint8Array(28) }) }))).toBe('codec.content');
  });

  it('Heartbeat: body not 12 bytes', () => {
    expect(decodeCode(S.rawFrame({ type: MessageType.Heartbeat, body: new Uint8Array(11) }))).toBe('codec.truncated');
    expect(decodeCode(S.rawFrame({ type: MessageType.Heartbeat, body: new Uint8Array(13) }))).toBe('codec.trailing');
    expect(decodeMessage(S.rawFrame({ type: MessageType.Heartbeat, body: new Uint8Array(12) })).type).toBe(MessageType.Heartbeat);
  });

  it('GroupEnd: unknown reason → codec.reason; empty or long body', () => {
    for (const r of [0, 3, 255]) expect(decodeCode(S.rawFrame({ type: MessageType.GroupEnd, body: new Uint8Array([r]) }))).toBe('codec.reason');
    expect(decodeCode(S.rawFrame({ type: MessageType.GroupEnd, body: new Uint8Array(0) }))).toBe('codec.truncated');
    expect(decodeCode(S.rawFrame({ type: MessageType.GroupEnd, body: new Uint8Array([1, 0]) }))).toBe('codec.trailing');
  });
});
