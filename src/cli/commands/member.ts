/**
 * `iolus member --group <g> --agent <url> --cert f --key f --ca f [--method 1|2] [--role member|originator]`
 *
 * Joins a group and prints, one JSON line each, what happens: the grant, subgroup key
 * changes, data received, removal or GRP_END. Each line on stdin is sent to the group as data;
 * the end of stdin leaves (unless --listen-only). Logs go to stderr.
 * Exits 0 on leave (stdin closed, SIGINT/SIGTERM), 3 when removed, 4 on GRP_END.
 */
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { loadTlsMaterial } from '../../pki/tlsOptions.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';
import { logToStderr } from '../../util/log.js';
import { connectByName } from '../../discovery/resolver/connect.js';
import { RESOLVE_FLAG_OPTIONS, RESOLVE_USAGE, ResolveFlagsShape, resolverFromFlags } from '../../discovery/resolver/flags.js';

const USAGE = `usage: iolus member --group <g> ${RESOLVE_USAGE} --cert <file> --key <file> --ca <file> [--method 1|2] [--local-host addr] [--role member|originator] [--listen-only]\n`;

const Flags = z.object({
  group: GroupName,
  ...ResolveFlagsShape,
  cert: z.string().min(1),
  key: z.string().min(1),
  ca: z.string().min(1),
  method: z.enum(['1', '2']).default('1'),
  role: z.enum(['member', 'originator']).default('member'),
  'local-host': z.union([z.ipv4(), z.ipv6()]).optional(),
  'listen-only': z.boolean().optional(),
});

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
}

export async function run(args: string[]): Promise<number> {
  logToStderr();
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { values: f } = parseFlags('member', args, {
    group: { type: 'string' }, ...RESOLVE_FLAG_OPTIONS, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' },
    method: { type: 'string' }, role: { type: 'string' }, 'local-host': { type: 'string' }, 'listen-only': { type: 'boolean' },
  }, Flags);
  const tls = await loadTlsMaterial({ ca: f.ca, cert: f.cert, key: f.key });
  const resolver = resolverFromFlags(f.group, f, tls); // no --agent: by name, over mDNS / the directory
  await resolver.start();
  const { client } = await connectByName({ group: f.group, tls, role: f.role, ...(f['local-host'] ? { localHost: f['local-host'] } : {}) }, resolver);
  const g = client.grant!;
  line({ event: 'joined', memberId: g.memberId, subgroup: g.subgroup.id, epoch: g.subgroup.epoch, agent: g.agent.name, transport: g.transport.kind });
  client.on('grant', (gr: typeof g) => line({ event: 'joined', memberId: gr.memberId, subgroup: gr.subgroup.id, epoch: gr.subgroup.epoch, agent: gr.agent.name, transport: gr.transport.kind }));
  client.on('subgroup-key', (epoch: number) => line({ event: 'subgroup-key', epoch }));
  client.on('data', (d: { payload: Uint8Array; origin: { subgroup: number; member: number }; method: number }) =>
    line({ event: 'data', from: `${d.origin.subgroup}:${d.origin.member}`, method: d.method, text: new TextDecoder().decode(d.payload) }));
  client.on('gap', (why: string) => line({ event: 'gap', why }));
  const method = Number(f.method) as 1 | 2;
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = async (code: number, leave: boolean) => {
      if (done) return;
      done = true;
      if (leave) await client.leave();
      else await client.close();
      await resolver.stop();
      line({ event: 'exit', code });
      // An open stdin keeps the event loop alive: without this, removal and GRP_END never exit.
      rl.close();
      process.stdin.destroy();
      resolve(code);
    };
    client.on('state', (s: string, why: string) => {
      line({ event: 'state', state: s, why });
      if (s === 'removed') void finish(3, false);
      if (s === 'ended') void finish(4, false);
    });
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (text) => {
      if (!text) return;
      try {
        client.send(text, method);
        line({ event: 'sent', text, method });
      } catch (err) {
        line({ event: 'send-failed', reason: (err as Error).message });
      }
    });
    // End of input means leave, unless --listen-only (then only a signal ends the session).
    if (!f['listen-only']) rl.on('close', () => void finish(0, true));
    process.once('SIGTERM', () => void finish(0, true));
    process.once('SIGINT', () => void finish(0, true));
  });
}
