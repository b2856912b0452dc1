/**
 * What a pipeline carries, spelled the same way for GStreamer and ffmpeg so either tool can
 * talk to the other (checked both ways on GStreamer 1.22 / ffmpeg 5.1):
 *
 * - `video`: a test pattern as RTP/JPEG (RFC 2435, static payload type 26, 90 kHz). Every
 *   frame decodes on its own, so a receiver restarted mid-stream (direct mode) decodes from
 *   the next frame and "frames decoded" means what it says. ffmpeg needs `-huffman default`
 *   and yuvj420p for RFC 2435; rtpjpegpay needs I420 input.
 * - `audio`: a 440 Hz tone as PCMU (payload type 0, 8 kHz, 20 ms per packet).
 *
 * Receivers decode to raw bytes on stdout, a small fixed size per frame (video: GRAY8 at
 * OUT_WIDTH × OUT_HEIGHT; audio: S16LE, one 20 ms packet = 160 samples), which the launcher
 * counts (frameCounter.ts) and the vic-like sample shows as thumbnails.
 */
export type MediaKind = 'video' | 'audio';

export interface MediaSpec {
  readonly kind: MediaKind;
  readonly encodingName: 'JPEG' | 'PCMU';
  readonly payloadType: number;
  readonly clockRate: number;
  /** Bytes a receiver writes on stdout per decoded frame (video) or per 20 ms of audio. */
  readonly outputFrameBytes: number;
}

/** Decoded video is scaled to this for counting and thumbnails. */
export const OUT_WIDTH = 64;
export const OUT_HEIGHT = 48;
/** PCMU samples per RTP packet (20 ms at 8 kHz). */
export const PCMU_SAMPLES = 160;

export const MEDIA: Readonly<Record<MediaKind, MediaSpec>> = {
  video: { kind: 'video', encodingName: 'JPEG', payloadType: 26, clockRate: 90_000, outputFrameBytes: OUT_WIDTH * OUT_HEIGHT },
  audio: { kind: 'audio', encodingName: 'PCMU', payloadType: 0, clockRate: 8000, outputFrameBytes: PCMU_SAMPLES * 2 },
};

export interface VideoFormat {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
}

export const DEFAULT_VIDEO: VideoFormat = { width: 160, height: 120, fps: 10 };

/** Frames per second of the stream as the launcher counts it (audio: RTP packets of 20 ms). */
export function framesPerSecond(kind: MediaKind, video: VideoFormat): number {
  return kind === 'video' ? video.fps : 1000 / 20;
}
