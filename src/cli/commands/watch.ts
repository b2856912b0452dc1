/**
 * `iolus watch --group g [--label l] [--socket path] [--count N]`: prints each rollover (a new
 * key held, a new key in force) as a JSON line, from the local agent's event stream.
 */
import { z } from 'zod';
import { LocalAgentClient } from '../../client/localAgent/agentClient.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';

const Flags = z.object({
  group: GroupName,
  label: z.string().min(1).max(128).optional(),
  socket: z.string().min(1).optional(),
  count: z.coerce.number().int().min(1).max(1_000_000).optional(),
});

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: iolus watch --group <g> [--label <label>] [--count N] [--socket path]\n');
    return 0;
  }
  const { values: f } = parseFlags('watch', args, { group: { type: 'string' }, label: { type: 'string' }, socket: { type: 'string' }, count: { type: 'string' } }, Flags);
  const client = new LocalAgentClient(f.group, f.socket ? { socketPath: f.socket } : {});
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const status = await client.json<Record<string, unknown>>('/v1/status');
  process.stdout.write(`${JSON.stringify({ event: 'status', ...status })}\n`);
  let n = 0;
  try {
    for await (const e of client.events(abort.signal)) {
      const out: Record<string, unknown> = { event: e.event, ...(e.data as object) };
      if (f.label && e.event === 'activate') {
        const epoch = (e.data as { epoch: number }).epoch;
        out.key = JSON.parse(await client.get(`/v1/key?label=${encodeURIComponent(f.label)}&epoch=${epoch}`)) as unknown;
      }
      process.stdout.write(`${JSON.stringify(out)}\n`);
      if (f.count && ++n >= f.count) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    abort.abort();
    client.close();
  }
  return 0;
}
