/**
 * The vic-like sample (samples/vic-like) as a user runs it, one command: a key service
 * (controller + intermediary, KGRP2 every 2 s), three participants (GStreamer, ffmpeg,
 * GStreamer) each with its own local agent, sending and decoding video through the media
 * group. One is expelled: the others vanish from its view within a period of the expulsion
 * (plus the view's detection: one frame and one report), they carry on seeing each other,
 * and it vanishes from theirs. At the end the runner exits 0 and no process it started lives.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardedGroups } from '../src/adapters/pipeline/watchdog.js';
import { spawnNode, type ServiceProcess } from '../samples/vic-like/deployment.js';
import type { ConferenceState } from '../samples/vic-like/view.js';
import { mediaBuild, until } from './lib/keyService.js';
import { requireGstElements, requireTool } from './lib/media.js';

const PERIOD = 2000;
/** A refused frame reaches the view within a frame (100 ms) and a report (250 ms). */
const DETECTION_MS = 500;

let runner: ServiceProcess | undefined;

beforeAll(() => {
  requireTool('gst-launch-1.0');
  requireTool('ffmpeg');
  requireGstElements('videotestsrc', 'jpegenc', 'rtpjpegpay', 'rtpjpegdepay', 'jpegdec', 'videoconvert', 'videoscale', 'fdsink', 'udpsrc', 'udpsink');
});

afterAll(async () => {
  await runner?.stop(5000);
  expect(guardedGroups()).toEqual([]);
});

/** Every process below `root` now (from /proc). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** Running (a zombie waiting for init to reap it is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function events(p: ServiceProcess): Record<string, unknown>[] {
  return p.lines.filter((l) => l.startsWith('{')).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return {};
    }
  });
}

describe('vic-like conference over a running key service', () => {
  it('three participants; one expelled: the others vanish from its view within a period, everyone else carries on', async () => {
    const build = await mediaBuild();
    runner = spawnNode('vic-like', build.vicRun, [
      '--json', '--period', String(PERIOD / 1000), '--participants', 'alice:gst,bob:ffmpeg,carol:gst',
      '--expel', 'carol', '--expel-after', '8', '--duration', '18',
    ], { env: { IOLUS_LOG_LEVEL: 'warn' } });
    const seen = new Set<number>();
    const track = setInterval(() => {
      for (const p of descendants(runner!.pid!)) seen.add(p);
    }, 200);
    try {
      const ready = JSON.parse(await runner.waitLine((l) => l.includes('"event":"ready"'), 120_000, 'ready')) as { url: string };
      const state = async () => (await (await fetch(`${ready.url}state`)).json()) as ConferenceState;
      const sees = (s: ConferenceState, viewer: string) => (s.participants.find((p) => p.name === viewer)?.status?.peers ?? []).filter((x) => x.visible).map((x) => x.name).sort();

      // Everyone sees everyone, decoding, before the expulsion.
      const before = await until('every participant seeing the two others', async () => {
        const s = await state();
        return ['alice', 'bob', 'carol'].every((n) => sees(s, n).length === 2) ? s : undefined;
      }, 20_000, 100);
      expect(events(runner).some((e) => e.event === 'expelled'), 'the full view came before the expulsion').toBe(false);
      for (const p of before.participants) {
        expect(p.status!.agent).toBe('joined');
        for (const peer of p.status!.peers) expect(peer.decoded, `${p.name} decodes ${peer.name}`).toBeGreaterThan(0);
      }

      const expelled = JSON.parse(await runner.waitLine((l) => l.includes('"event":"expelled"'), 20_000, 'expelled')) as { expelledAt: number };
      const vanishedFrom = (viewer: string, peer: string) => runner!.waitLine((l) => {
        const e = JSON.parse(l.startsWith('{') ? l : '{}') as { event?: string; name?: string; peer?: string };
        return e.event === 'vanished' && e.name === viewer && e.peer === peer;
      }, PERIOD * 3, `${peer} vanishing from ${viewer}'s view`).then((l) => (JSON.parse(l) as { t: number }).t - expelled.expelledAt);
      const [ca, cb, ac, bc] = await Promise.all([vanishedFrom('carol', 'alice'), vanishedFrom('carol', 'bob'), vanishedFrom('alice', 'carol'), vanishedFrom('bob', 'carol')]);
      console.log(`after the expulsion: alice and bob vanished from carol's view in ${ca} and ${cb} ms; carol from alice's in ${ac} ms and from bob's in ${bc} ms (period ${PERIOD} ms)`);
      for (const ms of [ca, cb]) expect(ms).toBeLessThanOrEqual(PERIOD + DETECTION_MS);
      // Carol's own stream goes dark for the others too: she sends under no key they hold.
      for (const ms of [ac, bc]) expect(ms).toBeLessThanOrEqual(PERIOD + 1000 + DETECTION_MS);

      // Everyone else carries on: alice and bob keep decoding each other; carol sees nobody.
      const mid = await state();
      await sleep(2500);
      const after = await state();
      const decodedBy = (s: ConferenceState, viewer: string, peer: string) => s.participants.find((p) => p.name === viewer)?.status?.peers.find((x) => x.name === peer)?.decoded ?? 0;
      expect(sees(after, 'alice')).toEqual(['bob']);
      expect(sees(after, 'bob')).toEqual(['alice']);
      expect(sees(after, 'carol')).toEqual([]);
      expect(decodedBy(after, 'alice', 'bob') - decodedBy(mid, 'alice', 'bob')).toBeGreaterThan(10);
      expect(decodedBy(after, 'bob', 'alice') - decodedBy(mid, 'bob', 'alice')).toBeGreaterThan(10);
      expect(decodedBy(after, 'carol', 'alice') - decodedBy(mid, 'carol', 'alice')).toBe(0);
      const carol = after.participants.find((p) => p.name === 'carol')!;
      expect(['removed', 'gone']).toContain(carol.status!.agent);
      expect(carol.status!.peers.every((x) => x.failed > 0), 'carol counts the frames she cannot decrypt').toBe(true);
      // getkey() before each send and each receive: at least one call per packet each way.
      for (const p of after.participants) expect(p.status!.getkey).toBeGreaterThan(p.status!.sent.frames);

      const exit = await runner.exited;
      expect(exit.code, runner.lines.slice(-20).join('\n')).toBe(0);
      expect(events(runner).at(-1)?.event).toBe('end');
    } finally {
      clearInterval(track);
    }
    // The watchdogs (one sh per process that ran tools) leave when their parent's pipe closes.
    const left = await until('no process of the sample left', () => {
      const l = [...seen].filter(alive);
      return l.length === 0 ? l : undefined;
    }, 3000, 100).catch(() => [...seen].filter(alive));
    expect(left, `processes of the sample still running: ${left.map((p) => `${p} ${readFileSync(`/proc/${p}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 80)}`).join('; ')}`).toEqual([]);
    expect(seen.size, 'the sample ran its processes').toBeGreaterThanOrEqual(12);
  });
});
