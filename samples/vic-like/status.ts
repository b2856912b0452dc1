/**
 * What a participant reports to the runner, one JSON line per report on its stdout, parsed
 * with zod on the runner's side (a child's output is still input).
 */
import { z } from 'zod';

export const PeerStatus = z.object({
  name: z.string(),
  ssrc: z.number().int(),
  /** In the view: a frame decoded lately and its packets still authenticate. */
  visible: z.boolean(),
  /** Frames that arrived (RTP marker bits, read from the clear header). */
  received: z.number().int(),
  /** Frames the decoder (gst-launch or ffmpeg) output. */
  decoded: z.number().int(),
  /** Frames with a packet our key ring refused (auth, unknown MKI, expired epoch, replay). */
  failed: z.number().int(),
  /** Epoch of the last packet that decrypted. */
  epoch: z.number().int().nullable(),
  /** The newest decoded frame, GRAY8 64×48, base64 (every other report). */
  thumb: z.string().optional(),
});
export type PeerStatus = z.infer<typeof PeerStatus>;

export const ParticipantStatus = z.object({
  event: z.literal('status'),
  t: z.number(),
  name: z.string(),
  tool: z.enum(['gst', 'ffmpeg']),
  /** Epoch this participant sends under now (its key ring's current key). */
  epoch: z.number().int().nullable(),
  /** Its local agent: joined, removed (expelled or expired: it heard so), gone (no answer). */
  agent: z.enum(['joined', 'removed', 'gone']),
  sent: z.object({ frames: z.number().int(), packets: z.number().int(), refused: z.number().int() }),
  /** getkey() calls (before each send and each receive, as vic did). */
  getkey: z.number().int(),
  peers: z.array(PeerStatus),
});
export type ParticipantStatus = z.infer<typeof ParticipantStatus>;

export const ParticipantEvent = z.object({
  event: z.enum(['vanished', 'appeared', 'ready', 'agent', 'error']),
  t: z.number(),
  name: z.string(),
  peer: z.string().optional(),
  detail: z.string().optional(),
});
export type ParticipantEvent = z.infer<typeof ParticipantEvent>;

export const ParticipantLine = z.union([ParticipantStatus, ParticipantEvent]);
