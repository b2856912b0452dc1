/**
 * `iolus pipeline send|receive --tool gst|ffmpeg --group <g> [--mode relay|direct]
 *   (--to host:port | --listen host:port) [options]`
 *
 * Runs a GStreamer or ffmpeg sender or receiver keyed from the group's local agent
 * (src/adapters/pipeline): `relay` (default) puts an in-process SRTP relay between the tool
 * and the network and follows rollovers without a gap; `direct` gives the tool the key itself
 * and restarts it at each rollover. A receiver prints its counters every --stats-interval
 * seconds (frames decoded, epoch, restarts, packets refused) and all of them as JSON at the end.
 */
import { parseArgs } from 'node:util';
import { PipelineLauncher, type PipelineCounters } from '../../adapters/pipeline/launcher.js';
import { parsePipelineOptions } from '../../adapters/pipeline/options.js';
import { formatHostPort } from '../../adapters/relay/address.js';
import { ValidationError } from '../../errors.js';
import { logToStderr } from '../../util/log.js';

const USAGE = `usage: iolus pipeline send|receive --tool gst|ffmpeg --group <g> [options]

  send     a test source (video: RTP/JPEG, audio: PCMU) to --to host:port as SRTP
  receive  SRTP on --listen host:port, decoded; prints counters

  --tool gst|ffmpeg        gst-launch-1.0 or ffmpeg
  --mode relay|direct      relay (default): plain RTP to an in-process SRTP relay that follows
                           every rollover hitlessly; direct: the key on the tool's command line,
                           the tool restarted at each rollover (a gap, see src/adapters/README.md)
  --media video|audio      default video (160x120 at 10 fps)
  --profile P              SRTP suite (default AES_CM_128_HMAC_SHA1_80; relay: also AEAD_AES_128_GCM;
                           direct gst: any of the six; direct ffmpeg: AES_CM_128_HMAC_SHA1_80/_32)
  --mki                    4-byte MKI naming the epoch (relay, or direct gst)
  --ssrc N                 the sender's SSRC (send: default random; direct gst receive: required)
  --frames N               send: stop after N frames
  --duration S             stop after S seconds
  --width W --height H --fps F --pattern 0..3   video test source
  --socket PATH            the local agent's socket (default: the group's, under IOLUS_RUN_DIR)
  --key-wait S             direct mode: fail after S seconds without a key (default 30)
  --stats-interval S       print counters every S seconds (default 1 for receive, 0 for send)
  --json                   counters as JSON lines

examples:
  iolus pipeline send --tool ffmpeg --group media --to 203.0.113.7:5004 --ssrc 0x1234
  iolus pipeline receive --tool gst --group media --mode direct --listen 0.0.0.0:5004 --ssrc 0x1234
`;

const FLAGS = {
  tool: { type: 'string' }, group: { type: 'string' }, mode: { type: 'string' }, media: { type: 'string' },
  to: { type: 'string' }, listen: { type: 'string' }, profile: { type: 'string' }, mki: { type: 'boolean' },
  ssrc: { type: 'string' }, frames: { type: 'string' }, duration: { type: 'string' }, width: { type: 'string' },
  height: { type: 'string' }, fps: { type: 'string' }, pattern: { type: 'string' }, socket: { type: 'string' },
  'key-wait': { type: 'string' }, 'stats-interval': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

export interface PipelineCommandDeps {
  /** Stops the pipeline when aborted (tests); otherwise SIGINT/SIGTERM do. */
  readonly signal?: AbortSignal;
  readonly stdout?: { write(s: string): unknown };
  /** Replaces the launcher's components (tests). */
  readonly components?: ConstructorParameters<typeof PipelineLauncher>[1];
}

/** One human line of counters. */
export function describeCounters(c: PipelineCounters, previousFrames = 0, seconds = 1): string {
  const parts = [`${c.state}`, `epoch ${c.epoch ?? '-'}`];
  if (c.role === 'receive') parts.push(`frames ${c.frames} (${Math.round((c.frames - previousFrames) / seconds)}/s)`);
  if (c.mode === 'direct') parts.push(`restarts ${c.restarts}`);
  if (c.srtpFailures) parts.push(`srtp-failures ${c.srtpFailures}`);
  const gap = c.restartGaps.at(-1);
  if (gap) parts.push(`last restart gap ${gap.gapMs} ms (${gap.frames} frames)`);
  if (c.relay) {
    const drops = Object.entries(c.relay.dropped).filter(([, n]) => n > 0).map(([k, n]) => `${k}:${n}`);
    parts.push(`relay in ${c.relay.packetsIn} out ${c.relay.packetsOut}${drops.length ? ` dropped ${drops.join(',')}` : ''}`);
  }
  if (c.waitingFor) parts.push(`waiting: ${c.waitingFor}`);
  return parts.join('  ');
}

export async function run(args: string[], deps: PipelineCommandDeps = {}): Promise<number> {
  const out = deps.stdout ?? process.stdout;
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof FLAGS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args, options: FLAGS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new ValidationError('cli.syntax', `pipeline: ${(err as Error).message}`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    out.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || (positionals[0] !== 'send' && positionals[0] !== 'receive')) {
    throw new ValidationError('cli.invalid', `pipeline: say send or receive (got ${positionals.length ? positionals.join(' ') : 'nothing'})`);
  }
  const role = positionals[0];
  const statsRaw = v['stats-interval'] ?? (role === 'receive' ? '1' : '0');
  if (!/^\d+$/.test(statsRaw)) throw new ValidationError('cli.invalid', '--stats-interval: must be a whole number of seconds');
  const { json: asJson, 'stats-interval': _s, help: _h, ...rest } = v;
  const r = parsePipelineOptions({ role, ...rest });
  if (!r.ok) throw new ValidationError('cli.invalid', r.problems.map((p) => `--${p}`));
  logToStderr();
  const o = r.options;
  const launcher = new PipelineLauncher(o, deps.components);
  const print = (c: PipelineCounters, prev: number, secs: number) => out.write(asJson ? `${JSON.stringify({ t: Date.now(), ...summary(c) })}\n` : `${describeCounters(c, prev, secs)}\n`);

  const stop = () => void launcher.stop();
  if (deps.signal) deps.signal.addEventListener('abort', stop, { once: true });
  else {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  launcher.on((e) => {
    if (e.type === 'restart' && !asJson) out.write(`rollover: epoch ${e.fromEpoch ?? '-'} → ${e.toEpoch ?? '-'}, ${o.tool} restarted\n`);
    if (e.type === 'waiting' && !asJson) out.write(`waiting for a key: ${e.reason}\n`);
  });
  const where = o.role === 'send' ? `to ${formatHostPort(o.to!)}` : `on ${formatHostPort(o.listen!)}`;
  out.write(asJson
    ? `${JSON.stringify({ t: Date.now(), event: 'start', role: o.role, tool: o.tool, mode: o.mode, media: o.media, ssrc: o.ssrc, where })}\n`
    : `iolus pipeline: ${o.tool} ${o.role} ${o.media} ${where}, ${o.mode} mode, ${o.profile}${o.mki ? ' with MKI' : ''}, ${o.ssrc !== undefined ? `ssrc 0x${o.ssrc.toString(16)}, ` : ''}group ${o.group}\n`);
  const interval = Number(statsRaw);
  let prev = 0;
  const timer = interval > 0 ? setInterval(() => {
    const c = launcher.counters();
    print(c, prev, interval);
    prev = c.frames;
  }, interval * 1000) : undefined;
  try {
    await launcher.start();
    await launcher.done;
  } finally {
    if (timer) clearInterval(timer);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await launcher.stop();
    out.write(`${JSON.stringify({ t: Date.now(), event: 'end', ...summary(launcher.counters()) })}\n`);
  }
  return 0;
}

/** Counters without the per-run detail (which the final line keeps). */
function summary(c: PipelineCounters): Record<string, unknown> {
  return { ...c, runs: c.runs.length > 8 ? c.runs.slice(-8) : c.runs };
}
