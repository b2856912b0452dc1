/** `iolus pipeline`: flags checked by zod, each problem naming its flag; counters in words. */
import { describe, expect, it } from 'vitest';
import { describeCounters, run } from '../../../src/cli/commands/pipeline.js';
import type { PipelineCounters } from '../../../src/adapters/pipeline/launcher.js';
import { ValidationError } from '../../../src/errors.js';

async function problems(args: string[]): Promise<string[]> {
  try {
    await run(args, { signal: AbortSignal.abort(), stdout: { write: () => true } });
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('iolus pipeline', () => {
  it('names the flag of every bad value', async () => {
    expect(await problems(['--tool', 'gst', '--group', 'media'])).toEqual(['pipeline: say send or receive (got nothing)']);
    expect(await problems(['send', '--group', 'media', '--to', '127.0.0.1:5004'])).toEqual(['--tool: required (one of gst, ffmpeg)']);
    expect(await problems(['send', '--tool', 'gst', '--group', 'media'])).toEqual(['--to: required to send (host:port the SRTP goes to)']);
    expect(await problems(['receive', '--tool', 'gst', '--group', 'media', '--mode', 'direct', '--listen', '127.0.0.1:5004'])).toEqual([
      '--ssrc: required for a GStreamer receiver in direct mode (srtpdec keys only the SSRC its caps name)',
    ]);
    expect(await problems(['send', '--tool', 'ffmpeg', '--group', 'media', '--to', '127.0.0.1:5004', '--mode', 'direct', '--mki'])).toEqual([
      '--mki: ffmpeg cannot send or read an MKI (use --tool gst, or --mode relay)',
    ]);
    expect((await problems(['send', '--tool', 'gst', '--group', 'media', '--to', 'nowhere']))[0]).toMatch(/^--to: expected host:port/);
    expect(await problems(['send', '--tool', 'gst', '--group', 'media', '--to', '127.0.0.1:1', '--stats-interval', 'x'])).toEqual(['--stats-interval: must be a whole number of seconds']);
    expect((await problems(['send', '--nope']))[0]).toMatch(/^pipeline: Unknown option '--nope'/);
  });

  it('prints its usage', async () => {
    let out = '';
    expect(await run(['--help'], { stdout: { write: (s: string) => (out += s) } })).toBe(0);
    expect(out).toMatch(/^usage: iolus pipeline send\|receive --tool gst\|ffmpeg --group <g>/);
  });

  it('says in one line what a receiver is doing', () => {
    const c = {
      role: 'receive', tool: 'gst', mode: 'direct', state: 'running', epoch: 12, frames: 120, restarts: 3, srtpFailures: 2, runs: [], perEpoch: [],
      restartGaps: [{ fromEpoch: 11, toEpoch: 12, gapMs: 160, frames: 1, restartMs: 150 }], keyPulls: 4,
    } satisfies PipelineCounters;
    expect(describeCounters(c, 110, 1)).toBe('running  epoch 12  frames 120 (10/s)  restarts 3  srtp-failures 2  last restart gap 160 ms (1 frames)');
  });
});
