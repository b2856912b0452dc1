/**
 * ffmpeg 5.1 command lines for senders and receivers (facts in shared/notes/media-interop.md).
 *
 *   sender:   -re -f lavfi -i <test source> <encoder> -f rtp -ssrc … [-srtp_out_suite … -srtp_out_params <b64>]
 *             srtp://host:port?rtcpport=port&pkt_size=1200     (rtp:// when plain)
 *   receiver: an SDP file (m=… RTP/SAVP, a=crypto:1 <suite> inline:<b64>) — `-f rtp -i srtp://`
 *             has no srtp_in_* options — decoded to raw frames on stdout.
 *
 * ffmpeg has no MKI, no AEAD and no key change while running: one key per process.
 * RTCP is sent to the RTP port (RFC 5761 mux, what srtpdec and the relay expect); an SDP
 * receiver also binds port+1 for RTCP, so give it a port whose successor is free.
 */
import { ValidationError } from '../../errors.js';
import { ffmpegSrtpParams } from '../srtp/keyFormats.js';
import { SUITE_SPELLINGS } from '../srtp/profile.js';
import { MEDIA, OUT_HEIGHT, OUT_WIDTH, PCMU_SAMPLES } from '../pipeline/media.js';
import type { ReceiverSpec, SenderSpec, SrtpKeying } from '../pipeline/spec.js';
import type { ToolCommand } from '../pipeline/toolProcess.js';

export const FFMPEG_PATTERNS = ['testsrc', 'smptebars', 'testsrc2', 'rgbtestsrc'] as const;

/** Flags every run gets: no banner, no stdin, warnings (ffmpeg's SRTP says "HMAC mismatch" at that level). */
const COMMON = ['-hide_banner', '-nostdin', '-loglevel', 'warning'];

function ffmpegSuite(k: SrtpKeying): string {
  const s = SUITE_SPELLINGS[k.suite]?.ffmpeg;
  if (!s) throw new ValidationError('pipeline.profile', `profile: ffmpeg has no SRTP suite '${k.suite}' (only AES_CM_128_HMAC_SHA1_80 and _32)`);
  if (k.mki) throw new ValidationError('pipeline.mki', 'mki: ffmpeg cannot send or read an MKI');
  return s;
}

function hostForUrl(h: string): string {
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

export function ffmpegSenderCommand(spec: SenderSpec): ToolCommand {
  let input: string[];
  let encode: string[];
  if (spec.media === 'video') {
    const { width, height, fps } = spec.video;
    const pattern = FFMPEG_PATTERNS[(spec.pattern ?? 0) % FFMPEG_PATTERNS.length]!;
    input = ['-re', '-f', 'lavfi', '-i', `${pattern}=size=${width}x${height}:rate=${fps}`];
    // RFC 2435 needs the standard Huffman tables and 4:2:0 full-range (yuvj420p); ffmpeg's own
    // RTP/JPEG reader wants both quantisation tables, even when they are equal.
    encode = [
      ...(spec.frames !== undefined ? ['-frames:v', String(spec.frames)] : []),
      '-an', '-c:v', 'mjpeg', '-huffman', 'default', '-force_duplicated_matrix', '1', '-pix_fmt', 'yuvj420p', '-q:v', '6',
    ];
  } else {
    input = ['-re', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=8000:samples_per_frame=${PCMU_SAMPLES}`];
    encode = [...(spec.frames !== undefined ? ['-frames:a', String(spec.frames)] : []), '-vn', '-c:a', 'pcm_mulaw', '-ar', '8000', '-ac', '1'];
  }
  const m = MEDIA[spec.media];
  const dest = `${hostForUrl(spec.to.host)}:${spec.to.port}?rtcpport=${spec.to.port}&pkt_size=1200`;
  const out = spec.srtp
    ? ['-srtp_out_suite', ffmpegSuite(spec.srtp), '-srtp_out_params', ffmpegSrtpParams(spec.srtp.key), `srtp://${dest}`]
    : [`rtp://${dest}`];
  return {
    tool: 'ffmpeg',
    args: [...COMMON, ...input, ...encode, '-f', 'rtp', '-ssrc', String(spec.ssrc | 0), '-payload_type', String(m.payloadType), ...out],
  };
}

/** The SDP an ffmpeg receiver reads: where to listen, the codec, and (SRTP) the key as SDES. */
export function receiverSdp(spec: ReceiverSpec): string {
  const m = MEDIA[spec.media];
  const ip6 = spec.listen.host.includes(':');
  const addr = spec.listen.host.replace(/^\[|\]$/g, '');
  const lines = [
    'v=0',
    `o=- 0 0 IN ${ip6 ? 'IP6' : 'IP4'} ${addr}`,
    's=iolus pipeline',
    `c=IN ${ip6 ? 'IP6' : 'IP4'} ${addr}`,
    't=0 0',
    `m=${m.kind} ${spec.listen.port} ${spec.srtp ? 'RTP/SAVP' : 'RTP/AVP'} ${m.payloadType}`,
    `a=rtpmap:${m.payloadType} ${m.encodingName}/${m.clockRate}`,
  ];
  if (spec.srtp) lines.push(`a=crypto:1 ${ffmpegSuite(spec.srtp)} inline:${ffmpegSrtpParams(spec.srtp.key)}`);
  return `${lines.join('\n')}\n`;
}

/** A receiver writing decoded frames to stdout (video GRAY8 OUT_WIDTH×OUT_HEIGHT, audio S16LE). */
export function ffmpegReceiverCommand(spec: ReceiverSpec): ToolCommand {
  const out = spec.media === 'video'
    // The luma plane, scaled: no swscale from JPEG's full-range YUV (which warns on every frame).
    ? ['-an', '-vf', `extractplanes=y,scale=${OUT_WIDTH}:${OUT_HEIGHT}`, '-pix_fmt', 'gray', '-fps_mode', 'passthrough', '-f', 'rawvideo', 'pipe:1']
    : ['-vn', '-f', 's16le', '-ac', '1', '-ar', '8000', 'pipe:1'];
  return {
    tool: 'ffmpeg',
    args: [
      ...COMMON, '-protocol_whitelist', 'file,udp,rtp',
      // Start decoding soon (the SDP names the codec); no reordering delay on loopback. Not
      // `-fflags nobuffer`: with it ffmpeg 5.1 drops most RTP/JPEG frames.
      '-analyzeduration', '200000', '-probesize', '32768', '-reorder_queue_size', '0',
      '-i', '{dir}/in.sdp', ...out,
    ],
    files: { 'in.sdp': receiverSdp(spec) },
  };
}
