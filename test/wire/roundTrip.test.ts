/** A round trip per message type: encode with real keys → decodeMessage → the same fields, keys that unwrap. */
import { describe, expect, it } from 'vitest';
import { open, unwrapKey } from '../../src/crypto/aead.js';
import { toHex } from '../../src/crypto/bytes.js';
import { verifyBytes } from '../../src/crypto/sign.js';
import { ContentType, MAX_PAYLOAD, payloadAad } from '../../src/wire/data.js';
import { EndReason } from '../../src/wire/groupEnd.js';
import { encodeFrame, groupIdFor, HEADER_LENGTH, isSignedType, MessageType, subgroupIdFor, type Frame } from '../../src/wire/header.js';
import { findLeaveEntry, leaveEntryAad, MAX_LEAVE_ENTRIES_PER_PART, RekeyReason } from '../../src/wire/keyUpdate.js';
import { decodeKgrp2Announcement } from '../../src/wire/kgrp2Announcement.js';
import { MAX_MESSAGE_LENGTH } from '../../src/wire/codec.js';
import { decodeMessage } from '../../src/wire/message.js';
import * as S from './samples.js';

const k = S.makeKeys();
const hex = toHex;

function expectHeader(f: Frame, type: MessageType, over: Partial<ReturnType<typeof S.header>> = {}): void {
  const { group, ...rest } = S.header(type, over);
  const { group: gotGroup, ...gotRest } = f.header;
  expect(gotRest).toEqual(rest);
  expect(hex(gotGroup)).toBe(hex(group));
  expect(f.headerBytes.length).toBe(HEADER_LENGTH);
  if (isSignedType(type)) expect(verifyBytes(k.agent.publicKey, f.signed!.covered, f.signed!.signature)).toBe(true);
  else expect(f.signed).toBeUndefined();
}

describe('round trip per message type', () => {
  it('JoinKeyUpdate: prevEpoch, and {K\'}K unwraps under the header', () => {
    const m = decodeMessage(S.joinKeyUpdate(k));
    if (m.type !== MessageType.JoinKeyUpdate) throw new Error(`decoded ${m.type}`);
    expectHeader(m.frame, MessageType.JoinKeyUpdate);
    expect(m.body.prevEpoch).toBe(6);
    expect(hex(unwrapKey(k.subgroupKey, m.body.wrapped, m.frame.headerBytes))).toBe(hex(k.nextKey));
  });

  it('LeaveKeyUpdate: reason, parts, sorted entries, each {K\'}Kmember unwraps under header ‖ member id', () => {
    const m = decodeMessage(S.leaveKeyUpdate(k, { reason: RekeyReason.Expel, part: 1, parts: 2 }));
    if (m.type !== MessageType.LeaveKeyUpdate) throw new Error(`decoded ${m.type}`);
    expectHeader(m.frame, MessageType.LeaveKeyUpdate, { epoch: 8 });
    const { reason, partial, part, parts, count } = m.body;
    expect({ reason, partial, part, parts, count }).toEqual({ reason: RekeyReason.Expel, partial: false, part: 1, parts: 2, count: 5 });
    expect(m.body.entries.map((e) => e.memberId)).toEqual([2, 5, 9, 1000, 70_000]);
    for (const [id, key] of k.memberKeys) {
      const e = findLeaveEntry(m.body, id)!;
      expect(hex(unwrapKey(key, e.wrapped, leaveEntryAad(m.frame.headerBytes, id)))).toBe(hex(k.nextKey));
      // Bound to the member id: another member's AAD does not open it.
      expect(() => unwrapKey(key, e.wrapped, leaveEntryAad(m.frame.headerBytes, id + 1))).toThrow();
    }
    for (const absent of [0, 1, 3, 999, 1001, 70_001]) expect(findLeaveEntry(m.body, absent)).toBeUndefined();
  });

  it('LeaveKeyUpdate: 1,000 entries fit one datagram; 1,001 are refused by the encoder', () => {
    const ids = [...Array(MAX_LEAVE_ENTRIES_PER_PART).keys()].map((i) => i + 1);
    const bytes = S.leaveKeyUpdate(k, { memberIds: ids, partial: true, reason: RekeyReason.Batch });
    expect(bytes.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
    const m = decodeMessage(bytes);
    if (m.type !== MessageType.LeaveKeyUpdate) throw new Error(`decoded ${m.type}`);
    expect(m.body.partial).toBe(true);
    expect(m.body.entries.length).toBe(1000);
    for (const id of [1, 500, 1000]) expect(findLeaveEntry(m.body, id)?.memberId).toBe(id);
    expect(() => S.leaveKeyUpdate(k, { memberIds: [...ids, 1001] })).toThrow(RangeError);
    expect(() => S.leaveKeyUpdate(k, { memberIds: [1, 1] })).toThrow(/ascending/);
    expect(() => S.leaveKeyUpdate(k, { part: 1, parts: 1 })).toThrow(/part/);
  });

  it('Heartbeat: groupEpoch and intervalMs', () => {
    const m = decodeMessage(S.heartbeat(k, { epoch: 2 ** 53 - 1 }));
    if (m.type !== MessageType.Heartbeat) throw new Error(`decoded ${m.type}`);
    expectHeader(m.frame, MessageType.Heartbeat, { epoch: 2 ** 53 - 1 });
    expect(m.body).toEqual({ groupEpoch: 3, intervalMs: 5000 });
  });

  it.each([MessageType.DataMethod1, MessageType.DataMethod2, MessageType.DataUp] as const)('Data type %i: origin, data key under the hop header, payload under group ‖ origin', (type) => {
    const payload = new TextEncoder().encode('hello, subgroup');
    const m = decodeMessage(S.data(k, type, payload));
    if (m.type !== type) throw new Error(`decoded ${m.type}`);
    expectHeader(m.frame, type, { sender: type === MessageType.DataMethod2 ? 0 : 42 });
    const body = m.body as import('../../src/wire/data.js').DataMessage;
    expect(body.contentType).toBe(ContentType.Application);
    expect(body.origin).toEqual(S.ORIGIN);
    const kek = type === MessageType.DataUp ? k.memberKeys.get(2)! : k.subgroupKey;
    const dataKey = unwrapKey(kek, body.wrappedKey, m.frame.headerBytes);
    expect(hex(dataKey)).toBe(hex(k.dataKey));
    const aad = payloadAad(groupIdFor(S.GROUP_NAME), body.contentType, body.origin);
    expect(new TextDecoder().decode(open(dataKey, body.sealedPayload, aad))).toBe('hello, subgroup');
  });

  it('Data: the largest payload fits, one byte more is refused by the encoder', () => {
    const bytes = S.data(k, MessageType.DataMethod2, new Uint8Array(MAX_PAYLOAD));
    expect(bytes.length).toBe(MAX_MESSAGE_LENGTH);
    const m = decodeMessage(bytes);
    if (m.type !== MessageType.DataMethod2) throw new Error(`decoded ${m.type}`);
    expect(m.body.sealedPayload.length).toBe(MAX_PAYLOAD + 28);
    expect(() => S.data(k, MessageType.DataMethod2, new Uint8Array(MAX_PAYLOAD + 1))).toThrow(RangeError);
  });

  it('Data carrying a KGRP2 announcement: content type GroupKey, the announcement decodes after opening', () => {
    const ann = S.kgrp2Announcement(k);
    const m = decodeMessage(S.data(k, MessageType.DataMethod1, ann, {}, ContentType.GroupKey));
    if (m.type !== MessageType.DataMethod1) throw new Error(`decoded ${m.type}`);
    expect(m.body.contentType).toBe(ContentType.GroupKey);
    const dataKey = unwrapKey(k.subgroupKey, m.body.wrappedKey, m.frame.headerBytes);
    const pt = open(dataKey, m.body.sealedPayload, payloadAad(groupIdFor(S.GROUP_NAME), ContentType.GroupKey, S.ORIGIN));
    expect(hex(pt)).toBe(hex(ann));
    expect(decodeKgrp2Announcement(pt).epoch).toBe(4);
    // The content type is bound: opened as Application it fails.
    expect(() => open(dataKey, m.body.sealedPayload, payloadAad(groupIdFor(S.GROUP_NAME), ContentType.Application, S.ORIGIN))).toThrow();
  });

  it('GroupEnd: reason', () => {
    const m = decodeMessage(S.groupEnd(k, { subgroup: subgroupIdFor(S.GROUP_NAME, 'agent-b') }));
    if (m.type !== MessageType.GroupEnd) throw new Error(`decoded ${m.type}`);
    expectHeader(m.frame, MessageType.GroupEnd, { subgroup: subgroupIdFor(S.GROUP_NAME, 'agent-b') });
    expect(m.body).toEqual({ reason: EndReason.Shutdown });
  });

  it('decodes from a view at an odd offset in a larger buffer, and returns views into it', () => {
    const bytes = S.leaveKeyUpdate(k);
    const host = new Uint8Array(bytes.length + 7);
    host.set(bytes, 3);
    const view = host.subarray(3, 3 + bytes.length);
    const m = decodeMessage(view);
    if (m.type !== MessageType.LeaveKeyUpdate) throw new Error(`decoded ${m.type}`);
    expect(m.frame.header.epoch).toBe(8);
    const e = m.body.entries[0]!;
    expect(e.wrapped.buffer).toBe(host.buffer);
    expect(hex(unwrapKey(k.memberKeys.get(2)!, e.wrapped, leaveEntryAad(m.frame.headerBytes, 2)))).toBe(hex(k.nextKey));
  });

  it('the encoder refuses to sign unsigned types and to skip signing signed ones', () => {
    expect(() => encodeFrame(S.header(MessageType.Heartbeat), 0, () => {})).toThrow(/needs signature/);
    expect(() => encodeFrame(S.header(MessageType.DataUp), 0, () => {}, S.signer(k.agent))).toThrow(/takes no signature/);
  });
});

describe('ids', () => {
  it('group and subgroup ids are stable, distinct, and subgroup ids are never 0', () => {
    expect(groupIdFor('a').length).toBe(8);
    expect(hex(groupIdFor('a'))).toBe(hex(groupIdFor('a')));
    expect(hex(groupIdFor('a'))).not.toBe(hex(groupIdFor('b')));
    expect(subgroupIdFor('g', 'x')).toBe(subgroupIdFor('g', 'x'));
    expect(subgroupIdFor('g', 'x')).not.toBe(subgroupIdFor('g', 'y'));
    for (let i = 0; i < 1000; i++) expect(subgroupIdFor('g', `a${i}`)).toBeGreaterThan(0);
  });
});
