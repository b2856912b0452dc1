/**
 * gst-launch-1.0 command lines for senders and receivers (GStreamer 1.22; facts in
 * shared/notes/media-interop.md). One argv element per pipeline token, no shell, so caps need
 * no quoting.
 *
 *   sender:   <test source> ! <encoder> ! <payloader ssrc=…> [! srtpenc key=… ] ! udpsink
 *   receiver: udpsrc caps=application/x-srtp,…,srtp-key=… ! srtpdec ! <depayloader> ! <decoder>
 *             ! <raw, small> ! fdsink fd=1        (srtpdec's RTCP pad to fakesink)
 *
 * gst-launch keys srtpdec from caps only (it cannot answer `request-key` nor change a key):
 * one key, for the SSRC the caps name. srtpenc takes `key` (and `mki`) as hex properties.
 */
import { toHex } from '../../crypto/bytes.js';
import { ValidationError } from '../../errors.js';
import { gstSrtpCapsFields } from '../srtp/keyFormats.js';
import { SUITE_SPELLINGS } from '../srtp/profile.js';
import { MEDIA, OUT_HEIGHT, OUT_WIDTH, PCMU_SAMPLES } from '../pipeline/media.js';
import type { ReceiverSpec, SenderSpec, SrtpKeying } from '../pipeline/spec.js';
import type { ToolCommand } from '../pipeline/toolProcess.js';

export const GST_PATTERNS = ['ball', 'smpte', 'circular', 'pinwheel'] as const;

/** Elements a sender and a receiver of each kind need (for gst-inspect checks and error hints). */
export const GST_ELEMENTS = {
  video: ['videotestsrc', 'jpegenc', 'rtpjpegpay', 'udpsink', 'udpsrc', 'rtpjpegdepay', 'jpegdec', 'videoconvert', 'videoscale', 'fdsink'],
  audio: ['audiotestsrc', 'mulawenc', 'rtppcmupay', 'udpsink', 'udpsrc', 'rtppcmudepay', 'mulawdec', 'audioconvert', 'fdsink'],
  srtp: ['srtpenc', 'srtpdec', 'fakesink'],
} as const;

function gstSuite(suite: string) {
  const s = SUITE_SPELLINGS[suite]?.gst;
  if (!s) throw new ValidationError('pipeline.profile', `profile: GStreamer has no SRTP suite '${suite}'`);
  return s;
}

function host(h: string): string {
  return h.startsWith('[') ? h.slice(1, -1) : h;
}

/** The srtpenc element and its properties (key and MKI as hex GstBuffers). */
function srtpencTokens(k: SrtpKeying): string[] {
  const s = gstSuite(k.suite);
  return [
    'e.rtp_sink_0', 'srtpenc', 'name=e', `key=${toHex(k.key)}`,
    `rtp-cipher=${s.cipher}`, `rtp-auth=${s.auth}`, `rtcp-cipher=${s.cipher}`, `rtcp-auth=${s.rtcpAuth}`,
    ...(k.mki ? [`mki=${toHex(k.mki)}`] : []),
    'e.rtp_src_0',
  ];
}

export function gstSenderCommand(spec: SenderSpec): ToolCommand {
  const limit = spec.frames !== undefined ? [`num-buffers=${spec.frames}`] : [];
  let source: string[];
  if (spec.media === 'video') {
    const { width, height, fps } = spec.video;
    const pattern = GST_PATTERNS[(spec.pattern ?? 0) % GST_PATTERNS.length]!;
    source = [
      'videotestsrc', 'is-live=true', `pattern=${pattern}`, ...limit, '!',
      // rtpjpegpay wants 4:2:0 (RFC 2435 type 1); anything else is refused as "Invalid component".
      `video/x-raw,format=I420,width=${width},height=${height},framerate=${fps}/1`, '!',
      'jpegenc', 'quality=60', '!',
      'rtpjpegpay', `pt=${MEDIA.video.payloadType}`, `ssrc=${spec.ssrc >>> 0}`, 'mtu=1200', '!',
    ];
  } else {
    source = [
      'audiotestsrc', 'is-live=true', 'wave=sine', 'freq=440', `samplesperbuffer=${PCMU_SAMPLES}`, ...limit, '!',
      'audio/x-raw,rate=8000,channels=1', '!', 'mulawenc', '!',
      'rtppcmupay', `pt=${MEDIA.audio.payloadType}`, `ssrc=${spec.ssrc >>> 0}`, 'min-ptime=20000000', 'max-ptime=20000000', '!',
    ];
  }
  const srtp = spec.srtp ? [...srtpencTokens(spec.srtp), '!'] : [];
  return {
    tool: 'gst-launch-1.0',
    args: ['-q', '-e', ...source, ...srtp, 'udpsink', `host=${host(spec.to.host)}`, `port=${spec.to.port}`, 'sync=false', 'async=false'],
  };
}

function rtpCaps(spec: ReceiverSpec): string {
  const m = MEDIA[spec.media];
  const head = spec.srtp ? 'application/x-srtp' : 'application/x-rtp';
  const fields = [
    `media=(string)${m.kind}`, `clock-rate=(int)${m.clockRate}`, `encoding-name=(string)${m.encodingName}`, `payload=(int)${m.payloadType}`,
  ];
  if (spec.srtp) {
    const keys = [{ key: spec.srtp.key, ...(spec.srtp.mki ? { mki: spec.srtp.mki } : {}) }];
    fields.push(gstSrtpCapsFields(spec.srtp.suite, keys, spec.ssrc !== undefined ? { ssrc: spec.ssrc } : {}));
  } else if (spec.ssrc !== undefined) {
    fields.push(`ssrc=(uint)${spec.ssrc >>> 0}`);
  }
  return [head, ...fields].join(', ');
}

/**
 * A receiver writing decoded frames to stdout: video as GRAY8 OUT_WIDTH×OUT_HEIGHT, audio as
 * S16LE. With SRTP, the caps carry the key for `spec.ssrc` (required by srtpdec).
 */
export function gstReceiverCommand(spec: ReceiverSpec): ToolCommand {
  if (spec.srtp && spec.ssrc === undefined) throw new ValidationError('pipeline.ssrc', 'ssrc: a GStreamer SRTP receiver needs the sender\'s SSRC (srtpdec keys only the SSRC in its caps)');
  const decode = spec.media === 'video'
    ? ['rtpjpegdepay', '!', 'jpegdec', '!', 'videoconvert', '!', 'videoscale', '!', `video/x-raw,format=GRAY8,width=${OUT_WIDTH},height=${OUT_HEIGHT}`]
    : ['rtppcmudepay', '!', 'mulawdec', '!', 'audioconvert', '!', 'audio/x-raw,format=S16LE,rate=8000,channels=1'];
  const src = ['udpsrc', `address=${host(spec.listen.host)}`, `port=${spec.listen.port}`, `caps=${rtpCaps(spec)}`, '!'];
  const sink = ['!', 'fdsink', 'fd=1', 'sync=false'];
  const args = spec.srtp
    // SRTCP comes out of srtpdec's rtcp_src: an unlinked pad would stop the pipeline (not-linked).
    ? ['-q', ...src, 'srtpdec', 'name=d', 'd.rtp_src', '!', ...decode, ...sink, 'd.rtcp_src', '!', 'fakesink', 'sync=false', 'async=false']
    : ['-q', ...src, ...decode, ...sink];
  return { tool: 'gst-launch-1.0', args };
}
