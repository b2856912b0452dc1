/**
 * One remote participant as this one sees it: frames that arrived, that decrypted and were
 * decoded (by a gst-launch or ffmpeg decoder fed plain RTP on 127.0.0.1), that failed; and
 * whether it is in the view. A peer leaves the view as soon as its packets stop decrypting
 * (a key we do not hold: we were expelled, or it sends under a key we never got) or when no
 * frame was decoded for `staleMs`; its decoder is stopped after a while out of view.
 */
import dgram from 'node:dgram';
import { ffmpegReceiverCommand } from '../../src/adapters/ffmpeg/commands.js';
import { gstReceiverCommand } from '../../src/adapters/gstreamer/pipelines.js';
import { FrameCounter } from '../../src/adapters/pipeline/frameCounter.js';
import { MEDIA } from '../../src/adapters/pipeline/media.js';
import { freeUdpPort, waitUdpBound } from '../../src/adapters/pipeline/ports.js';
import { ToolProcess } from '../../src/adapters/pipeline/toolProcess.js';
import type { PeerStatus } from './status.js';

const DECODER_IDLE_MS = 5000;

export class Peer {
  received = 0;
  failed = 0;
  epoch: number | null = null;
  private decoder: { tool?: ToolProcess; port: number; ready: boolean; counter: FrameCounter } | undefined;
  private decodedBefore = 0;
  private lastOkAt = 0;
  private lastFailAt = 0;
  private lastFailedTs: number | undefined;
  private visibleNow = false;

  constructor(
    readonly name: string,
    readonly ssrc: number,
    private readonly tool: 'gst' | 'ffmpeg',
    private readonly out: dgram.Socket,
    private readonly staleMs: number,
  ) {}

  get decoded(): number {
    return this.decodedBefore + (this.decoder?.counter.frames ?? 0);
  }

  /** A packet from this peer arrived (authentic or not): count frames by the marker bit. */
  arrived(marker: boolean): void {
    if (marker) this.received++;
  }

  /** Our key ring refused a packet of frame `timestamp`. */
  refused(timestamp: number, now: number): void {
    this.lastFailAt = now;
    if (this.lastFailedTs !== timestamp) {
      this.lastFailedTs = timestamp;
      this.failed++;
    }
  }

  /** A packet decrypted: hand it to the decoder (started on first use). */
  decrypted(plain: Buffer, epoch: number, now: number): void {
    this.lastOkAt = now;
    this.epoch = epoch;
    const d = this.decoder ?? this.startDecoder();
    if (d.ready) this.out.send(plain, d.port, '127.0.0.1');
  }

  /** Recomputes visibility; returns 'vanished' / 'appeared' on a change. */
  update(now: number): 'vanished' | 'appeared' | undefined {
    const lastFrame = this.decoder?.counter.lastFrameAt ?? 0;
    const visible = now - lastFrame < this.staleMs && this.lastOkAt >= this.lastFailAt;
    let change: 'vanished' | 'appeared' | undefined;
    if (visible !== this.visibleNow) change = visible ? 'appeared' : 'vanished';
    this.visibleNow = visible;
    if (this.decoder && now - Math.max(this.lastOkAt, lastFrame) > DECODER_IDLE_MS) void this.stopDecoder();
    return change;
  }

  get visible(): boolean {
    return this.visibleNow;
  }

  status(withThumb: boolean): PeerStatus {
    const frame = this.visibleNow ? this.decoder?.counter.lastFrame() : undefined;
    return {
      name: this.name, ssrc: this.ssrc, visible: this.visibleNow, received: this.received, decoded: this.decoded, failed: this.failed, epoch: this.epoch,
      ...(withThumb && frame ? { thumb: frame.toString('base64') } : {}),
    };
  }

  async stopDecoder(): Promise<void> {
    const d = this.decoder;
    if (!d) return;
    this.decoder = undefined;
    this.decodedBefore += d.counter.frames;
    await d.tool?.stop(300);
  }

  private startDecoder(): NonNullable<Peer['decoder']> {
    const d: NonNullable<Peer['decoder']> = { port: 0, ready: false, counter: new FrameCounter(MEDIA.video.outputFrameBytes) };
    this.decoder = d;
    void (async () => {
      d.port = await freeUdpPort('127.0.0.1', this.tool === 'ffmpeg');
      const spec = { media: 'video' as const, listen: { host: '127.0.0.1', port: d.port } };
      const tool = ToolProcess.start(this.tool === 'gst' ? gstReceiverCommand(spec) : ffmpegReceiverCommand(spec), { onStdout: (c) => d.counter.push(c) });
      d.tool = tool;
      if (this.decoder !== d) {
        await tool.stop(0); // stopped while it was starting
        return;
      }
      void tool.exited.then(() => {
        const f = tool.failure();
        if (f) process.stderr.write(`decoder for ${this.name}: ${f.message}\n`);
        if (this.decoder === d) {
          this.decoder = undefined;
          this.decodedBefore += d.counter.frames;
        }
      });
      d.ready = await waitUdpBound(d.port, 10_000, () => tool.running);
    })().catch((err: unknown) => process.stderr.write(`decoder for ${this.name}: ${(err as Error).message}\n`));
    return d;
  }
}
