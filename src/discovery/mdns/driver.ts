/**
 * A line-protocol driver for the mDNS service, for tests and benchmarks that run it in another
 * network namespace (`ip netns exec hA node dist/src/discovery/mdns/driver.js '<json>'`).
 *
 * argv[2]: JSON `{ transport?: TransportConfigInput, advertise?: AdvertiserConfigInput[] }`.
 * stdout: one JSON object a line: `{"event":"ready",…}`, then one reply per command.
 * stdin: one JSON command a line, `{"id":1,"op":"resolve","group":"g","timeoutMs":2000}`:
 *   resolve {group, timeoutMs?, settleMs?, useCache?} → {candidates, elapsedMs}
 *   browse {type?, timeoutMs?} → {instances}
 *   cached {type?} → {instances}       flush → {}        stats → {transport, browser, advertisers}
 *   advertise {config} → {index, name}  unadvertise {index} → {} (goodbye)    exit → stops everything
 * SIGTERM/SIGINT: stop everything (goodbyes included) and exit 0. Logs go to stderr.
 */
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { z } from 'zod';
import { MdnsTransport } from './transport.js';
import { MdnsAdvertiser } from './advertiser.js';
import { MdnsBrowser } from './browser.js';
import { parseConfig } from './config.js';

const Startup = z.object({
  transport: z.record(z.string(), z.unknown()).default({}),
  advertise: z.array(z.record(z.string(), z.unknown())).default([]),
});

const Command = z.object({ id: z.union([z.number(), z.string()]).optional(), op: z.string() }).loose();

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(): Promise<void> {
  const logger = pino({ level: process.env.IOLUS_LOG_LEVEL ?? 'warn', base: { pid: process.pid } }, pino.destination(2));
  const startup = parseConfig(Startup, JSON.parse(process.argv[2] ?? '{}'), 'driver');
  const link = new MdnsTransport(startup.transport, { logger: logger.child({ component: 'mdns.transport' }) });
  await link.start();
  const browser = new MdnsBrowser({}, { link, logger: logger.child({ component: 'mdns.browser' }) });
  await browser.start();
  const advertisers: (MdnsAdvertiser | undefined)[] = [];
  const advertise = async (config: unknown) => {
    const ad = new MdnsAdvertiser(config as never, { link, logger: logger.child({ component: 'mdns.advertiser' }) });
    await ad.start();
    advertisers.push(ad);
    return { index: advertisers.length - 1, name: ad.name, host: ad.spec.host };
  };
  const started = [];
  for (const c of startup.advertise) started.push(await advertise(c));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all(advertisers.map((a) => a?.stop()));
      await browser.stop();
      await link.stop();
    })());
  const shutdown = () => void stop().then(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  out({ event: 'ready', interfaces: link.interfaces, advertised: started });

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let id: unknown;
    try {
      const cmd = Command.parse(JSON.parse(line));
      id = cmd.id;
      const c = cmd as Record<string, unknown>;
      switch (cmd.op) {
        case 'resolve': {
          const t0 = performance.now();
          const candidates = await browser.resolve(String(c.group), {
            ...(typeof c.timeoutMs === 'number' ? { timeoutMs: c.timeoutMs } : {}),
            ...(typeof c.settleMs === 'number' ? { settleMs: c.settleMs } : {}),
            ...(typeof c.useCache === 'boolean' ? { useCache: c.useCache } : {}),
          });
          out({ id, ok: true, candidates, elapsedMs: performance.now() - t0 });
          break;
        }
        case 'browse':
          out({ id, ok: true, instances: await browser.browse(typeof c.type === 'string' ? c.type : undefined, typeof c.timeoutMs === 'number' ? { timeoutMs: c.timeoutMs } : {}) });
          break;
        case 'cached':
          out({ id, ok: true, instances: browser.instances(typeof c.type === 'string' ? c.type : undefined) });
          break;
        case 'flush':
          browser.flush();
          out({ id, ok: true });
          break;
        case 'stats':
          out({ id, ok: true, transport: link.stats, browser: browser.stats, cacheSize: browser.cacheSize, advertisers: advertisers.map((a) => a?.stats ?? null) });
          break;
        case 'advertise':
          out({ id, ok: true, ...(await advertise(c.config)) });
          break;
        case 'unadvertise': {
          const index = Number(c.index);
          await advertisers[index]?.stop();
          advertisers[index] = undefined;
          out({ id, ok: true });
          break;
        }
        case 'exit':
          await stop();
          out({ id, ok: true });
          process.exit(0);
          break;
        default:
          out({ id, ok: false, error: `unknown op ${cmd.op}` });
      }
    } catch (err) {
      out({ id, ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    }
  }
  await stop(); // stdin closed
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`mdns driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
