/**
 * `iolus agent --group g --agent https://keyd:port --cert f --key f --ca f [--socket path]
 *   [--tcp 127.0.0.1:port --token-file f] [--role member|originator]`
 *
 * A long-running member for programs that are not Node (issue 4): it holds the group's keys
 * and serves them on a local key API (src/client/localAgent/keyApi.ts). Logs go to stderr;
 * it prints one JSON line when ready (the socket path) and on each key event.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { GroupClient } from '../../client/client.js';
import { OriginatorClient } from '../../client/originatorClient.js';
import { KeyApi } from '../../client/localAgent/keyApi.js';
import { defaultSocketPath } from '../../client/localAgent/paths.js';
import { ValidationError } from '../../errors.js';
import { loadTlsMaterial } from '../../pki/tlsOptions.js';
import { logToStderr } from '../../util/log.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';
import { connectByName } from '../../discovery/resolver/connect.js';
import { RESOLVE_FLAG_OPTIONS, RESOLVE_USAGE, ResolveFlagsShape, resolverFromFlags } from '../../discovery/resolver/flags.js';

const USAGE = `usage: iolus agent --group <g> ${RESOLVE_USAGE} --cert <f> --key <f> --ca <f> [--socket <path>] [--tcp 127.0.0.1:<port> --token-file <f>] [--role member|originator] [--local-host addr]\n`;

const Flags = z.object({
  group: GroupName,
  ...ResolveFlagsShape,
  cert: z.string().min(1),
  key: z.string().min(1),
  ca: z.string().min(1),
  socket: z.string().min(1).optional(),
  tcp: z.string().regex(/^(127\.0\.0\.1|\[::1\]):\d{1,5}$/, 'only 127.0.0.1:<port> or [::1]:<port>').optional(),
  'token-file': z.string().min(1).optional(),
  role: z.enum(['member', 'originator']).default('member'),
  'local-host': z.union([z.ipv4(), z.ipv6()]).optional(),
}).refine((f) => !f.tcp || f['token-file'], { message: '--tcp needs --token-file (a bearer token)', path: ['token-file'] });

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  logToStderr();
  const { values: f } = parseFlags('agent', args, {
    group: { type: 'string' }, ...RESOLVE_FLAG_OPTIONS, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' },
    socket: { type: 'string' }, tcp: { type: 'string' }, 'token-file': { type: 'string' }, role: { type: 'string' }, 'local-host': { type: 'string' },
  }, Flags);
  let tcp: { host: string; port: number; token: string } | undefined;
  if (f.tcp) {
    const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(f.tcp)!;
    const port = Number(m[2]);
    if (port < 1 || port > 65_535) throw new ValidationError('agent.tcp', `--tcp: port ${port} is not in 1..65535`);
    let token: string;
    try {
      token = readFileSync(f['token-file']!, 'utf8').trim();
    } catch (err) {
      throw new ValidationError('agent.token', `--token-file: ${(err as Error).message}`);
    }
    tcp = { host: m[1]!, port, token };
  }
  const tls = await loadTlsMaterial({ ca: f.ca, cert: f.cert, key: f.key });
  const opts = { group: f.group, tls, ...(f['local-host'] ? { localHost: f['local-host'] } : {}) };
  // No --agent: find it by the group name (mDNS, directory) and follow it when it goes.
  const resolver = resolverFromFlags(f.group, f, tls);
  await resolver.start();
  let originator: OriginatorClient | undefined;
  const { client, resolution } = await connectByName(opts, resolver, async (o) => (f.role === 'originator' ? (originator = await OriginatorClient.connect(o)).client : GroupClient.connect(o)));
  const socketPath = f.socket ?? defaultSocketPath(f.group);
  const api = new KeyApi(client, { socketPath, ...(tcp ? { tcp } : {}) });
  await api.start();
  line({ event: 'ready', group: f.group, socket: socketPath, ...(tcp ? { tcp: `${tcp.host}:${tcp.port}` } : {}), memberId: client.member.memberId, role: f.role, agent: resolution.url, source: resolution.source });
  client.on('grant', (g: { memberId: number; agent: { name: string } }) => line({ event: 'joined', agent: g.agent.name, url: client.control.url.origin, memberId: g.memberId }));
  client.on('key', (k: { epoch: number; notBefore: number; notAfter: number }) => line({ event: 'key', epoch: k.epoch, notBefore: new Date(k.notBefore).toISOString(), notAfter: new Date(k.notAfter).toISOString() }));
  return new Promise<number>((resolve) => {
    let done = false;
    const finish = async (code: number, leave: boolean) => {
      if (done) return;
      done = true;
      await api.stop();
      await resolver.stop();
      if (originator) await originator.close();
      else if (leave) await client.leave();
      else await client.close();
      line({ event: 'exit', code });
      resolve(code);
    };
    client.on('state', (s: string, why: string) => {
      line({ event: 'state', state: s, why });
      if (s === 'removed') void finish(3, false);
      if (s === 'ended') void finish(4, false);
    });
    process.once('SIGTERM', () => void finish(0, true));
    process.once('SIGINT', () => void finish(0, true));
  });
}
