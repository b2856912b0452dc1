/**
 * `iolus usage --group g --since <time> [--until <time>] --by member|intermediary [--csv]
 *   (--config keyd.yaml | --state-dir dir)`
 *
 * Member-minutes from an agent's usage ledger (paper §3, §11): what a per-minute service bills
 * its members from (by member), and what a controller charges its intermediaries from (by
 * intermediary: minutes × the subtree's members).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { loadKeydConfig } from '../../keyd/config.js';
import { Ledger } from '../../keyd/ledger.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';
import { parseDuration } from '../../util/duration.js';

/** An ISO time, epoch milliseconds, or "<duration> ago" written as e.g. `1h` (meaning an hour back). */
function parseTime(flag: string, v: string, now: number): number {
  if (/^\d{10,16}$/.test(v)) return Number(v);
  const ago = parseDuration(v);
  if (ago !== undefined) return now - ago;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new ValidationError('usage.time', `--${flag}: ${JSON.stringify(v)} is not an ISO time, epoch ms, or a duration back (e.g. 1h)`);
  return t;
}

const Flags = z.object({
  group: GroupName,
  since: z.string().min(1).default('0'),
  until: z.string().min(1).optional(),
  by: z.enum(['member', 'intermediary']).default('member'),
  csv: z.boolean().optional(),
  config: z.string().min(1).optional(),
  'state-dir': z.string().min(1).optional(),
}).refine((f) => f.config || f['state-dir'], { message: 'give --config <keyd.yaml> or --state-dir <dir>', path: ['config'] });

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: iolus usage --group <g> [--since <time>] [--until <time>] [--by member|intermediary] [--csv] (--config <keyd.yaml> | --state-dir <dir>)\n');
    return 0;
  }
  const { values: f } = parseFlags('usage', args, {
    group: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, by: { type: 'string' }, csv: { type: 'boolean' },
    config: { type: 'string' }, 'state-dir': { type: 'string' },
  }, Flags);
  let dir = f['state-dir'];
  if (f.config) {
    const c = loadKeydConfig(f.config);
    if (c.group !== f.group) throw new ValidationError('usage.group', `--group: ${f.config} is for ${c.group}, not ${f.group}`);
    dir = c.state!.dir;
  }
  const path = join(dir!, 'ledger.sqlite');
  if (!existsSync(path)) throw new ValidationError('usage.ledger', `no usage ledger at ${path}`);
  const now = Date.now();
  const ledger = new Ledger(path);
  try {
    const rows = ledger.usage(f.since === '0' ? 0 : parseTime('since', f.since, now), f.by, f.until ? parseTime('until', f.until, now) : Number.MAX_SAFE_INTEGER);
    const cols = f.by === 'intermediary'
      ? ['principal', 'epochs', 'minutes', 'memberMinutes', 'firstEpoch', 'lastEpoch'] as const
      : ['principal', 'role', 'epochs', 'minutes', 'firstEpoch', 'lastEpoch'] as const;
    const cell = (v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v));
    if (f.csv) {
      process.stdout.write(`${cols.join(',')}\n`);
      for (const r of rows) process.stdout.write(`${cols.map((c) => JSON.stringify(r[c as keyof typeof r])).join(',')}\n`);
    } else {
      const table = [cols as readonly string[], ...rows.map((r) => cols.map((c) => cell(r[c as keyof typeof r])))];
      const widths = cols.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      for (const row of table) process.stdout.write(`${row.map((v, i) => v.padEnd(widths[i]!)).join('  ')}\n`);
      if (rows.length === 0) process.stdout.write(`(no ${f.by} received a group key in that period)\n`);
    }
    return 0;
  } finally {
    ledger.close();
  }
}
