/**
 * What a launcher counts: its runs (in direct mode one per epoch), frames decoded per run and
 * per epoch, packets the tool's SRTP refused, and at each restart the gap a receiver saw —
 * from the last frame of the old run to the first of the new one.
 */
import type { RelayCounters } from '../relay/counters.js';
import type { PipelineMode, PipelineRole, Tool } from './options.js';

export type PipelineState = 'new' | 'starting' | 'running' | 'waiting' | 'stopping' | 'stopped' | 'done' | 'failed';

/** One run of the tool: in direct mode, one epoch. */
export interface RunCounters {
  readonly epoch: number | undefined;
  pid: number | undefined;
  readonly startedAt: number;
  endedAt?: number;
  /** Frames decoded (receive). */
  frames: number;
  firstFrameAt?: number;
  lastFrameAt?: number;
  /** Packets the tool's SRTP refused (direct receive; from its stderr). */
  srtpFailures: number;
  exit?: { code: number | null; signal: string | null };
}

/** A restart at a rollover, as the receiver saw it: no frame decoded for `gapMs`. */
export interface RestartGap {
  readonly fromEpoch: number | undefined;
  readonly toEpoch: number | undefined;
  /** Last frame of the old run to first frame of the new one. */
  readonly gapMs: number;
  /** Frames (video) or 20 ms packets (audio) missing in that gap at the stream's rate. */
  readonly frames: number;
  /** Kill of the old run to first frame of the new one. */
  readonly restartMs: number;
}

export interface PipelineCounters {
  readonly role: PipelineRole;
  readonly tool: Tool;
  readonly mode: PipelineMode;
  readonly state: PipelineState;
  /** Epoch of the key in use (direct: the running process's; relay: the ring's current). */
  readonly epoch: number | undefined;
  /** Frames decoded in total (receive). */
  readonly frames: number;
  readonly restarts: number;
  /** Packets refused by the tool's own SRTP (direct receive). */
  readonly srtpFailures: number;
  /** Runs, newest last (the last 64). */
  readonly runs: readonly RunCounters[];
  /** Frames decoded per epoch (receive; relay mode: by the epoch in force when decoded). */
  readonly perEpoch: readonly { epoch: number; frames: number }[];
  readonly restartGaps: readonly RestartGap[];
  /** getkey() calls answered with a key (direct, keys from the local agent). */
  readonly keyPulls: number;
  readonly waitingFor?: string;
  readonly relay?: RelayCounters;
  readonly error?: string;
}

const MAX_KEPT = 64;

export class RunBook {
  readonly runs: RunCounters[] = [];
  private readonly gaps: RestartGap[] = [];
  private readonly epochs = new Map<number, number>();
  private pendingGap: { from: RunCounters | undefined; killedAt: number } | undefined;
  frames = 0;
  restarts = 0;
  srtpFailures = 0;

  /** `fps`: frames (or 20 ms packets) per second of the stream, to express gaps in frames. */
  constructor(private readonly fps: number) {}

  /** A new run starts (its pid is filled in once the process exists). */
  begin(epoch: number | undefined, now = Date.now()): RunCounters {
    const run: RunCounters = { epoch, pid: undefined, startedAt: now, frames: 0, srtpFailures: 0 };
    this.runs.push(run);
    if (this.runs.length > MAX_KEPT) this.runs.shift();
    return run;
  }

  /** The run `from` was killed at a rollover at `killedAt`: the next run's first frame closes the gap. */
  restarted(from: RunCounters | undefined, killedAt: number): void {
    this.restarts++;
    this.pendingGap = { from, killedAt };
  }

  /** `n` frames decoded by `run`, counted for `epoch`. */
  decoded(run: RunCounters, n: number, epoch: number | undefined, now = Date.now()): void {
    if (n <= 0) return;
    if (run.frames === 0) {
      run.firstFrameAt = now;
      const g = this.pendingGap;
      if (g?.from?.lastFrameAt !== undefined) {
        const gapMs = now - g.from.lastFrameAt;
        this.gaps.push({ fromEpoch: g.from.epoch, toEpoch: run.epoch, gapMs, frames: Math.max(0, Math.round((gapMs * this.fps) / 1000) - 1), restartMs: now - g.killedAt });
        if (this.gaps.length > MAX_KEPT) this.gaps.shift();
      }
      this.pendingGap = undefined;
    }
    run.frames += n;
    run.lastFrameAt = now;
    this.frames += n;
    if (epoch !== undefined) this.epochs.set(epoch, (this.epochs.get(epoch) ?? 0) + n);
  }

  srtpFailure(run: RunCounters): void {
    run.srtpFailures++;
    this.srtpFailures++;
  }

  /** Frames sent by runs other than `current`, from their run times (a live source sends at its rate). */
  sentEstimate(current: RunCounters, now = Date.now()): number {
    return this.runs.filter((r) => r !== current).reduce((n, r) => n + Math.floor((((r.endedAt ?? now) - r.startedAt) * this.fps) / 1000), 0);
  }

  snapshot(): Pick<PipelineCounters, 'frames' | 'restarts' | 'srtpFailures' | 'runs' | 'perEpoch' | 'restartGaps'> {
    return {
      frames: this.frames,
      restarts: this.restarts,
      srtpFailures: this.srtpFailures,
      runs: this.runs.map((r) => ({ ...r })),
      perEpoch: [...this.epochs].sort((a, b) => a[0] - b[0]).map(([epoch, frames]) => ({ epoch, frames })),
      restartGaps: [...this.gaps],
    };
  }
}
