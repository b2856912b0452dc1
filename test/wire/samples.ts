/**
 * One valid encoding of every subgroup-plane message, built with real keys: the round-trip
 * tests decode them, the refusal tests break them, the fuzz suite mutates them.
 */
import { gcmEncrypt, NONCE_LENGTH } from '../../src/crypto/aead.js';
import { concatBytes, randomBytes } from '../../src/crypto/bytes.js';
import { signBytes, signingKeyFromSeed, type SigningKey } from '../../src/crypto/sign.js';
import { ContentType, encodeData, payloadAad, type Origin } from '../../src/wire/data.js';
import { encodeGroupEnd, EndReason } from '../../src/wire/groupEnd.js';
import { AGENT_SENDER, groupIdFor, MessageType, SUITE_AES256GCM_ED25519, subgroupIdFor, WIRE_VERSION, type Header } from '../../src/wire/header.js';
import { encodeHeartbeat } from '../../src/wire/heartbeat.js';
import { encodeJoinKeyUpdate, encodeLeaveKeyUpdate, RekeyReason } from '../../src/wire/keyUpdate.js';
import {
  encodeKgrp2Announcement, kgrp2SignedBytes, originatorKeyId, type Kgrp2Announcement,
} from '../../src/wire/kgrp2Announcement.js';

export interface Keys {
  agent: SigningKey;
  originator: SigningKey;
  /** Current subgroup key K (wraps K' on join and data keys). */
  subgroupKey: Uint8Array;
  /** The new subgroup key K'. */
  nextKey: Uint8Array;
  /** Member keys by id. */
  memberKeys: Map<number, Uint8Array>;
  dataKey: Uint8Array;
  /** Where keys, seeds and nonces come from: node's CSPRNG, or a seeded PRNG for reproducible fuzzing. */
  random: (n: number) => Uint8Array;
}

export function makeKeys(memberIds: readonly number[] = [2, 5, 9, 1000, 70_000], random: (n: number) => Uint8Array = randomBytes): Keys {
  return {
    agent: signingKeyFromSeed(random(32)),
    originator: signingKeyFromSeed(random(32)),
    subgroupKey: random(32),
    nextKey: random(32),
    memberKeys: new Map(memberIds.map((id) => [id, random(32)])),
    dataKey: random(32),
    random,
  };
}

/** seal() and wrapKey() with the nonce drawn from `k.random`: the same layout, nonce ‖ ciphertext ‖ tag. */
function sealWith(k: Keys, key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = k.random(NONCE_LENGTH);
  return concatBytes(nonce, gcmEncrypt(key, nonce, plaintext, aad));
}

export const GROUP_NAME = 'conf.example';

export function header(type: MessageType, over: Partial<Header> = {}): Header {
  return {
    version: WIRE_VERSION,
    suite: SUITE_AES256GCM_ED25519,
    type,
    group: groupIdFor(GROUP_NAME),
    subgroup: subgroupIdFor(GROUP_NAME, 'agent-a'),
    sender: AGENT_SENDER,
    epoch: 7,
    sequence: 1_700_000_000_000_123,
    timestamp: 1_700_000_000_456,
    ...over,
  };
}

export const signer = (k: SigningKey) => (covered: Uint8Array) => signBytes(k, covered);

export function joinKeyUpdate(k: Keys, over: Partial<Header> = {}): Uint8Array {
  return encodeJoinKeyUpdate(header(MessageType.JoinKeyUpdate, over), 6, (aad) => sealWith(k, k.subgroupKey, k.nextKey, aad), signer(k.agent));
}

export function leaveKeyUpdate(
  k: Keys,
  m: Partial<{ reason: RekeyReason; partial: boolean; part: number; parts: number; memberIds: readonly number[] }> = {},
  over: Partial<Header> = {},
): Uint8Array {
  const memberIds = m.memberIds ?? [...k.memberKeys.keys()];
  return encodeLeaveKeyUpdate(
    header(MessageType.LeaveKeyUpdate, { epoch: 8, ...over }),
    { reason: RekeyReason.Leave, partial: false, part: 0, parts: 1, ...m, memberIds },
    (id, aad) => sealWith(k, k.memberKeys.get(id) ?? k.random(32), k.nextKey, aad),
    signer(k.agent),
  );
}

export function heartbeat(k: Keys, over: Partial<Header> = {}): Uint8Array {
  return encodeHeartbeat(header(MessageType.Heartbeat, over), { groupEpoch: 3, intervalMs: 5000 }, signer(k.agent));
}

export function groupEnd(k: Keys, over: Partial<Header> = {}): Uint8Array {
  return encodeGroupEnd(header(MessageType.GroupEnd, over), { reason: EndReason.Shutdown }, signer(k.agent));
}

export const ORIGIN: Origin = { subgroup: 0xdead_beef, member: 42, seq: 2 ** 40 + 17 };

export function sealedPayload(k: Keys, payload: Uint8Array, contentType = ContentType.Application, origin = ORIGIN): Uint8Array {
  return sealWith(k, k.dataKey, payload, payloadAad(groupIdFor(GROUP_NAME), contentType, origin));
}

export function data(
  k: Keys,
  type: MessageType.DataMethod1 | MessageType.DataMethod2 | MessageType.DataUp,
  payload: Uint8Array = new TextEncoder().encode('hello, subgroup'),
  over: Partial<Header> = {},
  contentType = ContentType.Application,
): Uint8Array {
  const kek = type === MessageType.DataUp ? k.memberKeys.get(2)! : k.subgroupKey;
  const h = { ...header(type, { sender: type === MessageType.DataMethod2 ? AGENT_SENDER : 42, ...over }), type };
  return encodeData(
    h,
    { contentType, origin: ORIGIN, sealedPayload: sealedPayload(k, payload, contentType) },
    (aad) => sealWith(k, kek, k.dataKey, aad),
    type === MessageType.DataMethod2 ? signer(k.agent) : undefined,
  );
}

export function kgrp2Fields(k: Keys, over: Partial<Omit<Kgrp2Announcement, 'signature'>> = {}): Omit<Kgrp2Announcement, 'signature'> {
  return {
    epoch: 4,
    voids: 0,
    notBefore: 1_700_000_000_000,
    notAfter: 1_700_000_600_000,
    graceMs: 30_000,
    key: k.random(32),
    originatorKeyId: originatorKeyId(k.originator.publicKey),
    ...over,
  };
}

export function kgrp2Announcement(k: Keys, over: Partial<Omit<Kgrp2Announcement, 'signature'>> = {}): Uint8Array {
  const a = kgrp2Fields(k, over);
  const signature = signBytes(k.originator, kgrp2SignedBytes(groupIdFor(GROUP_NAME), a));
  return encodeKgrp2Announcement({ ...a, signature });
}

/** One valid encoding of every message type (and a few variants), for refusal and fuzz tests. */
export function allSamples(k: Keys): Array<{ name: string; bytes: Uint8Array }> {
  const big = [...Array(1000).keys()].map((i) => i * 3 + 1);
  const bigKeys = { ...k, memberKeys: new Map(big.map((id) => [id, k.subgroupKey])) };
  return [
    { name: 'JoinKeyUpdate', bytes: joinKeyUpdate(k) },
    { name: 'LeaveKeyUpdate', bytes: leaveKeyUpdate(k) },
    { name: 'LeaveKeyUpdate (empty, partial)', bytes: leaveKeyUpdate(k, { memberIds: [], partial: true, reason: RekeyReason.Batch }) },
    { name: 'LeaveKeyUpdate (1,000 entries)', bytes: leaveKeyUpdate(bigKeys, { part: 2, parts: 3, reason: RekeyReason.Periodic }) },
    { name: 'Heartbeat', bytes: heartbeat(k) },
    { name: 'DataMethod1', bytes: data(k, MessageType.DataMethod1) },
    { name: 'DataMethod1 (empty payload)', bytes: data(k, MessageType.DataMethod1, new Uint8Array(0)) },
    { name: 'DataMethod2', bytes: data(k, MessageType.DataMethod2) },
    { name: 'DataUp', bytes: data(k, MessageType.DataUp) },
    { name: 'DataMethod1 (KGRP2 announcement)', bytes: data(k, MessageType.DataMethod1, kgrp2Announcement(k), {}, ContentType.GroupKey) },
    { name: 'GroupEnd', bytes: groupEnd(k) },
  ];
}

/**
 * Hand-built frame bytes with any header field, flags and body, for refusal tests: the body is
 * whatever the test says, and signed types get 64 filler bytes (the decoder does not verify).
 */
export function rawFrame(o: {
  version?: number; suite?: number; type: number; flags?: number; epoch?: number; body: Uint8Array;
  bodyLength?: number; signature?: Uint8Array | null;
}): Uint8Array {
  const signed = o.signature !== null && [1, 2, 3, 5, 7].includes(o.type);
  const sig = o.signature ?? (signed ? new Uint8Array(64).fill(0x5a) : new Uint8Array(0));
  const out = new Uint8Array(48 + o.body.length + sig.length);
  const v = new DataView(out.buffer);
  v.setUint8(0, o.version ?? 1);
  v.setUint8(1, o.suite ?? 1);
  v.setUint8(2, o.type);
  v.setUint8(3, o.flags ?? 0);
  out.set(groupIdFor(GROUP_NAME), 4);
  v.setUint32(12, 77);
  v.setUint32(16, 0);
  v.setBigUint64(20, BigInt(o.epoch ?? 7));
  v.setBigUint64(28, 1n);
  v.setBigUint64(36, 2n);
  v.setUint32(44, o.bodyLength ?? o.body.length);
  out.set(o.body, 48);
  out.set(sig, 48 + o.body.length);
  return out;
}

/** Byte offsets of the header fields (src/wire/header.ts). */
export const OFF = { version: 0, suite: 1, type: 2, flags: 3, group: 4, subgroup: 12, sender: 16, epoch: 20, sequence: 28, timestamp: 36, bodyLength: 44 } as const;
