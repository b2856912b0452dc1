/**
 * `iolus directory`: the directory service (paper §8.3) and its views.
 *
 *   iolus directory --config directory.yaml [--check]
 *       run it (see src/discovery/directory/config.ts); --check validates config and files only.
 *   iolus directory list --url https://host:port --ca dir-ca.crt [--cert f --key f] [--json]
 *       the sd-style view: every group you may see, with its agents, nearest first.
 *   iolus directory sap-listen --interface <ipv4> [--address 239.255.255.255] [--port 9875] [--for 10s]
 *       listen to SAP announcements on the link and print each change as a JSON line.
 *
 * SIGTERM/SIGINT stop the service: SAP deletions go out, connections close.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { loadDirectoryConfig } from '../../discovery/directory/config.js';
import { DirectoryClient } from '../../discovery/directory/client.js';
import { DirectoryServer } from '../../discovery/directory/server.js';
import { GroupTrust } from '../../discovery/directory/trust.js';
import type { ListResponse } from '../../discovery/directory/api.js';
import { SapListener } from '../../discovery/sap/listener.js';
import { openSapReceiver } from '../../discovery/sap/socket.js';
import { SAP_DEFAULT_ADDRESS, SAP_PORT } from '../../discovery/directory/config.js';
import { duration } from '../../util/duration.js';
import { logToStderr } from '../../util/log.js';
import { parseFlags } from '../args.js';

const USAGE = `usage: iolus directory --config <file.yaml> [--check]
       iolus directory list --url https://host:port --ca <directory CA file> [--cert <file> --key <file>] [--json]
       iolus directory sap-listen --interface <ipv4> [--address ${SAP_DEFAULT_ADDRESS}] [--port ${SAP_PORT}] [--for 10s]
`;

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [sub, ...rest] = args;
  if (sub === 'list') return list(rest);
  if (sub === 'sap-listen') return sapListen(rest);
  return serve(args);
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseFlags('directory', args, { config: { type: 'string' }, check: { type: 'boolean' } },
    z.object({ config: z.string({ error: 'required: the YAML config file' }).min(1), check: z.boolean().optional() }));
  const config = loadDirectoryConfig(values.config);
  const trust = GroupTrust.fromFiles(config.groups);
  const tls = { cert: readFile(config.tls.cert, 'tls.cert'), key: readFile(config.tls.key, 'tls.key') };
  if (values.check) {
    process.stdout.write(`${values.config}: ok (${trust.groups.length} group(s), lookups ${config.lookups}${config.sap.enabled ? ', SAP on' : ''})\n`);
    return 0;
  }
  process.env.IOLUS_LOG_LEVEL ??= config.log.level;
  const dir = await DirectoryServer.start({ config, tls, trust });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      dir.log.info({ event: 'signal', signal }, 'shutting down');
      const hard = setTimeout(() => resolve(0), 1900);
      void dir.stop().finally(() => {
        clearTimeout(hard);
        resolve(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }).then((code) => {
    setTimeout(() => process.exit(code), 50).unref();
    return code;
  });
}

function readFile(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ValidationError('directory.file', `${field}: ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

async function list(args: string[]): Promise<number> {
  logToStderr();
  const { values: f } = parseFlags('directory list', args, {
    url: { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, json: { type: 'boolean' },
  }, z.object({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'an https:// URL'),
    ca: z.string().min(1),
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    json: z.boolean().optional(),
  }).refine((v) => !v.cert === !v.key, { message: '--cert and --key go together', path: ['key'] }));
  const client = new DirectoryClient({
    url: f.url, ca: readFile(f.ca, '--ca'), ...(f.cert && f.key ? { cert: readFile(f.cert, '--cert'), key: readFile(f.key, '--key') } : {}),
  });
  try {
    const r = await client.list();
    process.stdout.write(f.json ? `${JSON.stringify(r)}\n` : formatList(r));
    return 0;
  } finally {
    client.close();
  }
}

/** The sd-style text view. */
export function formatList(r: ListResponse): string {
  if (r.groups.length === 0) return '(no groups registered)\n';
  const lines: string[] = [];
  for (const g of r.groups) {
    lines.push(`${g.group}  (${g.agents.length} agent${g.agents.length === 1 ? '' : 's'})`);
    for (const a of g.agents) {
      lines.push(`  ${a.principal.padEnd(16)} ${a.role.padEnd(12)} level ${a.level}  ${(a.site ?? '-').padEnd(10)} members ${String(a.members).padEnd(5)} ${a.url}  (${a.tier}, expires in ${Math.round(a.expiresInMs / 1000)} s)`);
    }
  }
  return `${lines.join('\n')}\n`;
}

async function sapListen(args: string[]): Promise<number> {
  logToStderr();
  const { values: f } = parseFlags('directory sap-listen', args, {
    interface: { type: 'string' }, address: { type: 'string' }, port: { type: 'string' }, for: { type: 'string' },
  }, z.object({
    interface: z.ipv4({ error: 'the IPv4 address of the interface to listen on' }),
    address: z.ipv4().default(SAP_DEFAULT_ADDRESS),
    port: z.coerce.number().int().min(1).max(65_535).default(SAP_PORT),
    for: duration({ min: 100, max: 86_400_000 }).optional(),
  }));
  const listener = new SapListener();
  const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ t: Date.now(), ...o })}\n`);
  const rx = await openSapReceiver({ interfaceAddress: f.interface, address: f.address, port: f.port }, (bytes, from) => {
    const e = listener.receive(bytes, from, Date.now());
    if (!e) return;
    if (e.kind === 'deleted') line({ event: 'deleted', id: e.id, announcer: e.announcer });
    else if (e.kind === 'refused') line({ event: 'refused', from: e.from, reason: e.reason });
    else line({ event: e.kind, id: e.session.id, announcer: e.session.announcer, name: e.session.sdp.name, group: e.session.group, keyLines: e.session.sdp.keyLines, sdp: e.session.text });
  });
  line({ event: 'ready', address: `${f.address}:${f.port}`, interface: f.interface });
  return new Promise<number>((resolve) => {
    const finish = () => {
      void rx.close().then(() => {
        line({ event: 'exit', sessions: listener.list().length, stats: listener.stats });
        resolve(0);
      });
    };
    if (f.for !== undefined) setTimeout(finish, f.for);
    process.once('SIGTERM', finish);
    process.once('SIGINT', finish);
  });
}
