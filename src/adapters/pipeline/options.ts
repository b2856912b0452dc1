/**
 * A pipeline's options, checked by zod before anything starts; every problem names its
 * option (the CLI prints them as `--<option>: why`). The same schema serves the CLI (strings)
 * and programs (numbers, HostPort objects).
 */
import { z } from 'zod';
import { GroupName } from '../../wire/control.js';
import { formatHostPort, parseHostPort, type HostPort } from '../relay/address.js';
import { SRTP_PROFILE_NAMES, SUITE_SPELLINGS } from '../srtp/profile.js';
import { isIP } from 'node:net';
import { DEFAULT_VIDEO, type MediaKind, type VideoFormat } from './media.js';

export const TOOLS = ['gst', 'ffmpeg'] as const;
export type Tool = (typeof TOOLS)[number];
export const MODES = ['direct', 'relay'] as const;
export type PipelineMode = (typeof MODES)[number];
export type PipelineRole = 'send' | 'receive';

const SUITES = Object.keys(SUITE_SPELLINGS) as [string, ...string[]];

const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (i) => (i.input === undefined ? `required (one of ${values.join(', ')})` : `must be one of ${values.join(', ')}, got ${JSON.stringify(i.input)}`) });

/** A number, or a string that `pattern` accepts (CLI), turned into a number; else `message`. */
const numeric = (pattern: RegExp, message: string) =>
  z.unknown().transform((v, ctx): number => {
    if (typeof v === 'number') return v;
    if (typeof v === 'string' && pattern.test(v)) return Number(v);
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  });

const whole = (min: number, max: number, what: string) =>
  numeric(/^\d+$/, `must be a whole number (${what})`)
    .pipe(z.number().int({ error: `must be a whole number (${what})` }).min(min, { error: `must be at least ${min}` }).max(max, { error: `must be at most ${max}` }));

/** An SSRC as a number or a string (decimal, or 0x hex). */
const ssrcSchema = numeric(/^(0x[0-9a-fA-F]{1,8}|\d{1,10})$/, 'must be a 32-bit number (decimal or 0x hex)')
  .pipe(z.number().int().min(0).max(0xffffffff, { error: 'must fit in 32 bits' }));

/** `host:port` (CLI) or a HostPort (programs); the problem says what is wrong with it. */
const endpoint = z.unknown().transform((v, ctx): HostPort => {
  const text = typeof v === 'object' && v !== null && 'host' in v && 'port' in v ? formatHostPort(v as HostPort) : v;
  if (typeof text !== 'string') {
    ctx.addIssue({ code: 'custom', message: 'expected host:port' });
    return z.NEVER;
  }
  const r = parseHostPort(text);
  if (typeof r === 'string') {
    ctx.addIssue({ code: 'custom', message: r });
    return z.NEVER;
  }
  return r;
});

export const pipelineOptionsSchema = z.object({
  role: oneOf(['send', 'receive'] as const),
  tool: oneOf(TOOLS),
  mode: oneOf(MODES).default('relay'),
  group: z.string({ error: (i) => (i.input === undefined ? 'required (the group name)' : 'must be a string') }).pipe(GroupName),
  media: oneOf(['video', 'audio'] as const).default('video'),
  /** send: where SRTP goes. */
  to: endpoint.optional(),
  /** receive: where SRTP arrives (an IP literal). */
  listen: endpoint.optional(),
  profile: oneOf(SUITES).default('AES_CM_128_HMAC_SHA1_80'),
  mki: z.boolean().default(false),
  ssrc: ssrcSchema.optional(),
  /** send: stop after this many frames (video) or 20 ms packets (audio). */
  frames: whole(1, 10_000_000, 'frames').optional(),
  /** Stop after this many seconds. */
  duration: whole(1, 31_536_000, 'seconds').optional(),
  width: whole(16, 1920, 'pixels').default(DEFAULT_VIDEO.width),
  height: whole(16, 1080, 'pixels').default(DEFAULT_VIDEO.height),
  fps: whole(1, 60, 'frames per second').default(DEFAULT_VIDEO.fps),
  pattern: whole(0, 3, 'test pattern').default(0),
  /** The local agent's socket (default: the group's socket under IOLUS_RUN_DIR). */
  socket: z.string().min(1).optional(),
  /** How long to wait for a key (direct mode) before failing, in seconds. */
  'key-wait': whole(0, 86_400, 'seconds').default(30),
}).strict().superRefine((o, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (o.role === 'send') {
    if (!o.to) issue('to', 'required to send (host:port the SRTP goes to)');
    if (o.listen) issue('listen', 'only for receive (a sender sends to --to)');
  } else {
    if (!o.listen) issue('listen', 'required to receive (host:port the SRTP arrives on)');
    if (o.to) issue('to', 'only for send (a receiver listens on --listen)');
    if (o.frames !== undefined) issue('frames', 'only for send');
    const l = o.listen;
    if (l && typeof l === 'object' && isIP(l.host) === 0) issue('listen', `must be an IP address to bind, got ${l.host}`);
  }
  if (o.mode === 'relay') {
    if (!(SRTP_PROFILE_NAMES as readonly string[]).includes(o.profile)) {
      issue('profile', `the relay (werift) runs ${SRTP_PROFILE_NAMES.join(' and ')} only; ${o.profile} needs --mode direct`);
    }
  } else {
    const s = SUITE_SPELLINGS[o.profile]!;
    if (o.tool === 'ffmpeg' && !s.ffmpeg) issue('profile', `ffmpeg has no ${o.profile}; it has AES_CM_128_HMAC_SHA1_80 and AES_CM_128_HMAC_SHA1_32`);
    if (o.tool === 'ffmpeg' && o.mki) issue('mki', 'ffmpeg cannot send or read an MKI (use --tool gst, or --mode relay)');
    if (o.tool === 'gst' && o.role === 'receive' && o.ssrc === undefined) issue('ssrc', 'required for a GStreamer receiver in direct mode (srtpdec keys only the SSRC its caps name)');
  }
  if (o.media === 'audio' && (o.pattern !== 0)) issue('pattern', 'only for video');
});

export type PipelineOptionsInput = z.input<typeof pipelineOptionsSchema>;
type Parsed = z.output<typeof pipelineOptionsSchema>;

/** Options after parsing: defaults filled, endpoints as HostPort. */
export interface PipelineOptions {
  readonly role: PipelineRole;
  readonly tool: Tool;
  readonly mode: PipelineMode;
  readonly group: string;
  readonly media: MediaKind;
  readonly to?: HostPort;
  readonly listen?: HostPort;
  /** SDES suite name; the key label is `srtp/<profile>`. */
  readonly profile: string;
  readonly mki: boolean;
  /** The sender's SSRC: always set to send (random unless given); to receive, only if given. */
  readonly ssrc?: number;
  readonly frames?: number;
  readonly durationMs?: number;
  readonly video: VideoFormat;
  readonly pattern: number;
  readonly socket?: string;
  readonly keyWaitMs: number;
}

function toOptions(p: Parsed): PipelineOptions {
  return {
    role: p.role,
    tool: p.tool,
    mode: p.mode,
    group: p.group,
    media: p.media,
    ...(p.to ? { to: p.to } : {}),
    ...(p.listen ? { listen: p.listen } : {}),
    profile: p.profile,
    mki: p.mki,
    // Senders sharing a group key need distinct SSRCs (RFC 3711 §9.1): random unless given.
    ...(p.ssrc !== undefined ? { ssrc: p.ssrc } : p.role === 'send' ? { ssrc: Math.floor(Math.random() * 0xfffffffe) + 1 } : {}),
    ...(p.frames !== undefined ? { frames: p.frames } : {}),
    ...(p.duration !== undefined ? { durationMs: p.duration * 1000 } : {}),
    video: { width: p.width, height: p.height, fps: p.fps },
    pattern: p.pattern,
    ...(p.socket ? { socket: p.socket } : {}),
    keyWaitMs: p['key-wait'] * 1000,
  };
}

export type OptionsResult = { ok: true; options: PipelineOptions } | { ok: false; problems: string[] };

/** Parses options; problems as `<option>: why`, one per line. */
export function parsePipelineOptions(input: unknown): OptionsResult {
  const r = pipelineOptionsSchema.safeParse(input);
  if (!r.success) return { ok: false, problems: r.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`) };
  return { ok: true, options: toOptions(r.data) };
}
