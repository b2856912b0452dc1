/** GRP_END (paper §6.7): signed by each agent as it passes down the tree. Body: reason u8. */
import { CodecError } from '../errors.js';
import { Reader } from './codec.js';
import { encodeFrame, MessageType, type Frame, type Header } from './header.js';

export enum EndReason {
  Shutdown = 1,
  Administrative = 2,
}

export interface GroupEnd {
  reason: EndReason;
}

export function encodeGroupEnd(h: Header, m: GroupEnd, sign: (covered: Uint8Array) => Uint8Array): Uint8Array {
  return encodeFrame({ ...h, type: MessageType.GroupEnd }, 1, (w) => {
    w.u8(m.reason);
  }, sign);
}

export function decodeGroupEnd(f: Frame): GroupEnd {
  const r = new Reader(f.body);
  const reason = r.u8('reason');
  if (!(reason in EndReason)) throw new CodecError('codec.reason', `unknown end reason ${reason}`);
  r.end('GroupEnd');
  return { reason };
}
