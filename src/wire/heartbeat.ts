/**
 * Heartbeat: the agent's periodic, signed statement of what it holds. The header's epoch is
 * the current subgroup epoch; the body carries the newest group (KGRP2) epoch and when the
 * next heartbeat is due. A member holding less than either has missed something and asks
 * for catch-up over the secure channel (DESIGN.md: at-least-once without reliable multicast).
 *
 *   groupEpoch u64 ‖ intervalMs u32
 */
import { Reader } from './codec.js';
import { encodeFrame, MessageType, type Frame, type Header } from './header.js';

export interface Heartbeat {
  groupEpoch: number;
  intervalMs: number;
}

export function encodeHeartbeat(h: Header, hb: Heartbeat, sign: (covered: Uint8Array) => Uint8Array): Uint8Array {
  return encodeFrame({ ...h, type: MessageType.Heartbeat }, 12, (w) => {
    w.u64(hb.groupEpoch).u32(hb.intervalMs);
  }, sign);
}

export function decodeHeartbeat(f: Frame): Heartbeat {
  const r = new Reader(f.body);
  const groupEpoch = r.u64('groupEpoch');
  const intervalMs = r.u32('intervalMs');
  r.end('Heartbeat');
  return { groupEpoch, intervalMs };
}
