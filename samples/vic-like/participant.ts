/**
 * One participant of the vic-like conference (paper §9): a process that sends a video test
 * stream to the media group and receives everyone else's, keyed by the group key service.
 *
 *   test source (gst-launch / ffmpeg) ─plain RTP─▶ [getkey(); protect] ─SRTP─▶ media group
 *   media group ─SRTP─▶ [getkey(); unprotect] ─plain RTP─▶ one decoder per peer (gst / ffmpeg)
 *
 * As vic did, it calls getkey() before each send and each receive; the keys come from its own
 * local agent (`iolus agent`, a separate process like the Iolus client vic talked to). It
 * reports to the runner on stdout, one JSON line per report (status.ts).
 *
 *   node participant.js --name alice --group media.example --socket run/alice.sock --tool gst
 *     --media-group 127.0.0.1:40000 --ssrc 4097 --roster alice=4097,bob=4098 [--pattern 1]
 *     [--stale-ms 1000] [--report-ms 250]
 */
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ffmpegSenderCommand } from '../../src/adapters/ffmpeg/commands.js';
import { gstSenderCommand } from '../../src/adapters/gstreamer/pipelines.js';
import { DEFAULT_VIDEO } from '../../src/adapters/pipeline/media.js';
import { ToolProcess } from '../../src/adapters/pipeline/toolProcess.js';
import { hostPortSchema } from '../../src/adapters/relay/address.js';
import { isRtcp, parseRtpHeader } from '../../src/adapters/srtp/rtpPacket.js';
import { GroupName } from '../../src/wire/control.js';
import { VicKeys, type AgentState } from './getkey.js';
import { Peer } from './peer.js';
import type { ParticipantEvent, ParticipantStatus } from './status.js';

const Flags = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits, dashes'),
  group: GroupName,
  socket: z.string().min(1),
  tool: z.enum(['gst', 'ffmpeg']),
  'media-group': hostPortSchema(),
  ssrc: z.coerce.number().int().min(1).max(0xffffffff),
  roster: z.string().transform((s, ctx) => {
    const m = new Map<number, string>();
    for (const part of s.split(',').filter(Boolean)) {
      const [n, v] = part.split('=');
      const ssrc = Number(v);
      if (!n || !Number.isInteger(ssrc)) {
        ctx.addIssue({ code: 'custom', message: `expected name=ssrc, got ${part}` });
        return z.NEVER;
      }
      m.set(ssrc >>> 0, n);
    }
    return m;
  }),
  pattern: z.coerce.number().int().min(0).max(3).default(0),
  'stale-ms': z.coerce.number().int().min(100).max(60_000).default(1000),
  'report-ms': z.coerce.number().int().min(50).max(10_000).default(250),
}).strict();
type Flags = z.infer<typeof Flags>;

function emit(o: ParticipantStatus | ParticipantEvent): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

class Participant {
  private readonly peers = new Map<number, Peer>();
  private readonly sent = { frames: 0, packets: 0, refused: 0 };
  private media!: dgram.Socket;
  private plainIn!: dgram.Socket;
  private sender: ToolProcess | undefined;
  private timers: NodeJS.Timeout[] = [];
  private reports = 0;
  private stopping = false;

  constructor(private readonly f: Flags, private readonly keys: VicKeys) {}

  async start(): Promise<void> {
    this.media = await udp(0);
    this.plainIn = await udp(0);
    this.media.on('message', (msg, rinfo) => this.receive(msg, `${rinfo.address}:${rinfo.port}`));
    this.plainIn.on('message', (msg) => this.send(msg));
    this.startSender();
    const group = this.f['media-group'];
    const keepAlive = () => this.media.send(Buffer.from([0]), group.port, group.host);
    keepAlive();
    this.timers.push(setInterval(keepAlive, 1000));
    this.timers.push(setInterval(() => this.report(), this.f['report-ms']));
    emit({ event: 'ready', t: Date.now(), name: this.f.name });
  }

  /** A plain RTP/RTCP packet from our test source: getkey(), protect, to the group. */
  private send(plain: Buffer): void {
    const ring = this.keys.getkey();
    const r = ring.protect(plain);
    if (!r.ok) {
      this.sent.refused++;
      return;
    }
    if (!isRtcp(plain)) {
      this.sent.packets++;
      if (plain.length > 1 && (plain[1]! & 0x80) !== 0) this.sent.frames++;
    }
    const g = this.f['media-group'];
    this.media.send(r.packet, g.port, g.host);
  }

  /** An SRTP packet from the group: getkey(), unprotect, to that peer's decoder. */
  private receive(msg: Buffer, source: string): void {
    if (isRtcp(msg)) {
      this.keys.getkey().unprotect(msg, source); // counted by the ring; nothing to show
      return;
    }
    const hdr = parseRtpHeader(msg);
    if (!hdr || hdr.ssrc === this.f.ssrc) return;
    const now = Date.now();
    const peer = this.peer(hdr.ssrc);
    // Marker bit and timestamp are in the clear (RFC 3711 §3.1): frames are counted even when refused.
    peer.arrived((msg[1]! & 0x80) !== 0);
    const r = this.keys.getkey().unprotect(msg, source);
    if (r.ok) peer.decrypted(r.packet, r.epoch, now);
    else peer.refused(msg.readUInt32BE(4), now);
  }

  private peer(ssrc: number): Peer {
    let p = this.peers.get(ssrc);
    if (!p) {
      const name = this.f.roster.get(ssrc) ?? `ssrc-${ssrc.toString(16)}`;
      p = new Peer(name, ssrc, this.f.tool, this.media, this.f['stale-ms']);
      this.peers.set(ssrc, p);
    }
    return p;
  }

  private startSender(): void {
    if (this.stopping) return;
    const spec = {
      media: 'video' as const, video: DEFAULT_VIDEO, ssrc: this.f.ssrc, pattern: this.f.pattern,
      to: { host: '127.0.0.1', port: (this.plainIn.address() as { port: number }).port },
    };
    const tool = ToolProcess.start(this.f.tool === 'gst' ? gstSenderCommand(spec) : ffmpegSenderCommand(spec));
    this.sender = tool;
    void tool.exited.then(() => {
      if (this.stopping) return;
      const why = tool.failure()?.message ?? 'exited';
      emit({ event: 'error', t: Date.now(), name: this.f.name, detail: `sender: ${why}; restarting in 1 s` });
      setTimeout(() => this.startSender(), 1000).unref();
    });
  }

  private report(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      const change = p.update(now);
      if (change) emit({ event: change, t: now, name: this.f.name, peer: p.name });
    }
    const withThumb = this.reports++ % 2 === 0;
    emit({
      event: 'status', t: now, name: this.f.name, tool: this.f.tool,
      epoch: this.keys.getkey().currentEpoch() ?? null,
      agent: this.keys.agentState,
      sent: { ...this.sent },
      getkey: this.keys.calls,
      peers: [...this.peers.values()].map((p) => p.status(withThumb)),
    });
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all([this.sender?.stop(1000), ...[...this.peers.values()].map((p) => p.stopDecoder())]);
    this.keys.close();
    this.media.close();
    this.plainIn.close();
  }
}

function udp(port: number): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 20 });
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: Object.fromEntries(['name', 'group', 'socket', 'tool', 'media-group', 'ssrc', 'roster', 'pattern', 'stale-ms', 'report-ms'].map((k) => [k, { type: 'string' as const }])),
    strict: true,
  });
  const r = Flags.safeParse(values);
  if (!r.success) {
    for (const i of r.error.issues) process.stderr.write(`participant: --${i.path.join('.')}: ${i.message}\n`);
    process.exit(2);
  }
  const f = r.data;
  const keys = await VicKeys.open(f.group, f.socket, 'AES_CM_128_HMAC_SHA1_80', (s: AgentState, why: string) => emit({ event: 'agent', t: Date.now(), name: f.name, detail: `${s}: ${why}` }));
  const p = new Participant(f, keys);
  await p.start();
  const stop = () => void p.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}


main().catch((err: unknown) => {
  process.stderr.write(`participant: ${(err as Error).message}\n`);
  process.exit(1);
});
