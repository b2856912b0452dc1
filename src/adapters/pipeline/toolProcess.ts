/**
 * One run of gst-launch-1.0 or ffmpeg (execa), as the leader of its own process group:
 *
 * - stop() sends SIGINT to the whole group (gst-launch -e posts EOS, ffmpeg writes its
 *   trailer), then SIGKILL to the group after a grace period; a tool that exits on its own
 *   has its group killed too, so nothing it forked outlives it;
 * - the watchdog (watchdog.ts) kills the group if this Node process dies first;
 * - `exited` never rejects: it resolves with the code or signal and the tail of stderr, and
 *   `failure()` turns an exit nobody asked for into a PipelineError that says what went wrong;
 * - stdout is handed to `onStdout` (decoded frames from a receiver), never buffered here.
 *
 * Files the command needs (an SDP with a=crypto) are written 0600 into a private directory
 * (0700) and removed when the process ends.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describeExit, describeSpawnError, isNoise, PipelineError, type ToolExit, type ToolName } from './errors.js';
import { guardDir, guardGroup, releaseDir, releaseGroup } from './watchdog.js';

/** A command line for one tool, as the builders (gstreamer/, ffmpeg/) make it. */
export interface ToolCommand {
  readonly tool: ToolName;
  readonly args: readonly string[];
  /** Files to write before starting, by name; `{dir}` in args is replaced by their directory. */
  readonly files?: Readonly<Record<string, string>>;
}

export interface ToolProcessOptions {
  /** Raw bytes the tool writes on stdout. */
  readonly onStdout?: (chunk: Buffer) => void;
  /** Each stderr line (noise included), e.g. to count ffmpeg's "HMAC mismatch". */
  readonly onStderrLine?: (line: string) => void;
  /** Lines of stderr kept for errors. Default 40. */
  readonly tailLines?: number;
  /** Executable to run instead of the tool's name on PATH (tests). */
  readonly executable?: string;
  readonly env?: Readonly<Record<string, string>>;
}

const STDERR_LINE_MAX = 2000;

export class ToolProcess {
  readonly tool: ToolName;
  readonly startedAt = Date.now();
  /** Resolves when the process has exited and its group is gone. Never rejects. */
  readonly exited: Promise<ToolExit>;
  private readonly proc: ResultPromise;
  private readonly tail: string[] = [];
  private readonly tailMax: number;
  private stopRequested = false;
  private dir: string | undefined;
  private partial = '';
  private ended: ToolExit | undefined;
  private spawnError: NodeJS.ErrnoException | undefined;

  private constructor(command: ToolCommand, private readonly opts: ToolProcessOptions) {
    this.tool = command.tool;
    this.tailMax = opts.tailLines ?? 40;
    let args = [...command.args];
    if (command.files && Object.keys(command.files).length > 0) {
      this.dir = mkdtempSync(join(tmpdir(), 'iolus-pipeline-'));
      guardDir(this.dir);
      for (const [name, text] of Object.entries(command.files)) {
        if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new PipelineError('pipeline.file', `file name ${JSON.stringify(name)} is not a plain name`);
        writeFileSync(join(this.dir, name), text, { mode: 0o600 });
      }
      const dir = this.dir;
      args = args.map((a) => a.replaceAll('{dir}', dir));
    }
    this.proc = execa(opts.executable ?? command.tool, args, {
      detached: true, // its own process group: a stop reaches everything it forked
      cleanup: false, // the watchdog and stop() do it, for the whole group
      reject: false,
      stdin: 'ignore',
      stdout: opts.onStdout ? 'pipe' : 'ignore',
      stderr: 'pipe',
      buffer: false,
      forceKillAfterDelay: false,
      ...(opts.env ? { env: { ...opts.env }, extendEnv: true } : {}),
    });
    const pgid = this.proc.pid;
    if (pgid !== undefined) {
      guardGroup(pgid);
      // The leader is gone: so is everything it forked (which may hold our pipes open, and
      // with them `exited`).
      this.proc.once('exit', () => killGroup(pgid, 'SIGKILL'));
    }
    if (opts.onStdout) this.proc.stdout?.on('data', opts.onStdout);
    this.proc.stderr?.setEncoding('utf8');
    this.proc.stderr?.on('data', (chunk: string) => this.onStderr(chunk));
    this.exited = this.proc.then(
      (r) => this.finish(pgid, r.exitCode ?? null, (r.signal as NodeJS.Signals | undefined) ?? null, r.failed && r.exitCode === undefined && !r.signal ? (r.cause as NodeJS.ErrnoException | undefined) : undefined),
      (err: unknown) => this.finish(pgid, null, null, err as NodeJS.ErrnoException),
    );
  }

  /** Starts `command`. A tool that is not installed still gives a ToolProcess whose `failure()` says so. */
  static start(command: ToolCommand, opts: ToolProcessOptions = {}): ToolProcess {
    return new ToolProcess(command, opts);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.ended === undefined;
  }

  /** The exit, once it happened. */
  get exit(): ToolExit | undefined {
    return this.ended;
  }

  /** stderr lines kept so far (noise left out). */
  stderrTail(): string {
    return this.tail.join('\n');
  }

  /**
   * Stops the group: `signal` (default SIGINT, the tools' clean stop) to every process in it,
   * SIGKILL after `graceMs` (default 2000; 0 kills at once). Idempotent; resolves on exit.
   */
  async stop(graceMs = 2000, signal: NodeJS.Signals = 'SIGINT'): Promise<ToolExit> {
    this.stopRequested = true;
    if (this.ended) return this.ended;
    const pgid = this.proc.pid;
    if (pgid === undefined) return this.exited;
    killGroup(pgid, graceMs > 0 ? signal : 'SIGKILL');
    const timer = graceMs > 0 ? setTimeout(() => killGroup(pgid, 'SIGKILL'), graceMs) : undefined;
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A PipelineError for an exit we did not ask for (or a failed start); undefined for a clean one. */
  failure(): PipelineError | undefined {
    if (this.spawnError) return new PipelineError('pipeline.spawn', describeSpawnError(this.tool, this.spawnError), this.tool, this.ended, { cause: this.spawnError });
    const e = this.ended;
    if (!e || e.stopped || e.code === 0) return undefined;
    return new PipelineError('pipeline.exit', describeExit(this.tool, e), this.tool, e);
  }

  private onStderr(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      this.line(this.partial.slice(0, nl).replace(/\r$/, ''));
      this.partial = this.partial.slice(nl + 1);
    }
    if (this.partial.length > STDERR_LINE_MAX) {
      this.line(this.partial);
      this.partial = '';
    }
  }

  private line(raw: string): void {
    // ffmpeg rewrites progress lines with \r: keep the last state of the line.
    const line = raw.split('\r').pop()!.slice(0, STDERR_LINE_MAX);
    this.opts.onStderrLine?.(line);
    if (isNoise(line)) return;
    this.tail.push(line);
    if (this.tail.length > this.tailMax) this.tail.shift();
  }

  private finish(pgid: number | undefined, code: number | null, signal: NodeJS.Signals | null, spawnError: NodeJS.ErrnoException | undefined): ToolExit {
    if (this.partial) {
      this.line(this.partial);
      this.partial = '';
    }
    if (pgid !== undefined) {
      killGroup(pgid, 'SIGKILL'); // anything it forked goes with it
      releaseGroup(pgid);
    }
    if (this.dir) {
      rmSync(this.dir, { recursive: true, force: true });
      releaseDir(this.dir);
    }
    if (spawnError && pgid === undefined) this.spawnError = spawnError;
    this.ended = { code, signal, stopped: this.stopRequested, stderrTail: this.stderrTail() };
    return this.ended;
  }
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* the group is gone */
  }
}
