/**
 * The pipeline launcher: one sender or receiver (GStreamer or ffmpeg) keyed from the group's
 * local agent, in one of two modes (DESIGN.md, Adapters):
 *
 * - `direct`: the tool does SRTP itself with the key on its command line (srtpenc key=…,
 *   srtpdec caps, ffmpeg -srtp_out_params, an SDP a=crypto file). Neither tool can change a
 *   key while running, so at each rollover (the key's notAfter, or an `activate` event from
 *   the agent after a forced roll) the process is killed and started again with the new key;
 *   each run is one epoch, and a receiver's counters are per epoch. README: what a restart costs.
 * - `relay`: the tool speaks plain RTP on 127.0.0.1 to an in-process SrtpRelay
 *   (src/adapters/relay), whose key ring follows every rollover with no packet lost to keying;
 *   the tool runs once.
 *
 * Lifecycle (js-libp2p style): `new PipelineLauncher(options, components)`, `start()`,
 * `stop()`, `done` (resolves when the pipeline ends: stop(), a sender's last frame, a duration,
 * or rejects with a PipelineError saying what went wrong). Every tool runs in its own process
 * group (toolProcess.ts): nothing outlives the launcher.
 */
import dgram from 'node:dgram';
import type { KeySource } from '../../client/keyMaterial.js';
import { openKeySource } from '../../client/localAgent/agentClient.js';
import { IolusError, ValidationError } from '../../errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import { ffmpegReceiverCommand, ffmpegSenderCommand } from '../ffmpeg/commands.js';
import { gstReceiverCommand, gstSenderCommand } from '../gstreamer/pipelines.js';
import { formatHostPort, type HostPort } from '../relay/address.js';
import { SrtpRelay } from '../relay/relay.js';
import type { SrtpProfileName } from '../srtp/profile.js';
import { AgentKeys, type AgentEvent, type KeyProvider } from './agentKeys.js';
import { PipelineError, SRTP_FAILURE, type ToolExit } from './errors.js';
import { FrameCounter } from './frameCounter.js';
import { framesPerSecond, MEDIA } from './media.js';
import { parsePipelineOptions, type PipelineOptions, type PipelineOptionsInput } from './options.js';
import { freeUdpPort, udpSink, waitUdpBound } from './ports.js';
import type { ReceiverSpec, SenderSpec, SrtpKeying } from './spec.js';
import { ToolProcess, type ToolCommand } from './toolProcess.js';
import { RunBook, type PipelineCounters, type PipelineState, type RunCounters } from './runBook.js';

export type { PipelineCounters, PipelineState, RestartGap, RunCounters } from './runBook.js';

export interface PipelineComponents {
  /** getkey() for direct mode; default: the local agent (options.socket). */
  readonly keys?: KeyProvider;
  /** Keys for the relay; default: a KeySource over the local agent. */
  readonly keySource?: KeySource;
  readonly logger?: Logger;
  /** Override the tools' executables (tests). */
  readonly executables?: { readonly gst?: string; readonly ffmpeg?: string };
  /** Decoded frames as they come (the vic-like view draws them). */
  readonly onFrame?: (frame: Buffer) => void;
}

export type PipelineEvent =
  | { type: 'run'; run: RunCounters }
  | { type: 'restart'; fromEpoch: number | undefined; toEpoch: number | undefined }
  | { type: 'waiting'; reason: string }
  | { type: 'exit'; exit: ToolExit }
  | { type: 'state'; state: PipelineState };

const RECEIVER_STOP_GRACE_MS = 500;
const SENDER_STOP_GRACE_MS = 2000;

export class PipelineLauncher {
  readonly options: PipelineOptions;
  private readonly log: Logger;
  private readonly listeners = new Set<(e: PipelineEvent) => void>();
  private readonly book: RunBook;
  private state: PipelineState = 'new';
  private tool: ToolProcess | undefined;
  private run: RunCounters | undefined;
  private relay: SrtpRelay | undefined;
  private rtcpSink: dgram.Socket | undefined;
  private keys: KeyProvider | undefined;
  private keySource: (KeySource & { close?(): void }) | undefined;
  private ownsKeys = false;
  private waitingFor: string | undefined;
  private error: PipelineError | undefined;
  private readonly stopCtl = new AbortController();
  private resolveDone!: () => void;
  private rejectDone!: (err: unknown) => void;
  /** Resolves when the pipeline has ended cleanly; rejects with a PipelineError otherwise. */
  readonly done: Promise<void>;

  constructor(options: PipelineOptions | PipelineOptionsInput, private readonly components: PipelineComponents = {}) {
    if (isParsed(options)) {
      this.options = options;
    } else {
      const r = parsePipelineOptions(options);
      if (!r.ok) throw new ValidationError('pipeline.options', r.problems);
      this.options = r.options;
    }
    this.log = components.logger ?? createLogger('pipeline', { role: this.options.role, tool: this.options.tool, mode: this.options.mode });
    this.book = new RunBook(framesPerSecond(this.options.media, this.options.video));
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => undefined); // a caller that never awaits `done` gets no unhandled rejection
  }

  get label(): string {
    return `srtp/${this.options.profile}`;
  }

  on(listener: (e: PipelineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts the pipeline. Direct mode: getkey() (waiting up to key-wait for one), then the tool;
   * relay mode: the relay and the tool. Rejects with a PipelineError when it cannot start;
   * later failures reject `done`.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new PipelineError('pipeline.state', `start() called when ${this.state}`);
    this.setState('starting');
    const o = this.options;
    if (o.durationMs !== undefined) setTimeout(() => void this.finish(), o.durationMs).unref();
    try {
      if (o.mode === 'relay') {
        await this.startRelayMode();
      } else {
        this.keys = this.components.keys ?? this.ownKeys();
        const first = await this.nextKey(undefined);
        if (!first) return;
        void this.directLoop(first);
      }
    } catch (err) {
      await this.fail(err);
      throw this.error ?? err;
    }
  }

  /** Stops the tool (its whole process group) and the relay. Idempotent. */
  async stop(): Promise<void> {
    await this.finish();
    await this.done.catch(() => undefined);
  }

  counters(): PipelineCounters {
    const o = this.options;
    return {
      role: o.role,
      tool: o.tool,
      mode: o.mode,
      state: this.state,
      epoch: o.mode === 'relay' ? this.relay?.ring.currentEpoch() : this.run?.epoch,
      ...this.book.snapshot(),
      keyPulls: this.keys instanceof AgentKeys ? this.keys.pulls : 0,
      ...(this.waitingFor ? { waitingFor: this.waitingFor } : {}),
      ...(this.relay ? { relay: this.relay.counters() } : {}),
      ...(this.error ? { error: this.error.message } : {}),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Direct mode: one process per epoch.

  private async directLoop(first: SrtpKeyingWithEpoch): Promise<void> {
    let key: SrtpKeyingWithEpoch | undefined = first;
    try {
      while (key && !this.stopping) {
        const tool = await this.launch(key.keying, key.epoch);
        const outcome = await this.untilRollover(tool, key);
        if (outcome === 'stop') return;
        if (outcome === 'exit') {
          await this.toolEnded(tool);
          return;
        }
        // Rollover: kill at once (the key is over), then start again with the new one.
        const killedAt = Date.now();
        const old = this.run;
        await tool.stop(0);
        this.book.restarted(old, killedAt);
        key = await this.nextKey(key.epoch);
        if (!key) return;
        this.emit({ type: 'restart', fromEpoch: old?.epoch, toEpoch: key.epoch });
      }
    } catch (err) {
      await this.fail(err);
    }
  }

  /** Waits for the key's end, an `activate` event naming another epoch, the tool's exit, or stop(). */
  private untilRollover(tool: ToolProcess, key: SrtpKeyingWithEpoch): Promise<'roll' | 'exit' | 'stop'> {
    return new Promise((resolve) => {
      const cleanup: (() => void)[] = [];
      const settle = (v: 'roll' | 'exit' | 'stop') => {
        for (const c of cleanup) c();
        resolve(v);
      };
      const timer = setTimeout(() => settle('roll'), Math.max(0, key.notAfter - Date.now()));
      cleanup.push(() => clearTimeout(timer));
      cleanup.push(this.keys!.watch((e: AgentEvent) => {
        if (e.event === 'activate' && e.epoch !== undefined && e.epoch !== key.epoch) settle('roll');
      }));
      void tool.exited.then(() => settle('exit'));
      const onStop = () => settle('stop');
      this.stopCtl.signal.addEventListener('abort', onStop);
      cleanup.push(() => this.stopCtl.signal.removeEventListener('abort', onStop));
    });
  }

  /**
   * getkey(): the key in force now, newer than `after`. Without one (not joined, agent gone,
   * expelled: the next key never came) the pipeline waits, polling and listening to the
   * agent, for at most keyWaitMs; then it fails saying why.
   */
  private async nextKey(after: number | undefined): Promise<SrtpKeyingWithEpoch | undefined> {
    const deadline = Date.now() + this.options.keyWaitMs;
    let reason = '';
    for (;;) {
      if (this.stopping) return undefined;
      const r = await this.keys!.getkey(this.label);
      if (r.key && (after === undefined || r.key.epoch !== after) && r.key.notAfter > Date.now()) {
        this.waitingFor = undefined;
        if (this.state === 'waiting') this.setState('running');
        return {
          epoch: r.key.epoch,
          notAfter: r.key.notAfter,
          keying: { suite: this.options.profile, key: r.key.key, ...(this.options.mki ? { mki: r.key.mki } : {}) },
        };
      }
      reason = r.key ? `the agent still gives epoch ${r.key.epoch}` : r.reason;
      if (after === undefined && !r.key && r.agentGone) throw new PipelineError('pipeline.noAgent', r.reason);
      if (Date.now() >= deadline) {
        throw new PipelineError('pipeline.noKey', `no key for ${this.label} from the local agent of ${this.options.group} for ${this.options.keyWaitMs / 1000} s: ${reason}`);
      }
      if (this.waitingFor !== reason) {
        this.waitingFor = reason;
        this.setState('waiting');
        this.emit({ type: 'waiting', reason });
        this.log.warn({ reason }, 'waiting for a key');
      }
      await this.pause(r.key ? 20 : 250);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Relay mode: the tool speaks plain RTP to an in-process SrtpRelay.

  private async startRelayMode(): Promise<void> {
    const o = this.options;
    const ks = this.components.keySource ?? (await this.openOwnKeySource());
    this.keySource = ks;
    const profile = o.profile as SrtpProfileName;
    if (o.role === 'send') {
      const relay = new SrtpRelay({ mode: 'encrypt', listen: { host: '127.0.0.1', port: 0 }, to: o.to!, profile, mki: o.mki }, { keySource: ks, logger: this.log.child({ component: 'relay' }) });
      this.relay = relay;
      const plain = await relay.start();
      await this.launch(undefined, undefined, plain);
    } else {
      const toolPort = await freeUdpPort('127.0.0.1', o.tool === 'ffmpeg');
      const tool = await this.launch(undefined, undefined, { host: '127.0.0.1', port: toolPort });
      // RTCP: ffmpeg reads it on port+1; gst-launch's plain receiver has no RTCP branch, so it goes to a sink here.
      let rtcpTo: HostPort = { host: '127.0.0.1', port: toolPort + 1 };
      if (o.tool === 'gst') {
        this.rtcpSink = await udpSink();
        rtcpTo = { host: '127.0.0.1', port: this.rtcpSink.address().port };
      }
      if (!(await waitUdpBound(toolPort, 10_000, () => tool.running))) {
        await tool.stop(0);
        throw tool.failure() ?? new PipelineError('pipeline.start', `${tool.tool} did not bind 127.0.0.1:${toolPort} within 10 s`, tool.tool);
      }
      const relay = new SrtpRelay(
        { mode: 'decrypt', listen: o.listen!, to: { host: '127.0.0.1', port: toolPort }, rtcpTo, profile, mki: o.mki },
        { keySource: ks, logger: this.log.child({ component: 'relay' }) },
      );
      this.relay = relay;
      await relay.start();
    }
    const tool = this.tool!;
    void tool.exited.then(() => (this.stopping ? undefined : this.toolEnded(tool).catch((err: unknown) => this.fail(err))));
  }

  // ------------------------------------------------------------------------------------------
  // Common

  /** Starts the tool for one run: SRTP with `keying` (direct), or plain RTP to/from `plain` (relay). */
  private async launch(keying: SrtpKeying | undefined, epoch: number | undefined, plain?: HostPort): Promise<ToolProcess> {
    const o = this.options;
    const run = this.book.begin(epoch);
    const command = this.command(keying, plain, run);
    const counter = o.role === 'receive' ? new FrameCounter(MEDIA[o.media].outputFrameBytes) : undefined;
    const tool = ToolProcess.start(command, {
      ...(counter ? { onStdout: (chunk: Buffer) => this.onOutput(counter, chunk, run) } : {}),
      onStderrLine: (line) => {
        if (SRTP_FAILURE.test(line)) this.book.srtpFailure(run);
      },
      ...(o.tool === 'gst' && keying && o.role === 'receive' ? { env: { GST_DEBUG: 'srtpdec:2', GST_DEBUG_NO_COLOR: '1' } } : {}),
      ...(this.components.executables?.[o.tool] ? { executable: this.components.executables[o.tool] } : {}),
    });
    run.pid = tool.pid;
    void tool.exited.then((exit) => {
      run.endedAt = Date.now();
      run.exit = { code: exit.code, signal: exit.signal };
      this.emit({ type: 'exit', exit });
    });
    this.tool = tool;
    this.run = run;
    if (this.state === 'starting' || this.state === 'waiting') this.setState('running');
    this.log.info({ epoch, pid: tool.pid, plain: plain ? formatHostPort(plain) : undefined }, `${command.tool} started`);
    this.emit({ type: 'run', run });
    if (!tool.pid) {
      await tool.exited;
      throw tool.failure() ?? new PipelineError('pipeline.spawn', `${command.tool} could not be started`, command.tool);
    }
    return tool;
  }

  private command(keying: SrtpKeying | undefined, plain: HostPort | undefined, run: RunCounters): ToolCommand {
    const o = this.options;
    if (o.role === 'send') {
      // Direct-mode senders with --frames: what earlier runs sent, estimated from their run times.
      const remaining = o.frames === undefined ? undefined : Math.max(1, o.frames - this.book.sentEstimate(run));
      const spec: SenderSpec = {
        media: o.media, video: o.video, ssrc: o.ssrc!, to: plain ?? o.to!, pattern: o.pattern,
        ...(remaining !== undefined ? { frames: remaining } : {}), ...(keying ? { srtp: keying } : {}),
      };
      return o.tool === 'gst' ? gstSenderCommand(spec) : ffmpegSenderCommand(spec);
    }
    const spec: ReceiverSpec = {
      media: o.media, listen: plain ?? o.listen!,
      ...(o.ssrc !== undefined && (keying || o.tool === 'gst') ? { ssrc: o.ssrc } : {}), ...(keying ? { srtp: keying } : {}),
    };
    // A plain gst receiver behind the relay takes any SSRC: leave it out of the caps.
    const plainSpec: ReceiverSpec = keying ? spec : { media: spec.media, listen: spec.listen };
    return o.tool === 'gst' ? gstReceiverCommand(plainSpec) : ffmpegReceiverCommand(plainSpec);
  }

  private onOutput(counter: FrameCounter, chunk: Buffer, run: RunCounters): void {
    const n = counter.push(chunk);
    if (n === 0) return;
    this.book.decoded(run, n, this.options.mode === 'relay' ? this.relay?.ring.currentEpoch() : run.epoch);
    const frame = counter.lastFrame();
    if (frame && this.components.onFrame) this.components.onFrame(frame);
  }

  /** The tool ended without being asked to: a sender that sent its frames is done; anything else failed. */
  private async toolEnded(tool: ToolProcess): Promise<void> {
    const failure = tool.failure();
    if (failure) throw failure;
    if (this.options.role === 'send' && (this.options.frames !== undefined)) {
      await this.pause(100); // let the relay send the last packets
      await this.finish('done');
      return;
    }
    throw new PipelineError('pipeline.exit', `${tool.tool} exited ${tool.exit?.code ?? '?'} by itself; stderr ends:\n${tool.stderrTail() || '(nothing)'}`, tool.tool, tool.exit);
  }

  private get stopping(): boolean {
    return this.stopCtl.signal.aborted;
  }

  private async finish(final: 'stopped' | 'done' = 'stopped'): Promise<void> {
    if (this.stopping) return;
    this.stopCtl.abort();
    this.setState('stopping');
    await this.teardown();
    this.setState(final);
    this.resolveDone();
  }

  private async fail(err: unknown): Promise<void> {
    if (this.state === 'failed' || this.state === 'stopped' || this.state === 'done') return;
    this.error = err instanceof PipelineError ? err : new PipelineError(err instanceof IolusError ? err.code : 'pipeline.internal', (err as Error).message, undefined, undefined, { cause: err });
    this.log.error({ err: this.error.message }, 'pipeline failed');
    this.stopCtl.abort();
    await this.teardown();
    this.setState('failed');
    this.rejectDone(this.error);
  }

  private async teardown(): Promise<void> {
    const grace = this.options.role === 'receive' ? RECEIVER_STOP_GRACE_MS : SENDER_STOP_GRACE_MS;
    await this.tool?.stop(grace);
    await this.relay?.stop();
    await new Promise<void>((r) => (this.rtcpSink ? this.rtcpSink.close(() => r()) : r()));
    this.rtcpSink = undefined;
    if (this.ownsKeys) {
      this.keys?.close();
      this.keySource?.close?.();
    }
  }

  private ownKeys(): KeyProvider {
    this.ownsKeys = true;
    return new AgentKeys(this.options.group, this.options.socket ? { socketPath: this.options.socket } : {});
  }

  private async openOwnKeySource(): Promise<KeySource & { close(): void }> {
    this.ownsKeys = true;
    const ks = await openKeySource(this.options.group, this.options.socket ? { socketPath: this.options.socket } : {});
    await ks.prime(this.label);
    return ks;
  }

  private pause(ms: number): Promise<void> {
    const signal = this.stopCtl.signal;
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  private setState(s: PipelineState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit({ type: 'state', state: s });
  }

  private emit(e: PipelineEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.log.error({ err }, 'pipeline listener threw');
      }
    }
  }
}

interface SrtpKeyingWithEpoch {
  readonly epoch: number;
  readonly notAfter: number;
  readonly keying: SrtpKeying;
}

function isParsed(o: PipelineOptions | PipelineOptionsInput): o is PipelineOptions {
  return typeof (o as PipelineOptions).keyWaitMs === 'number' && typeof (o as PipelineOptions).video === 'object';
}
