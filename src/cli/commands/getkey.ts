/**
 * `iolus getkey --group g --label srtp/AES_CM_128_HMAC_SHA1_80 [--epoch current|next|previous|N]
 *   [--format sdes|gst|ffmpeg|json] [--mki] [--socket path]`
 *
 * Prints one key from the local agent (paper §9's getkey()). No agent, or no membership: a
 * clear message and exit 1.
 */
import { z } from 'zod';
import { LocalAgentClient } from '../../client/localAgent/agentClient.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';

const Flags = z.object({
  group: GroupName,
  label: z.string().min(1).max(128).default('srtp/AES_CM_128_HMAC_SHA1_80'),
  epoch: z.string().regex(/^(current|next|previous|\d{1,16})$/, 'current, next, previous or an epoch number').default('current'),
  format: z.enum(['json', 'sdes', 'gst', 'ffmpeg']).default('json'),
  mki: z.boolean().optional(),
  socket: z.string().min(1).optional(),
});

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: iolus getkey --group <g> [--label srtp/<profile>|sframe|app/<name>] [--epoch current|next|previous|N] [--format sdes|gst|ffmpeg|json] [--mki] [--socket path]\n');
    return 0;
  }
  const { values: f } = parseFlags('getkey', args, {
    group: { type: 'string' }, label: { type: 'string' }, epoch: { type: 'string' }, format: { type: 'string' }, mki: { type: 'boolean' }, socket: { type: 'string' },
  }, Flags);
  const client = new LocalAgentClient(f.group, f.socket ? { socketPath: f.socket } : {});
  try {
    const q = new URLSearchParams({ label: f.label, epoch: f.epoch, format: f.format, ...(f.mki ? { mki: '1' } : {}) });
    const text = await client.get(`/v1/key?${q}`);
    process.stdout.write(f.format === 'json' ? `${text}\n` : text);
    return 0;
  } finally {
    client.close();
  }
}
