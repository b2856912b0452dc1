/**
 * `iolus demo` (the README's `npm start`): a complete local deployment on embedded defaults.
 * On first run it makes a group PKI under .iolus/demo; then it starts a controller and two
 * intermediaries as real keyd processes on 127.0.0.1, members at each (in this process), and
 * prints membership changes, rekeys and group-key rollovers as they happen, with members
 * pulling their SRTP keys each epoch. A short script of joins, a leave, an expulsion and a
 * forced roll plays out; Ctrl-C shuts everything down (GRP_END from the controller).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { z } from 'zod';
import { GroupClient } from '../../client/client.js';
import { ControlClient } from '../../client/controlClient.js';
import { initCa } from '../../pki/ca.js';
import { issue, type IssuedCertificate } from '../../pki/issue.js';
import { loadTlsMaterial, type TlsMaterial } from '../../pki/tlsOptions.js';
import { issuedFiles } from '../../pki/files.js';
import { logToStderr } from '../../util/log.js';
import { parseFlags } from '../args.js';

const GROUP = 'demo.example';
const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}

function say(who: string, text: string): void {
  const t = new Date().toISOString().slice(11, 23);
  process.stdout.write(`${t}  ${who.padEnd(12)} ${text}\n`);
}

/** One keyd log line (pino JSON) as a line a person reads. */
function describe(o: Record<string, unknown>): string | undefined {
  switch (o.event) {
    case 'start': return `agent up at ${String(o.url)} (subgroup ${String(o.subgroup)}, ${(o.transport as { kind: string }).kind})`;
    case 'join': return `join    ${String(o.principal)} as ${String(o.role)} (member ${String(o.memberId)})`;
    case 'remove': return `remove  ${String(o.principal)} (${String(o.cause)})`;
    case 'expel': return `expel   member ${String(o.memberId)} ${String(o.principal ?? '')} by ${String(o.by)}`;
    case 'rekey': return `rekey   subgroup epoch ${String(o.epoch)} (${String(o.reason)}: ${String(o.wraps)} wraps, ${String(o.messages)} msg, ${String(o.bytes)} B, ${String(o.members)} members)`;
    case 'group-key': return `KGRP2   epoch ${String(o.epoch)} created (${String(o.reason)}${o.voids ? `, voids ${String(o.voids)}` : ''}), in force ${String(o.notBefore).slice(11, 19)}–${String(o.notAfter).slice(11, 19)}`;
    case 'parent': return `parent  ${String(o.state)}`;
    case 'end': return 'GRP_END sent down the tree';
    case 'stop': return 'stopped';
    default: return undefined;
  }
}

export async function run(args: string[]): Promise<number> {
  logToStderr();
  const { values: f } = parseFlags('demo', args, { dir: { type: 'string' }, period: { type: 'string' }, 'run-for': { type: 'string' } },
    z.object({ dir: z.string().default('.iolus/demo'), period: z.string().regex(/^\d+s$/, 'seconds, like 6s').refine((p) => parseInt(p, 10) >= 2, 'at least 2s').default('6s'), 'run-for': z.coerce.number().int().positive().optional() }));
  process.env.IOLUS_LOG_LEVEL ??= 'warn';
  const dir = resolve(f.dir);
  // Lead and grace a third of the period (2 s at the default 6 s), so any period ≥ 2 s is valid.
  const leadS = Math.max(1, Math.floor(parseInt(f.period, 10) / 3));
  const pki = join(dir, 'pki');
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(pki, 'ca.crt'))) await initCa(pki, { group: GROUP, validityDays: 3650 });
  const tlsOf = async (name: string, role: IssuedCertificate['role']): Promise<TlsMaterial> => {
    const files = issuedFiles(pki, name);
    if (!existsSync(files.cert)) await issue(pki, { name, role, validityDays: 365 });
    return loadTlsMaterial({ ca: join(pki, 'ca.crt'), cert: files.cert, key: files.key });
  };
  say('demo', `group ${GROUP}, PKI in ${pki}`);

  const agents = [
    { name: 'controller', role: 'controller' as const, port: await freePort() },
    { name: 'gsi-east', role: 'intermediary' as const, port: await freePort() },
    { name: 'gsi-west', role: 'intermediary' as const, port: await freePort() },
  ];
  const url = (name: string) => `https://127.0.0.1:${agents.find((a) => a.name === name)!.port}`;
  const procs: ResultPromise[] = [];
  for (const a of agents) {
    await tlsOf(a.name, a.role);
    const files = issuedFiles(pki, a.name);
    const cfg = [
      `group: ${GROUP}`,
      `agent: { name: ${a.name}, role: ${a.role} }`,
      ...(a.role === 'intermediary' ? [`parent: { url: "${url('controller')}" }`] : []),
      `tls: { ca: "${join(pki, 'ca.crt')}", cert: "${files.cert}", key: "${files.key}" }`,
      `listen: { host: 127.0.0.1, port: ${a.port} }`,
      'subgroup: { transport: { kind: unicast }, heartbeat: 1s, membershipTtl: 20s }',
      `groupKey: { period: ${f.period}, lead: ${leadS}s, grace: ${leadS}s }`,
      `state: { dir: "${join(dir, 'state', a.name)}" }`,
      'acl:',
      '  - { principal: "gsi-*", roles: [intermediary] }',
      '  - { principal: admin, roles: [admin] }',
      '  - { principal: "*", roles: [member] }',
      '  - { principal: dave, roles: [member], minutes: 4 }',
    ].join('\n');
    const path = join(dir, `${a.name}.yaml`);
    writeFileSync(path, `${cfg}\n`);
    const p = execa(process.execPath, [MAIN, 'keyd', '--config', path], { env: { IOLUS_LOG_LEVEL: 'info' }, reject: false, buffer: false });
    p.stdout?.setEncoding('utf8');
    let rest = '';
    p.stdout?.on('data', (chunk: string) => {
      rest += chunk;
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        try {
          const text = describe(JSON.parse(l) as Record<string, unknown>);
          if (text) say(a.name, text);
        } catch {
          /* not JSON */
        }
      }
    });
    p.stderr?.on('data', (c: Buffer) => process.stderr.write(c));
    procs.push(p);
    // Wait until it serves (its log says so) before anyone joins it.
    await new Promise<void>((resolveUp, rejectUp) => {
      const onData = (chunk: string) => {
        if (chunk.includes('"event":"start"')) {
          p.stdout?.off('data', onData);
          resolveUp();
        }
      };
      p.stdout?.on('data', onData);
      void p.then((r) => rejectUp(new Error(`${a.name} exited early (${String(r.exitCode)})`)));
    });
  }

  const members = new Map<string, GroupClient>();
  const join1 = async (name: string, at: string) => {
    const c = await GroupClient.connect({ group: GROUP, agent: url(at), tls: await tlsOf(name, 'member'), logger: (await import('../../util/log.js')).silentLogger() });
    members.set(name, c);
    c.on('data', (d: { payload: Uint8Array }) => say(name, `received "${new TextDecoder().decode(d.payload)}"`));
    c.on('state', (s: string, why: string) => say(name, `${s}: ${why}`));
    c.on('key', (k: { epoch: number; notBefore: number }) => {
      const pulled = c.getKey({ label: 'srtp/AES_CM_128_HMAC_SHA1_80', epoch: k.epoch });
      if (pulled) say(name, `holds KGRP2 epoch ${k.epoch} → srtp key ${Buffer.from(pulled.key).toString('hex').slice(0, 12)}… (MKI ${Buffer.from(pulled.mki).toString('hex')}), active ${new Date(k.notBefore).toISOString().slice(11, 19)}`);
    });
    return c;
  };
  const admin = new ControlClient({ url: url('controller'), group: GROUP, tls: await tlsOf('admin', 'admin') });

  let stopping = false;
  let stopped: Promise<void> | undefined;
  let wake: () => void = () => undefined;
  const shutdown = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      wake();
      say('demo', 'shutting down: members leave, agents stop (the controller sends GRP_END)');
      await Promise.all([...members.values()].map((m) => m.leave().catch(() => undefined)));
      admin.close();
      for (const p of [...procs].reverse()) p.kill('SIGTERM');
      await Promise.race([Promise.all(procs), new Promise((r) => setTimeout(r, 3000))]);
      for (const p of procs) p.kill('SIGKILL');
    })();
    return stopped;
  };
  /** Waits `ms`, or less if the demo is told to stop meanwhile. */
  const pause = (ms: number) => new Promise<void>((r) => {
    if (stopping) return r();
    const t = setTimeout(r, ms);
    wake = () => {
      clearTimeout(t);
      r();
    };
  });
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());

  const script: [number, () => Promise<unknown>][] = [
    [0, () => join1('alice', 'controller')],
    [500, () => join1('bob', 'gsi-east')],
    [500, () => join1('carol', 'gsi-east')],
    [500, () => join1('dave', 'gsi-west')],
    [500, () => join1('erin', 'gsi-west')],
    [3000, async () => members.get('carol')?.send('hello from carol at gsi-east')],
    [4000, async () => {
      say('demo', 'bob leaves: only gsi-east rekeys');
      await members.get('bob')?.leave();
      members.delete('bob');
    }],
    [5000, async () => {
      const list = await admin.call<{ members: { id: number; principal: string }[] }>('GET', '/v1/admin/members');
      const alice = list.members.find((m) => m.principal === 'alice');
      if (!alice) return;
      say('demo', 'admin expels alice at the controller: the pending next group key is voided');
      await admin.call('POST', `/v1/admin/members/${alice.id}/expel`, {});
    }],
    [5000, async () => {
      say('demo', 'admin forces a roll');
      await admin.call('POST', '/v1/admin/roll', {});
    }],
    [3000, () => join1('frank', 'controller')],
    [2000, async () => members.get('frank')?.send('frank says hi to everyone')],
    [1000, async () => say('demo', 'dave has a budget of 4 epochs: it is dropped before the fifth. Ctrl-C to stop.')],
  ];
  try {
    for (const [wait, step] of script) {
      await pause(wait);
      if (stopping) break;
      await step().catch((err: unknown) => {
        if (!stopping) say('demo', `step failed: ${(err as Error).message}`);
      });
    }
    if (f['run-for']) setTimeout(() => void shutdown(), f['run-for'] * 1000).unref();
    while (!stopping) await pause(3_600_000);
  } finally {
    await shutdown();
  }
  say('demo', 'done');
  return 0;
}
