/** Decodes any subgroup-plane message into a tagged union (the fuzz suite's entry point). */
import { decodeData, type DataMessage } from './data.js';
import { decodeGroupEnd, type GroupEnd } from './groupEnd.js';
import { decodeFrame, MessageType, type Frame } from './header.js';
import { decodeHeartbeat, type Heartbeat } from './heartbeat.js';
import { decodeJoinKeyUpdate, decodeLeaveKeyUpdate, type JoinKeyUpdate, type LeaveKeyUpdate } from './keyUpdate.js';

export type Message =
  | { type: MessageType.JoinKeyUpdate; frame: Frame; body: JoinKeyUpdate }
  | { type: MessageType.LeaveKeyUpdate; frame: Frame; body: LeaveKeyUpdate }
  | { type: MessageType.Heartbeat; frame: Frame; body: Heartbeat }
  | { type: MessageType.DataMethod1 | MessageType.DataMethod2 | MessageType.DataUp; frame: Frame; body: DataMessage }
  | { type: MessageType.GroupEnd; frame: Frame; body: GroupEnd };

/** Throws only CodecError. Verifying signatures and tags is the receiver's job. */
export function decodeMessage(bytes: Uint8Array): Message {
  const frame = decodeFrame(bytes);
  switch (frame.header.type) {
    case MessageType.JoinKeyUpdate:
      return { type: MessageType.JoinKeyUpdate, frame, body: decodeJoinKeyUpdate(frame) };
    case MessageType.LeaveKeyUpdate:
      return { type: MessageType.LeaveKeyUpdate, frame, body: decodeLeaveKeyUpdate(frame) };
    case MessageType.Heartbeat:
      return { type: MessageType.Heartbeat, frame, body: decodeHeartbeat(frame) };
    case MessageType.DataMethod1:
    case MessageType.DataMethod2:
    case MessageType.DataUp:
      return { type: frame.header.type, frame, body: decodeData(frame) };
    case MessageType.GroupEnd:
      return { type: MessageType.GroupEnd, frame, body: decodeGroupEnd(frame) };
  }
}
