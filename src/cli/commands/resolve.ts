/**
 * `iolus resolve <group> --cert f --key f --ca f (--agent url | --mdns [--interface eth0] | --directory url …) [--json]`
 *
 * Resolves a global group name to the local agent (paper §8.3) the way `iolus agent` and the
 * client library do, and prints what it found and where from, with every candidate it refused
 * and why. Exit 0 when found, 1 when no agent proved itself.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { loadTlsMaterial } from '../../pki/tlsOptions.js';
import { logToStderr } from '../../util/log.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';
import { RESOLVE_FLAG_OPTIONS, RESOLVE_USAGE, ResolveFlagsShape, resolverFromFlags } from '../../discovery/resolver/flags.js';
import type { Resolution } from '../../discovery/resolver/resolver.js';

const USAGE = `usage: iolus resolve <group> --cert <file> --key <file> --ca <file> ${RESOLVE_USAGE} [--resolve-timeout ms] [--json]\n`;

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  logToStderr();
  const { values: f, positionals } = parseFlags('resolve', args, {
    ...RESOLVE_FLAG_OPTIONS, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' }, json: { type: 'boolean' },
  }, z.object({ ...ResolveFlagsShape, cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1), json: z.boolean().optional() }), true);
  if (positionals.length !== 1) throw new ValidationError('resolve.group', `<group>: give exactly one global group name (got ${positionals.length})`);
  const g = GroupName.safeParse(positionals[0]);
  if (!g.success) throw new ValidationError('resolve.group', `<group>: ${g.error.issues[0]?.message ?? 'not a group name'}`);
  const group = g.data;
  const tls = await loadTlsMaterial({ ca: f.ca, cert: f.cert, key: f.key });
  const resolver = resolverFromFlags(group, f, tls);
  await resolver.start();
  try {
    const r = await resolver.resolve();
    process.stdout.write(f.json ? `${JSON.stringify({ group, ...r })}\n` : describe(group, r));
    return 0;
  } finally {
    await resolver.stop();
  }
}

function describe(group: string, r: Resolution): string {
  const lines = [`${group} → ${r.url}`, `  found by: ${r.source}${r.name ? ` (${r.source === 'mdns' ? 'instance' : 'agent'} ${JSON.stringify(r.name)})` : ''}`];
  if (r.principal) lines.push(`  proved by its certificate: ${r.principal}${r.role ? ` (${r.role}, level ${r.level ?? '?'})` : ''}, sha256 ${r.fingerprint}`);
  for (const a of r.asked) lines.push(`  asked ${a.source}: ${a.error ?? `${a.candidates} candidate(s)`}`);
  for (const x of r.refused) lines.push(`  refused ${x.source} ${x.url}${x.name ? ` (${x.name})` : ''}: ${x.reason}`);
  lines.push(`  in ${Math.round(r.elapsedMs)} ms`);
  return `${lines.join('\n')}\n`;
}
