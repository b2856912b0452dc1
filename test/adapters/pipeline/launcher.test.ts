/**
 * The launcher's direct mode with a fake key provider (epochs of 400 ms) and stand-in tools
 * (shell scripts that record their command line): one run per epoch with that epoch's key on
 * the command line, the old run's process group gone before the next starts, frames counted
 * per epoch, failures and missing keys reported in words. The real tools and key service:
 * integration/media-keyservice.test.ts.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AgentEvent, KeyLookup, KeyProvider } from '../../../src/adapters/pipeline/agentKeys.js';
import { PipelineLauncher } from '../../../src/adapters/pipeline/launcher.js';
import { PipelineError } from '../../../src/adapters/pipeline/errors.js';
import { guardedGroups } from '../../../src/adapters/pipeline/watchdog.js';
import { ValidationError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/util/log.js';

const dir = mkdtempSync(join(tmpdir(), 'iolus-launcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const EPOCH_MS = 400;

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Keys for epochs of EPOCH_MS: epoch n holds [n·EPOCH_MS, (n+1)·EPOCH_MS), its key bytes all n. */
class RollingKeys implements KeyProvider {
  pulls = 0;
  constructor(private readonly lookup: (now: number) => KeyLookup = rolling) {}
  async getkey(): Promise<KeyLookup> {
    this.pulls++;
    return this.lookup(Date.now());
  }
  watch(_l: (e: AgentEvent) => void): () => void {
    return () => undefined;
  }
  close(): void {}
}

function rolling(now: number): KeyLookup {
  const epoch = Math.floor(now / EPOCH_MS);
  return {
    key: {
      label: 'srtp/AES_CM_128_HMAC_SHA1_80', epoch, notBefore: epoch * EPOCH_MS, notAfter: (epoch + 1) * EPOCH_MS, graceMs: 100,
      key: new Uint8Array(30).fill(epoch & 0xff), mki: Uint8Array.from([0, 0, 0, epoch & 0xff]),
    },
  };
}

const base = { group: 'media', mode: 'direct', media: 'video' } as const;

describe('PipelineLauncher, direct mode', () => {
  it('restarts the sender at each rollover with the new epoch\'s key; the old process group is gone first', async () => {
    const log = join(dir, 'runs.log');
    const exe = script('fake-gst.sh', `echo "$$ $*" >> "${log}"\nexec sleep 30`);
    const keys = new RollingKeys();
    const l = new PipelineLauncher({ ...base, role: 'send', tool: 'gst', to: '127.0.0.1:5004', ssrc: 7 }, { keys, logger: silentLogger(), executables: { gst: exe } });
    const restarts: [number | undefined, number | undefined][] = [];
    l.on((e) => {
      if (e.type === 'restart') restarts.push([e.fromEpoch, e.toEpoch]);
    });
    await l.start();
    await new Promise((r) => setTimeout(r, 4 * EPOCH_MS + 100));
    await l.stop();
    const c = l.counters();
    expect(c.state).toBe('stopped');
    expect(c.restarts).toBeGreaterThanOrEqual(3);
    for (const [from, to] of restarts) expect(to).toBe(from! + 1);
    // Each run's command line (by the pid the script printed) carries its own epoch's key.
    const byPid = new Map(readFileSync(log, 'utf8').trim().split('\n').map((l) => [Number(l.split(' ')[0]), l]));
    let checked = 0;
    for (const run of c.runs) {
      const line = byPid.get(run.pid!);
      if (!line) continue; // killed at a rollover before the script's first line ran (a loaded machine)
      expect(line, `epoch ${run.epoch}`).toContain(`key=${Buffer.alloc(30, run.epoch! & 0xff).toString('hex')}`);
      expect(line).toContain('ssrc=7');
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(3);
    // Every run but the last was killed at its rollover, before the next one started.
    for (let i = 1; i < c.runs.length; i++) expect(c.runs[i - 1]!.endedAt!).toBeLessThanOrEqual(c.runs[i]!.startedAt);
    expect(c.keyPulls).toBe(0); // not an AgentKeys; the fake counts:
    expect(keys.pulls).toBeGreaterThanOrEqual(c.runs.length);
    expect(guardedGroups()).toEqual([]);
  });

  it('a receiver counts decoded frames per epoch and measures the gap at each restart', async () => {
    // Two 64×48 GRAY8 frames per run, then silence.
    const exe = script('fake-gst-rx.sh', 'head -c 6144 /dev/zero\nexec sleep 30');
    const l = new PipelineLauncher({ ...base, role: 'receive', tool: 'gst', listen: '127.0.0.1:5004', ssrc: 9 }, { keys: new RollingKeys(), logger: silentLogger(), executables: { gst: exe } });
    await l.start();
    await new Promise((r) => setTimeout(r, 3 * EPOCH_MS + 200));
    await l.stop();
    const c = l.counters();
    // A run cut short by its rollover before it wrote anything decoded nothing; the others two frames each.
    expect(c.frames).toBe(c.runs.reduce((n, r) => n + r.frames, 0));
    for (const r of c.runs) expect([0, 2]).toContain(r.frames);
    expect(c.perEpoch.filter((e) => e.frames === 2).length).toBeGreaterThanOrEqual(3);
    expect(c.perEpoch.every((e) => e.frames === 2)).toBe(true);
    expect(c.restartGaps.length).toBeGreaterThanOrEqual(2);
    for (const g of c.restartGaps) {
      expect(g.toEpoch).toBeGreaterThan(g.fromEpoch!);
      expect(g.gapMs).toBeGreaterThan(0);
      expect(g.restartMs).toBeLessThanOrEqual(g.gapMs);
    }
  });

  it('a tool that fails ends the pipeline with what went wrong', async () => {
    const exe = script('fake-gst-fail.sh', 'echo \'WARNING: erroneous pipeline: no element "srtpdec"\' >&2\nexit 1');
    const l = new PipelineLauncher({ ...base, role: 'receive', tool: 'gst', listen: '127.0.0.1:5004', ssrc: 9 }, { keys: new RollingKeys(), logger: silentLogger(), executables: { gst: exe } });
    await l.start();
    const err = await l.done.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).message).toBe('gst-launch-1.0 exited 1: no element srtpdec — install gstreamer1.0-plugins-bad');
    expect(l.counters().state).toBe('failed');
    expect(l.counters().error).toBe((err as Error).message);
  });

  it('a tool that is not installed is named with its package', async () => {
    const l = new PipelineLauncher({ ...base, role: 'send', tool: 'ffmpeg', to: '127.0.0.1:5004' }, { keys: new RollingKeys(), logger: silentLogger(), executables: { ffmpeg: join(dir, 'nope') } });
    await l.start();
    await expect(l.done).rejects.toThrow(/^ffmpeg not found — install ffmpeg/);
  });

  it('without a key it waits (counted as waiting), then fails saying why', async () => {
    const l = new PipelineLauncher({ ...base, role: 'send', tool: 'gst', to: '127.0.0.1:5004', 'key-wait': 1 }, {
      keys: new RollingKeys(() => ({ reason: 'no membership of media (joining)', agentGone: false })), logger: silentLogger(), executables: { gst: script('never.sh', 'exit 9') },
    });
    const states: string[] = [];
    l.on((e) => {
      if (e.type === 'state') states.push(e.state);
    });
    await expect(l.start()).rejects.toThrow('no key for srtp/AES_CM_128_HMAC_SHA1_80 from the local agent of media for 1 s: no membership of media (joining)');
    expect(states).toEqual(['starting', 'waiting', 'failed']);
  });

  it('no agent at all fails at once', async () => {
    const l = new PipelineLauncher({ ...base, role: 'send', tool: 'gst', to: '127.0.0.1:5004' }, {
      keys: new RollingKeys(() => ({ reason: 'no local agent for group media (no socket at /run/iolus/media.sock)', agentGone: true })), logger: silentLogger(),
    });
    await expect(l.start()).rejects.toThrow(/^no local agent for group media/);
  });

  it('a sender given --frames is done when the tool has sent them', async () => {
    const log = join(dir, 'frames.log');
    const exe = script('fake-ffmpeg-frames.sh', `echo "$*" >> "${log}"\nexit 0`);
    const l = new PipelineLauncher({ ...base, role: 'send', tool: 'ffmpeg', to: '127.0.0.1:5004', frames: 25 }, { keys: new RollingKeys(), logger: silentLogger(), executables: { ffmpeg: exe } });
    await l.start();
    await l.done;
    expect(l.counters().state).toBe('done');
    expect(readFileSync(log, 'utf8')).toContain('-frames:v 25');
  });

  it('checks its options with zod before anything runs', () => {
    expect(() => new PipelineLauncher({ ...base, role: 'send', tool: 'gst' })).toThrow(ValidationError);
    try {
      new PipelineLauncher({ ...base, role: 'receive', tool: 'gst', listen: '127.0.0.1:1' });
    } catch (err) {
      expect((err as ValidationError).problems).toEqual(['ssrc: required for a GStreamer receiver in direct mode (srtpdec keys only the SSRC its caps name)']);
    }
    expect(existsSync(join(dir, 'never-started'))).toBe(false);
  });
});
