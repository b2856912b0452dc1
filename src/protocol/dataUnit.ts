/**
 * A data message reduced to what crosses a hop unchanged: content type, origin, the sealed
 * payload, and the data key that opens it. Forwarding = unwrap the data key from one hop and
 * wrap it for the next (paper §6.5: only the key is re-encrypted, never the payload).
 */
import { open, seal, unwrapKey, wrapKey } from '../crypto/aead.js';
import { randomKey } from '../crypto/bytes.js';
import { ContentType, encodeData, payloadAad, type DataMessage, type Origin } from '../wire/data.js';
import type { Frame, Header, MessageType } from '../wire/header.js';

export interface DataUnit {
  contentType: ContentType;
  origin: Origin;
  dataKey: Uint8Array;
  sealedPayload: Uint8Array;
}

/** The sender's side: a fresh data key per message, the payload sealed once under it. */
export function sealDataUnit(group: Uint8Array, contentType: ContentType, origin: Origin, payload: Uint8Array): DataUnit {
  const dataKey = randomKey();
  return { contentType, origin, dataKey, sealedPayload: seal(dataKey, payload, payloadAad(group, contentType, origin)) };
}

/** Recovers the data key of a received message with the key it was wrapped under. Throws CryptoVerificationError. */
export function unwrapDataUnit(frame: Frame, msg: DataMessage, kek: Uint8Array): DataUnit {
  const dataKey = unwrapKey(kek, msg.wrappedKey, frame.headerBytes);
  return { contentType: msg.contentType, origin: msg.origin, dataKey, sealedPayload: msg.sealedPayload };
}

/** Opens the payload. Throws CryptoVerificationError. */
export function openDataUnit(group: Uint8Array, unit: DataUnit): Uint8Array {
  return open(unit.dataKey, unit.sealedPayload, payloadAad(group, unit.contentType, unit.origin));
}

/** Encodes a unit for the next hop, wrapping its data key under `kek`. */
export function encodeDataUnit(
  h: Header & { type: MessageType.DataMethod1 | MessageType.DataMethod2 | MessageType.DataUp },
  unit: DataUnit,
  kek: Uint8Array,
  onWrap: () => void,
  sign?: (covered: Uint8Array) => Uint8Array,
): Uint8Array {
  return encodeData(h, unit, (aad) => {
    onWrap();
    return wrapKey(kek, unit.dataKey, aad);
  }, sign);
}

/** The identity of one message across the whole tree. */
export function originKey(o: Origin): string {
  return `${o.subgroup}:${o.member}:${o.seq}`;
}

/**
 * The replay window a hop uses for a message. Signed messages (only the agent signs) have a
 * window of their own that nothing unsigned can move, so a member holding the subgroup key
 * cannot make others refuse the agent's rekeys, heartbeats or GRP_END. Unsigned data has a
 * window per sender and epoch: an insider can disturb another sender's method-1 data at most
 * until the next rekey (method 1's inherent weakness, paper §6.5; method 2 does not have it).
 */
export function hopWindowKey(signed: boolean, sender: number, epoch: number): string {
  return signed ? `s:${sender}` : `u:${epoch}:${sender}`;
}
