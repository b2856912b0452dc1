/**
 * `iolus pki init <dir> --group <g> [--days N] [--force]`
 * `iolus pki issue <dir> --name <principal> --role <role> [--days N] [--dns host]… [--ip addr]…`
 *
 * The group CA and the certificates of its principals (src/pki). Prints the files written and
 * the certificate's fingerprint.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { DEFAULT_CA_DAYS, initCa, MAX_DAYS } from '../../pki/ca.js';
import { DEFAULT_LEAF_DAYS, issue } from '../../pki/issue.js';
import { groupNameSchema, hostnameSchema, principalNameSchema } from '../../pki/names.js';
import { AGENT_ROLES, isAgentRole, ROLES } from '../../pki/roles.js';
import { parseFlags } from '../args.js';

const USAGE = `usage:
  iolus pki init <dir> --group <name> [--days N] [--force]
  iolus pki issue <dir> --name <principal> --role ${ROLES.join('|')} [--days N] [--dns host]… [--ip addr]…
`;

const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? `required (${what})` : undefined);

const days = (fallback: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: 'must be a whole number of days' })
    .transform(Number)
    .pipe(z.number().int().min(1, { error: 'must be at least 1' }).max(MAX_DAYS, { error: `must be at most ${MAX_DAYS}` }))
    .default(fallback);

const initSchema = z.object({
  group: z.string({ error: required('the group name') }).pipe(groupNameSchema),
  days: days(DEFAULT_CA_DAYS),
  force: z.boolean().default(false),
});

const issueSchema = z.object({
  name: z.string({ error: required('the principal name') }).pipe(principalNameSchema),
  role: z.enum(ROLES, { error: (i) => (i.input === undefined ? `required (one of ${ROLES.join(', ')})` : `must be one of ${ROLES.join(', ')}, got ${JSON.stringify(i.input)}`) }),
  days: days(DEFAULT_LEAF_DAYS),
  dns: z.array(z.string()).default([]).superRefine((list, ctx) => {
    for (const d of list) if (!hostnameSchema.safeParse(d).success) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(d)} is not a DNS host name` });
  }),
  ip: z.array(z.string()).default([]).superRefine((list, ctx) => {
    for (const a of list) if (isIP(a) === 0) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(a)} is not an IP address` });
  }),
});

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'init') return runInit(rest);
  if (sub === 'issue') return runIssue(rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(sub === undefined ? USAGE : `iolus pki: unknown subcommand '${sub}' (expected init or issue)\n${USAGE}`);
  return 2;
}

async function runInit(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'pki init',
    args,
    { group: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } },
    initSchema,
    true,
  );
  const dir = directory(positionals);
  const { ca, files } = await initCa(dir, { group: values.group, validityDays: values.days, force: values.force });
  out([
    `group CA for ${ca.group} created`,
    `  certificate  ${files.cert}`,
    `  key          ${files.key} (mode 0600)`,
    `  fingerprint  ${ca.fingerprint}`,
    `  valid until  ${ca.notAfter.toISOString()}`,
  ]);
  return 0;
}

async function runIssue(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    'pki issue',
    args,
    {
      name: { type: 'string' },
      role: { type: 'string' },
      days: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
    },
    issueSchema,
    true,
  );
  const dir = directory(positionals);
  if ((values.dns.length > 0 || values.ip.length > 0) && !isAgentRole(values.role)) {
    throw new ValidationError(
      'cli.invalid',
      `--${values.dns.length > 0 ? 'dns' : 'ip'}: only agent roles (${AGENT_ROLES.join(', ')}) are TLS servers and carry DNS names or IP addresses; --role is ${values.role}`,
    );
  }
  const cert = await issue(dir, { name: values.name, role: values.role, validityDays: values.days, dns: values.dns, ip: values.ip });
  const names = [...cert.dns.map((d) => `DNS:${d}`), ...cert.ip.map((a) => `IP:${a}`)];
  out([
    `issued ${cert.name} (role ${cert.role}, group ${cert.group})`,
    `  certificate  ${cert.files.cert}`,
    `  key          ${cert.files.key} (mode 0600)`,
    `  fingerprint  ${cert.fingerprint}`,
    `  valid until  ${cert.notAfter.toISOString()}`,
    ...(names.length > 0 ? [`  names        ${names.join(', ')}`] : []),
  ]);
  return 0;
}

function directory(positionals: string[]): string {
  if (positionals.length !== 1 || !positionals[0]) {
    const why = positionals.length === 0 ? 'required' : `expected one, got ${positionals.length}: ${positionals.join(' ')}`;
    throw new ValidationError('cli.invalid', `<dir>: ${why} (the PKI directory)`);
  }
  return positionals[0];
}

function out(lines: string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}
