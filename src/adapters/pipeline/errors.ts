/**
 * What went wrong with a media tool, in one sentence a person can act on. A tool's exit code
 * alone says little (gst-launch exits 1 for everything); its stderr says more but is long, so
 * known failures are recognised and named with their fix, and the tail of stderr is kept for
 * the rest.
 */
import { IolusError } from '../../errors.js';

export type ToolName = 'gst-launch-1.0' | 'ffmpeg';

export interface ToolExit {
  /** Exit code, when the tool exited rather than being killed. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Whether we asked it to stop (a stop is not a failure, whatever the code). */
  readonly stopped: boolean;
  /** The last lines of stderr (noise lines left out). */
  readonly stderrTail: string;
}

/** A media tool failed, or could not be started, or a pipeline could not get a key. */
export class PipelineError extends IolusError {
  constructor(
    code: string,
    message: string,
    readonly tool?: ToolName,
    readonly exit?: ToolExit,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Debian package holding each GStreamer element we use (gstreamer1.0-…). */
const GST_ELEMENT_PACKAGE: Readonly<Record<string, string>> = {
  srtpenc: 'gstreamer1.0-plugins-bad',
  srtpdec: 'gstreamer1.0-plugins-bad',
  rtpjpegpay: 'gstreamer1.0-plugins-good',
  rtpjpegdepay: 'gstreamer1.0-plugins-good',
  rtppcmupay: 'gstreamer1.0-plugins-good',
  rtppcmudepay: 'gstreamer1.0-plugins-good',
  jpegenc: 'gstreamer1.0-plugins-good',
  jpegdec: 'gstreamer1.0-plugins-good',
  mulawenc: 'gstreamer1.0-plugins-good',
  mulawdec: 'gstreamer1.0-plugins-good',
  udpsrc: 'gstreamer1.0-plugins-good',
  udpsink: 'gstreamer1.0-plugins-good',
  rtpbin: 'gstreamer1.0-plugins-good',
  videotestsrc: 'gstreamer1.0-plugins-base',
  audiotestsrc: 'gstreamer1.0-plugins-base',
  videoconvert: 'gstreamer1.0-plugins-base',
  videoscale: 'gstreamer1.0-plugins-base',
  audioconvert: 'gstreamer1.0-plugins-base',
  audioresample: 'gstreamer1.0-plugins-base',
  fdsink: 'gstreamer1.0-tools',
  fakesink: 'gstreamer1.0-tools',
};

export const TOOL_PACKAGE: Readonly<Record<ToolName, string>> = {
  'gst-launch-1.0': 'gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad',
  ffmpeg: 'ffmpeg',
};

/**
 * Lines that say nothing about why a tool stopped: ffmpeg's notices about JPEG, and srtpdec's
 * per-packet warnings (counted by the launcher as failed packets, see SRTP_FAILURE).
 */
export function isNoise(line: string): boolean {
  return /deprecated pixel format used|Last message repeated|RFC 2435 suggests|srtpdec .*(authentication|replay)/.test(line) || line.trim() === '';
}

/** A stderr line reporting one packet refused by the tool's SRTP (srtpdec at GST_DEBUG=srtpdec:2, ffmpeg at -loglevel warning). */
export const SRTP_FAILURE = /HMAC mismatch|Error authentication packet|Error replayed packet|srtp_unprotect.*fail/;

/** The diagnosis for a known failure in `stderr`, or undefined. */
export function diagnose(tool: ToolName, stderr: string): string | undefined {
  if (tool === 'gst-launch-1.0') {
    const el = /no element "([^"]+)"/.exec(stderr)?.[1];
    if (el) return `no element ${el} — install ${GST_ELEMENT_PACKAGE[el] ?? 'the GStreamer plugin package that has it (gst-inspect-1.0 tells)'}`;
    const prop = /no property "([^"]+)" in element "([^"]+)"/.exec(stderr);
    if (prop) return `element ${prop[2]} has no property ${prop[1]} (a GStreamer older than 1.22?)`;
    if (/Could not get\/set settings from\/on resource|bind.*Address already in use|Could not open resource for reading/i.test(stderr) && /udpsrc/.test(stderr)) {
      return 'udpsrc cannot bind its port (in use by another process?)';
    }
    if (/not-linked/.test(stderr)) return 'a pad is not linked (stream of a kind the pipeline has no branch for, e.g. RTCP or another payload type)';
    if (/could not link/i.test(stderr)) return `could not link elements: ${/could not link [^\n]+/i.exec(stderr)?.[0] ?? ''}`.trim();
    if (/srtp.*(key|cipher).*(invalid|wrong|length)/i.test(stderr)) return 'srtp element refused the key (wrong length for the cipher?)';
    const err = /^ERROR: (.+)$/m.exec(stderr)?.[1];
    if (err) return err.trim();
    return undefined;
  }
  const opt = /Option (\S+) not found/.exec(stderr)?.[1];
  if (opt) return `ffmpeg has no option ${opt} here (srtp_in_* exist only for the srtp:// protocol; receivers need an SDP file)`;
  const enc = /Unknown encoder '([^']+)'|Encoder \(codec ([^)]+)\) not found/.exec(stderr);
  if (enc) return `ffmpeg has no encoder ${enc[1] ?? enc[2]} — install a full ffmpeg build (Debian: ffmpeg)`;
  if (/bind failed|Address already in use/i.test(stderr)) return 'ffmpeg cannot bind its UDP port (in use by another process? an SDP receiver also binds port+1 for RTCP)';
  if (/HMAC mismatch/.test(stderr)) return 'every packet failed SRTP authentication (HMAC mismatch): sender and receiver hold different keys';
  if (/Protocol not on whitelist/.test(stderr)) return 'protocol not on ffmpeg\'s whitelist (-protocol_whitelist file,udp,rtp)';
  if (/Invalid data found when processing input/.test(stderr)) return 'ffmpeg could not parse its input (SDP or stream)';
  const last = stderr.split('\n').filter((l) => !isNoise(l)).pop();
  return last?.trim() || undefined;
}

/** "gst-launch-1.0 exited 1: no element srtpdec — install gstreamer1.0-plugins-bad". */
export function describeExit(tool: ToolName, exit: ToolExit): string {
  const how = exit.code !== null ? `exited ${exit.code}` : `was killed by ${exit.signal ?? 'a signal'}`;
  const why = diagnose(tool, exit.stderrTail);
  return why ? `${tool} ${how}: ${why}` : `${tool} ${how}${exit.stderrTail ? `; stderr ends:\n${exit.stderrTail}` : ' (no stderr)'}`;
}

/** The tool could not be started at all. */
export function describeSpawnError(tool: ToolName, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `${tool} not found — install ${TOOL_PACKAGE[tool]} (scripts/apt-packages.txt lists them)`;
  if (err.code === 'EACCES') return `${tool} is not executable (${err.message})`;
  return `${tool} could not be started: ${err.message}`;
}
