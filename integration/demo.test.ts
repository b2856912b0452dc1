/**
 * The README's main job (`npm start` = `iolus demo`) as real processes: a PKI made on first run,
 * a controller and two intermediaries, members joining at each, data across the tree, group
 * keys rolling and pulled, the scripted leave, expulsion (voiding the pending key) and forced
 * roll; then, on SIGINT to its whole process group (what Ctrl-C does), a clean shutdown:
 * GRP_END, every process gone, exit code 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { nodeEntry } from './lib/netns.js';
// Type-only: erased at run time, but it puts the CLI and the demo command into nodeEntry's build.
import type { main as _cliMain } from '../src/cli/main.js';
import type { run as _demoCommand } from '../src/cli/commands/demo.js';
import type { run as _keydCommand } from '../src/cli/commands/keyd.js';

let dir: string;
let cli: string;

/** Processes whose command line names `path` (the demo's keyd configs live under it). */
function processesOf(path: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', path], { encoding: 'utf8' }).split('\n').filter((l) => l.trim() !== '');
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Runs the demo until `until(output)` holds (or `limitMs`), then Ctrl-C; its output and exit. */
async function runDemo(until: (out: string) => boolean, limitMs: number): Promise<{ out: string; code: number | null; signal: string | null; stopMs: number }> {
  const child: ChildProcess = spawn(process.execPath, [cli, 'demo', '--dir', join(dir, 'demo'), '--period', '2s'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const t0 = Date.now();
  while (!until(out) && Date.now() - t0 < limitMs && child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
  const stopAt = Date.now();
  const group = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // the group is gone already
    }
  };
  group('SIGINT'); // the whole group, as a terminal's Ctrl-C
  const timer = setTimeout(() => group('SIGKILL'), 15_000);
  const st = await exited;
  clearTimeout(timer);
  return { out, ...st, stopMs: Date.now() - stopAt };
}

describe('npm start: the local deployment on embedded defaults', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'iolus-demo-it-'));
    const js = await nodeEntry('integration/demo.test.ts');
    cli = join(dirname(dirname(js)), 'src', 'cli', 'main.js');
  }, 180_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('brings up the tree, rolls and pulls keys, plays its script, and shuts down cleanly on Ctrl-C', async () => {
    const r = await runDemo((o) => (o.match(/received "frank says hi/g) ?? []).length >= 2 && (o.slice(o.indexOf('admin expels alice')).match(/KGRP2\s+epoch \d+ created/g) ?? []).length >= 3, 60_000);
    const o = r.out;
    expect(existsSync(join(dir, 'demo', 'pki', 'ca.crt')), 'PKI made on first run').toBe(true);
    for (const agent of ['controller', 'gsi-east', 'gsi-west']) expect(o, agent).toMatch(new RegExp(`${agent}\\s+agent up at https://127\\.0\\.0\\.1:\\d+`));
    for (const who of ['alice', 'bob', 'carol', 'dave', 'erin']) expect(o, who).toMatch(new RegExp(`join\\s+${who} as member`));
    expect(o).toMatch(/join\s+gsi-east as intermediary/);
    // Data from a member at one intermediary reaches members elsewhere in the tree.
    expect(o).toMatch(/(dave|erin)\s+received "hello from carol at gsi-east"/);
    expect(o).toMatch(/alice\s+received "hello from carol at gsi-east"/);
    // Group keys roll and members pull the same SRTP key for an epoch.
    const holds = [...o.matchAll(/(\w+)\s+holds KGRP2 epoch (\d+) → srtp key ([0-9a-f]+)…/g)].map((m) => ({ who: m[1]!, epoch: Number(m[2]), key: m[3]! }));
    const epochs = new Set(holds.map((h) => h.epoch));
    expect(epochs.size, 'epochs rolled').toBeGreaterThanOrEqual(3);
    for (const e of epochs) expect(new Set(holds.filter((h) => h.epoch === e).map((h) => h.key)).size, `one key for epoch ${e}`).toBe(1);
    // The script: a leave rekeys one subgroup, an expulsion voids the pending key, a forced roll.
    expect(o).toMatch(/bob leaves: only gsi-east rekeys/);
    const expelled = o.indexOf('admin expels alice');
    expect(expelled).toBeGreaterThan(0);
    // Every group key made after the expulsion (a replacement for a voided pending key if one was
    // pending then, and the epochs after) reaches the others but never alice.
    const later = [...o.slice(expelled).matchAll(/KGRP2\s+epoch (\d+) created/g)].map((m) => Number(m[1]));
    expect(later.length, 'epochs created after the expulsion').toBeGreaterThanOrEqual(2);
    const heldBy = (who: string) => new Set(holds.filter((h) => h.who === who).map((h) => h.epoch));
    for (const e of later) expect(heldBy('alice').has(e), `alice holds epoch ${e}`).toBe(false);
    // (The newest may have been made just before Ctrl-C: the others are checked on the ones before.)
    for (const e of later.slice(0, -1)) expect(heldBy('carol').has(e) || heldBy('erin').has(e), `the others hold epoch ${e}`).toBe(true);
    expect(o).toMatch(/admin forces a roll/);
    expect(o).not.toMatch(/step failed/);
    // Ctrl-C: GRP_END from the controller, every agent stopped, the demo done, nothing left behind.
    expect(o).toMatch(/controller\s+GRP_END sent down the tree/);
    for (const agent of ['controller', 'gsi-east', 'gsi-west']) expect(o, `${agent} stopped`).toMatch(new RegExp(`${agent}\\s+stopped`));
    expect(o).toMatch(/demo\s+done/);
    expect([r.code, r.signal]).toEqual([0, null]);
    expect(r.stopMs, 'shutdown time').toBeLessThan(8_000);
    expect(processesOf(join(dir, 'demo')), 'processes left running').toEqual([]);
  }, 120_000);
});
