/**
 * The vic-like conference in one command (after the paper's modified vic, §9):
 *
 *   node dist/samples/vic-like/run.js [--participants alice:gst,bob:ffmpeg,carol:gst]
 *     [--period 3] [--port 8080] [--expel carol --expel-after 12] [--duration 60] [--json]
 *
 * Brings up a key service (group PKI, a controller and an intermediary as `iolus keyd`
 * processes, KGRP2 rolling every --period seconds), one local agent per participant (half at
 * the controller, half at the intermediary), the media group (a UDP reflector on 127.0.0.1),
 * and the participants, each a process sending a video test stream (gst-launch or ffmpeg) and
 * decoding the others'. The view is a page on 127.0.0.1 and a table in the terminal. Expel
 * someone (the page's button, or --expel/--expel-after): within a period the others vanish
 * from their view, while everyone else carries on.
 *
 * --json prints events as JSON lines instead of the table: ready (with the view's URL),
 * expelled, vanished / appeared (viewer `name`, `peer`), agent, error, end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { killAllTools } from '../../src/adapters/pipeline/watchdog.js';
import { LocalKeyService, spawnNode, type ServiceProcess } from './deployment.js';
import { MediaGroup } from './mediaGroup.js';
import { ParticipantLine } from './status.js';
import { renderTerminal, ViewServer, type ConferenceState, type ParticipantView } from './view.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PARTICIPANT = fileURLToPath(new URL('./participant.js', import.meta.url));

const Flags = z.object({
  participants: z.string().default('alice:gst,bob:ffmpeg,carol:gst').transform((s, ctx) => {
    const list = s.split(',').filter(Boolean).map((p) => {
      const [name, tool = 'gst'] = p.split(':');
      return { name: name ?? '', tool };
    });
    for (const p of list) {
      if (!/^[a-z][a-z0-9-]{0,31}$/.test(p.name)) ctx.addIssue({ code: 'custom', message: `participant name ${JSON.stringify(p.name)}: lower-case letters, digits, dashes` });
      if (p.tool !== 'gst' && p.tool !== 'ffmpeg') ctx.addIssue({ code: 'custom', message: `${p.name}: tool must be gst or ffmpeg, got ${p.tool}` });
    }
    if (list.length < 2 || list.length > 8) ctx.addIssue({ code: 'custom', message: 'between 2 and 8 participants' });
    if (new Set(list.map((p) => p.name)).size !== list.length) ctx.addIssue({ code: 'custom', message: 'names must differ' });
    return list as { name: string; tool: 'gst' | 'ffmpeg' }[];
  }),
  period: z.coerce.number().int().min(2).max(3600).default(3),
  port: z.coerce.number().int().min(0).max(65535).default(0),
  expel: z.string().optional(),
  'expel-after': z.coerce.number().min(0).max(86_400).optional(),
  duration: z.coerce.number().min(1).max(86_400).optional(),
  json: z.boolean().default(false),
  dir: z.string().optional(),
}).strict().superRefine((f, ctx) => {
  if (f.expel && !f.participants.some((p) => p.name === f.expel)) ctx.addIssue({ code: 'custom', path: ['expel'], message: `no participant named ${f.expel}` });
  if ((f['expel-after'] !== undefined) !== (f.expel !== undefined)) ctx.addIssue({ code: 'custom', path: ['expel-after'], message: '--expel and --expel-after go together' });
});

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      participants: { type: 'string' }, period: { type: 'string' }, port: { type: 'string' }, expel: { type: 'string' },
      'expel-after': { type: 'string' }, duration: { type: 'string' }, json: { type: 'boolean' }, dir: { type: 'string' },
    },
    strict: true,
  });
  const parsed = Flags.safeParse(values);
  if (!parsed.success) {
    for (const i of parsed.error.issues) process.stderr.write(`vic-like: --${i.path.join('.') || 'participants'}: ${i.message}\n`);
    return 2;
  }
  const f = parsed.data;
  const dir = f.dir ?? mkdtempSync(join(os.tmpdir(), 'iolus-vic-'));
  const json = (o: Record<string, unknown>) => {
    if (f.json) process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
  };
  const state: ConferenceState = { group: 'vic.example', periodMs: f.period * 1000, startedAt: Date.now(), participants: [], log: [] };
  const note = (text: string) => {
    state.log.push({ t: Date.now(), text });
    if (state.log.length > 200) state.log.shift();
  };

  let ks: LocalKeyService | undefined;
  const group = new MediaGroup();
  const procs: ServiceProcess[] = [];
  let view: ViewServer | undefined;
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    note('stopping');
    await Promise.all(procs.map((p) => p.stop(2000)));
    await ks?.stop();
    await group.stop();
    await view?.stop();
    if (!f.dir) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAllTools);
  let stopNow: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => {
    stopNow = () => void shutdown().then(resolve);
    process.once('SIGINT', stopNow);
    process.once('SIGTERM', stopNow);
  });

  try {
    note(`starting the key service (KGRP2 every ${f.period} s) in ${dir}`);
    ks = await LocalKeyService.start({ dir, cli: CLI, group: state.group, periodMs: f.period * 1000, leadMs: 1000, graceMs: 1000, intermediaries: 1 });
    const mediaPort = await group.start();
    note(`media group on 127.0.0.1:${mediaPort} (a UDP reflector standing in for IP multicast)`);
    const ssrcs = f.participants.map((_, i) => 0x10000 * (i + 1) + Math.floor(Math.random() * 0xffff));
    const roster = f.participants.map((p, i) => `${p.name}=${ssrcs[i]}`).join(',');

    const expel = async (name: string) => {
      const p = state.participants.find((x) => x.name === name);
      if (!p || p.expelledAt) return;
      const r = await ks!.expel(name);
      p.expelledAt = r.t;
      note(`admin expels ${name} (member ${r.memberId} at ${r.at}); the pending next group key is voided`);
      json({ event: 'expelled', name, at: r.at, memberId: r.memberId, expelledAt: r.t });
    };
    view = new ViewServer({ state, expel });
    const url = await view.start(f.port);

    await Promise.all(f.participants.map(async (p, i) => {
      const at = i % 2 === 0 ? 'controller' : 'gsi-1';
      const agent = await ks!.agent(p.name, at);
      const pv: ParticipantView = { name: p.name, tool: p.tool, at, vanished: {} };
      state.participants.push(pv);
      note(`${p.name}: local agent joined at ${at} (member ${agent.memberId})`);
      const proc = spawnNode(p.name, PARTICIPANT, [
        '--name', p.name, '--group', state.group, '--socket', agent.socket, '--tool', p.tool,
        '--media-group', `127.0.0.1:${mediaPort}`, '--ssrc', String(ssrcs[i]), '--roster', roster, '--pattern', String(i % 4),
      ], { onLine: (_name, stream, line) => (stream === 'stdout' ? onParticipantLine(pv, line) : process.stderr.write(`[${p.name}] ${line}\n`)) });
      procs.push(proc);
      await proc.waitLine((l) => l.includes('"event":"ready"'), 30_000, 'ready');
    }));
    state.participants.sort((a, b) => f.participants.findIndex((p) => p.name === a.name) - f.participants.findIndex((p) => p.name === b.name));
    json({ event: 'ready', url, participants: f.participants, periodMs: state.periodMs });
    if (!f.json) process.stdout.write(`vic-like: view at ${url}\n`);
    note(`view at ${url}`);

    if (f.duration) setTimeout(stopNow, f.duration * 1000).unref();
    if (f.expel) {
      const name = f.expel;
      setTimeout(() => void expel(name).catch((err: Error) => note(`expel failed: ${err.message}`)), (f['expel-after'] ?? 0) * 1000).unref();
    }
    const table = !f.json && process.stdout.isTTY ? setInterval(() => process.stdout.write(renderTerminal(state, url)), 1000) : undefined;
    await ended;
    clearInterval(table);
  } catch (err) {
    process.stderr.write(`vic-like: ${(err as Error).message}\n`);
    await shutdown();
    return 1;
  }
  json({ event: 'end' });
  return 0;

  function onParticipantLine(pv: ParticipantView, line: string): void {
    if (!line.startsWith('{')) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return;
    }
    const r = ParticipantLine.safeParse(raw);
    if (!r.success) return;
    const m = r.data;
    if (m.event === 'status') {
      pv.status = m;
      return;
    }
    if (m.event === 'vanished' && m.peer) {
      pv.vanished[m.peer] = m.t;
      note(`${m.name} no longer sees ${m.peer}`);
    } else if (m.event === 'appeared' && m.peer) {
      delete pv.vanished[m.peer];
      note(`${m.name} sees ${m.peer}`);
    } else if (m.event === 'agent' || m.event === 'error') {
      note(`${m.name}: ${m.event} ${m.detail ?? ''}`);
    }
    if (m.event !== 'ready') json({ ...m });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`vic-like: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(70);
  },
);
