/**
 * `iolus roll --group g --agent https://controller:port --cert admin.crt --key admin.key --ca ca.crt`:
 * forces an immediate KGRP2 roll at the controller (admin role).
 */
import { z } from 'zod';
import { ControlClient } from '../../client/controlClient.js';
import { loadTlsMaterial } from '../../pki/tlsOptions.js';
import { GroupName } from '../../wire/control.js';
import { parseFlags } from '../args.js';

const Flags = z.object({
  group: GroupName,
  agent: z.string().url().refine((u) => u.startsWith('https://'), 'an https:// URL'),
  cert: z.string().min(1), key: z.string().min(1), ca: z.string().min(1),
});

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write('usage: iolus roll --group <g> --agent https://<controller>:<port> --cert <admin.crt> --key <admin.key> --ca <ca.crt>\n');
    return 0;
  }
  const { values: f } = parseFlags('roll', args, { group: { type: 'string' }, agent: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' } }, Flags);
  const tls = await loadTlsMaterial({ ca: f.ca, cert: f.cert, key: f.key });
  const c = new ControlClient({ url: f.agent, group: f.group, tls });
  try {
    const r = await c.call<{ epoch: number }>('POST', '/v1/admin/roll', {});
    process.stdout.write(`${JSON.stringify({ rolled: true, epoch: r.epoch })}\n`);
    return 0;
  } finally {
    c.close();
  }
}
