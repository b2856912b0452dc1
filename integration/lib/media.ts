/**
 * Helpers for integration tests that run real GStreamer (gst-launch-1.0) and ffmpeg
 * processes with execa, exchange UDP on 127.0.0.1, and check what was decoded.
 *
 * - Tools are required, never optional: `requireTool` throws (the test fails) when one is
 *   missing, naming the Debian package (scripts/apt-packages.txt installs them).
 * - Every process started here is tracked; `stopAll()` (call it in afterEach/afterAll)
 *   interrupts it, then kills it after a grace period, so no test leaves an orphan.
 * - Ports are picked free by the kernel; `waitUdpBound` waits until a process has bound
 *   its port (read from /proc/net/udp) before anything is sent to it.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';

const PACKAGES: Record<string, string> = {
  'gst-launch-1.0': 'gstreamer1.0-tools (and gstreamer1.0-plugins-{base,good,bad})',
  'gst-inspect-1.0': 'gstreamer1.0-tools',
  ffmpeg: 'ffmpeg',
};

/** Absolute path of a tool; throws (failing the test) when it is not installed. */
export function requireTool(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${name} is not installed: apt-get install ${PACKAGES[name] ?? name} (scripts/deps.sh does it)`);
  }
}

/** Throws unless gst-inspect finds every element (srtpenc/srtpdec live in plugins-bad). */
export function requireGstElements(...elements: string[]): void {
  requireTool('gst-inspect-1.0');
  for (const e of elements) {
    try {
      execFileSync('gst-inspect-1.0', ['--exists', e]);
    } catch {
      throw new Error(`GStreamer element '${e}' is missing: apt-get install gstreamer1.0-plugins-bad gstreamer1.0-plugins-good`);
    }
  }
}

export interface MediaExit {
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;
  readonly stderr: string;
  readonly stdout: string;
}

export interface MediaProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** Output so far (stdout and stderr, interleaved as read). */
  output(): string;
  /** Resolves when the process exits, however it ends (never rejects). */
  readonly exited: Promise<MediaExit>;
  /** SIGINT (gst-launch -e sends EOS, ffmpeg writes its trailer), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<MediaExit>;
}

const running = new Set<MediaProcess>();

/** Starts a tracked process. Use gstLaunch/ffmpeg for those tools. */
export function spawnMedia(name: string, file: string, args: string[], opts: { cwd?: string } = {}): MediaProcess {
  const proc: ResultPromise = execa(file, args, {
    cwd: opts.cwd,
    reject: false,
    all: true,
    stdin: 'ignore',
    buffer: true,
    cleanup: true,
    forceKillAfterDelay: 5000,
  });
  let out = '';
  proc.all?.on('data', (d: Buffer) => {
    if (out.length < 1_000_000) out += d.toString();
  });
  const exited: Promise<MediaExit> = proc.then(
    (r) => ({ exitCode: r.exitCode, signal: r.signal, stderr: String(r.stderr ?? ''), stdout: String(r.stdout ?? '') }),
    (err: unknown) => ({ exitCode: undefined, signal: undefined, stderr: String(err), stdout: '' }),
  );
  const handle: MediaProcess = {
    name,
    pid: proc.pid,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGINT');
        const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        try {
          await exited;
        } finally {
          clearTimeout(timer);
        }
      }
      return exited;
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));
  return handle;
}

/** gst-launch-1.0 -e with one pipeline token per element of `pipeline` (no shell, so no quoting). */
export function gstLaunch(pipeline: string[], opts: { cwd?: string } = {}): MediaProcess {
  return spawnMedia('gst-launch-1.0', requireTool('gst-launch-1.0'), ['-e', ...pipeline], opts);
}

/**
 * ffmpeg with quiet logs and no stdin. An ffmpeg reading RTP (SDP input) that stops
 * receiving notices SIGINT only when its read times out: give such inputs
 * `-listen_timeout <s>` and let them end by themselves (waitExit).
 */
export function ffmpeg(args: string[], opts: { cwd?: string } = {}): MediaProcess {
  return spawnMedia('ffmpeg', requireTool('ffmpeg'), ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-y', ...args], opts);
}

/**
 * Waits for a process to end by itself within `timeoutMs`; past that it is stopped and this
 * throws with its output, so a stuck tool fails the test instead of hanging it.
 */
export async function waitExit(proc: MediaProcess, timeoutMs: number): Promise<MediaExit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const r = await Promise.race([proc.exited, timeout]);
  clearTimeout(timer);
  if (r === 'timeout') {
    await proc.stop(2000);
    throw new Error(`${proc.name} did not finish within ${timeoutMs} ms; it said:\n${proc.output()}`);
  }
  return r;
}

/** Stops every process started through this module (SIGINT, then SIGKILL). */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(graceMs)));
}

/** How many processes started here are still running (a test asserts zero at the end). */
export function runningCount(): number {
  return running.size;
}

/** A UDP port on 127.0.0.1 free at the time of asking. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address();
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** True when some socket on this machine is bound to UDP `port` (IPv4 or IPv6). */
export function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local && `${local} `.endsWith(hex)) return true;
    }
  }
  return false;
}

/** Waits until `port` is bound (by the process we started), or throws with its output. */
export async function waitUdpBound(port: number, proc?: MediaProcess, timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (udpPortBound(port)) return;
    await sleep(25);
  }
  throw new Error(`port ${port} not bound within ${timeoutMs} ms${proc ? `; ${proc.name} said:\n${proc.output()}` : ''}`);
}

export interface Datagram {
  readonly data: Buffer;
  readonly from: string;
  readonly at: number;
}

/** A UDP socket on 127.0.0.1 that keeps what it receives, optionally handing each datagram to `onMessage`. */
export class UdpCollector {
  readonly packets: Datagram[] = [];
  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {}

  static async open(onMessage?: (d: Datagram) => void, port = 0): Promise<UdpCollector> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve());
    });
    const c = new UdpCollector(socket, socket.address().port);
    socket.on('message', (data, rinfo) => {
      const d = { data, from: `${rinfo.address}:${rinfo.port}`, at: Date.now() };
      if (c.packets.length < 1_000_000) c.packets.push(d);
      onMessage?.(d);
    });
    return c;
  }

  /** Waits until `n` datagrams arrived (bounded by `timeoutMs`); returns how many did. */
  waitFor(n: number, timeoutMs: number): Promise<number> {
    if (this.packets.length >= n) return Promise.resolve(this.packets.length);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off('message', check);
        resolve(this.packets.length);
      };
      const check = (): void => {
        if (this.packets.length >= n) done();
      };
      const timer = setTimeout(done, timeoutMs);
      this.socket.on('message', check);
    });
  }

  send(data: Uint8Array, port: number, host = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, host, (err) => (err ? reject(err) : resolve())));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A scratch directory removed by `cleanup()`. */
export function scratchDir(prefix = 'iolus-media-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** G.711 μ-law to 16-bit linear (ITU-T G.711, as mulawdec and ffmpeg's pcm_mulaw decode it). */
export function mulawToLinear(u: number): number {
  const x = ~u & 0xff;
  const t = (((x & 0x0f) << 3) + 0x84) << ((x & 0x70) >> 4);
  return x & 0x80 ? 0x84 - t : t - 0x84;
}

/** Decodes μ-law bytes to the S16 samples a decoder should output. */
export function decodeMulaw(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = mulawToLinear(bytes[i]!);
  return out;
}

/** Raw S16LE samples from a file (as `filesink` after mulawdec, or ffmpeg `-f s16le`, write them). */
export function readS16le(path: string): Int16Array {
  const b = readFileSync(path);
  const out = new Int16Array(b.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = b.readInt16LE(2 * i);
  return out;
}

/** μ-law test signal: `n` bytes of a 440 Hz sine at 8 kHz, encoded with a simple G.711 encoder. */
export function mulawSine(n: number, phase = 0): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = linearToMulaw(Math.round(8000 * Math.sin((2 * Math.PI * 440 * (i + phase)) / 8000)));
  return out;
}

function linearToMulaw(sample: number): number {
  const BIAS = 0x84;
  let s = Math.max(-32635, Math.min(32635, sample));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Paces an async loop: resolves `ms` after the previous call (bounded, for sending at a rate). */
export function pacer(ms: number): () => Promise<void> {
  let next = Date.now();
  return async () => {
    next += ms;
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait);
  };
}
