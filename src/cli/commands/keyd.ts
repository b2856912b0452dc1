/**
 * `iolus keyd --config <file.yaml> [--check]`: runs one agent (controller or intermediary) of
 * one group. A bad config prints one line per problem and exits 2 before anything starts;
 * `--check` validates only. SIGTERM/SIGINT: a controller sends GRP_END, an intermediary leaves
 * its parent; both exit within 2 s.
 */
import { z } from 'zod';
import { loadKeydConfig } from '../../keyd/config.js';
import { KeyDaemon } from '../../keyd/daemon.js';
import { loadTlsMaterial } from '../../pki/tlsOptions.js';
import { parseFlags } from '../args.js';

const USAGE = 'usage: iolus keyd --config <file.yaml> [--check]\n';

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { values } = parseFlags('keyd', args, { config: { type: 'string' }, check: { type: 'boolean' } },
    z.object({ config: z.string({ error: 'required: the YAML config file' }).min(1), check: z.boolean().optional() }));
  const config = loadKeydConfig(values.config);
  if (values.check) {
    await loadTlsMaterial(config.tls); // the files must load too
    process.stdout.write(`${values.config}: ok (${config.agent.role} ${config.agent.name} of ${config.group})\n`);
    return 0;
  }
  process.env.IOLUS_LOG_LEVEL ??= config.log.level;
  const daemon = await KeyDaemon.start(config);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      daemon.log.info({ event: 'signal', signal: sig }, 'shutting down');
      const hard = setTimeout(() => resolve(0), 1900);
      daemon.stop({ budgetMs: 1700 }).finally(() => {
        clearTimeout(hard);
        resolve(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  }).then((code) => {
    // Sockets of a half-closed peer must not keep us alive past the 2 s promise.
    setTimeout(() => process.exit(code), 50).unref();
    return code;
  });
}
