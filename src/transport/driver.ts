/**
 * A line-protocol driver for one side of a subgroup transport, for integration tests that run
 * it in a network namespace (`ip netns exec hA node …/driver.js '<json>'`). It lives under src/
 * so the netns library's compile cache (keyed on src/) sees every change to it.
 *
 * argv[2]: JSON, one of
 *   {"role":"agent","config":<AgentTransportConfig>}
 *   {"role":"member","descriptor":<TransportDescriptor>,"interface"?,"localHost"?}
 *   {"role":"flooder"}                         (no transport: sends random datagrams only)
 * stdout: `{"event":"ready","descriptor"?,"endpoint"?}`, then one JSON reply a command.
 * stdin: one JSON command a line, `{"id":1,"op":…}`:
 *   send {to: subgroup|agent|multicast, hex?, fill?, length?} → {}     (agent: to multicast)
 *   addMember {memberId, endpoint?} / removeMember {memberId} → {}
 *   received {clear?} → {total, items: [{hex (first 16 bytes), length, source?}]} (last 1000)
 *   counters → {datagramsIn, …, dropped: {cause: n}}
 *   flood {host, port, count, seed, batch?} → {sent, empty, oversized, bytes}
 *   stop → {} (idempotent)        exit → exits 0
 * SIGTERM/SIGINT: stop and exit 0. Logs go to stderr.
 */
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { z } from 'zod';
import { TransportDescriptor } from '../wire/control.js';
import { openAgentTransport, openMemberTransport } from './factory.js';
import { ipFamily } from './config.js';
import { snapshot } from './datagram.js';
import type { AgentTransport, DatagramSource, MemberTransport } from './types.js';

const Startup = z.discriminatedUnion('role', [
  z.object({ role: z.literal('agent'), config: z.unknown() }),
  z.object({ role: z.literal('member'), descriptor: TransportDescriptor, interface: z.string().optional(), localHost: z.string().optional() }),
  z.object({ role: z.literal('flooder') }),
]);

const Command = z.object({ id: z.union([z.number(), z.string()]).optional(), op: z.string() }).loose();

const MAX_KEPT = 1000;

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

interface Received {
  hex: string;
  length: number;
  source?: DatagramSource;
}

async function main(): Promise<void> {
  const logger = pino({ level: process.env.IOLUS_LOG_LEVEL ?? 'warn', base: { pid: process.pid } }, pino.destination(2));
  const startup = Startup.parse(JSON.parse(process.argv[2] ?? '{}'));
  let agent: AgentTransport | undefined;
  let member: MemberTransport | undefined;
  const items: Received[] = [];
  let total = 0;
  const record = (bytes: Uint8Array, source?: DatagramSource) => {
    total++;
    items.push({ hex: Buffer.from(bytes.subarray(0, 16)).toString('hex'), length: bytes.length, ...(source ? { source } : {}) });
    if (items.length > MAX_KEPT) items.shift();
  };
  if (startup.role === 'agent') {
    agent = openAgentTransport(startup.config as never, { logger });
    agent.onDatagram(record);
    await agent.start();
    out({ event: 'ready', descriptor: agent.descriptor });
  } else if (startup.role === 'member') {
    member = openMemberTransport(startup.descriptor, {
      logger, ...(startup.interface ? { interface: startup.interface } : {}), ...(startup.localHost ? { localHost: startup.localHost } : {}),
    });
    member.onDatagram((b) => record(b));
    await member.start();
    out({ event: 'ready', endpoint: member.endpoint() ?? null });
  } else {
    out({ event: 'ready' });
  }

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= Promise.all([agent?.stop(), member?.stop()]).then(() => undefined));
  const shutdown = () => void stop().then(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (line.trim() === '') continue;
    let id: unknown;
    try {
      const cmd = Command.parse(JSON.parse(line));
      id = cmd.id;
      const c = cmd as Record<string, unknown>;
      switch (cmd.op) {
        case 'send': {
          const bytes = typeof c.hex === 'string' ? Buffer.from(c.hex, 'hex') : Buffer.alloc(Number(c.length ?? 0), Number(c.fill ?? 0));
          if (typeof c.hex === 'string' && typeof c.length === 'number' && c.length > bytes.length) {
            const padded = Buffer.alloc(c.length, Number(c.fill ?? 0));
            bytes.copy(padded);
            send(padded, String(c.to));
          } else {
            send(bytes, String(c.to));
          }
          out({ id, ok: true });
          break;
        }
        case 'addMember':
          agent?.addMember(Number(c.memberId), c.endpoint as { host: string; port: number } | undefined);
          out({ id, ok: true });
          break;
        case 'removeMember':
          agent?.removeMember(Number(c.memberId));
          out({ id, ok: true });
          break;
        case 'received':
          out({ id, ok: true, total, items: [...items] });
          if (c.clear) items.length = 0;
          break;
        case 'counters':
          out({ id, ok: true, ...snapshot((agent ?? member)?.counters ?? { datagramsIn: 0, datagramsOut: 0, bytesIn: 0, bytesOut: 0, dropped: new Map() }) });
          break;
        case 'flood':
          out({ id, ok: true, ...(await flood(String(c.host), Number(c.port), Number(c.count), Number(c.seed ?? 1), Number(c.batch ?? 50))) });
          break;
        case 'stop':
          await stop();
          out({ id, ok: true });
          break;
        case 'exit':
          await stop();
          out({ id, ok: true });
          process.exit(0);
          break;
        default:
          out({ id, ok: false, error: `unknown op ${cmd.op}` });
      }
    } catch (err) {
      out({ id, ok: false, error: (err as Error).message });
    }
  }

  function send(bytes: Uint8Array, to: string): void {
    if (agent) agent.multicast(bytes);
    else if (to === 'agent') member?.sendAgent(bytes);
    else member?.sendSubgroup(bytes);
  }
}

/** mulberry32: the same seed gives the same flood. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random datagrams at host:port: 2 % empty, 2 % over 65,000 bytes (up to the UDP maximum), the
 * rest 1-1,400 random bytes, some starting like an Iolus header. Paced in batches so the
 * receiver's socket buffer is not what is being tested.
 */
async function flood(host: string, port: number, count: number, seed: number, batch: number) {
  const family = ipFamily(host) ?? 4;
  const maxUdp = family === 6 ? 65_527 : 65_507;
  const random = rng(seed);
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.bind(0, r));
  const stats = { sent: 0, empty: 0, oversized: 0, bytes: 0, errors: 0 };
  try {
    for (let i = 0; i < count; i += batch) {
      const sends: Promise<void>[] = [];
      for (let j = i; j < Math.min(count, i + batch); j++) {
        const r = random();
        const length = r < 0.02 ? 0 : r < 0.04 ? 65_001 + Math.floor(random() * (maxUdp - 65_000)) : 1 + Math.floor(random() * 1400);
        const bytes = Buffer.alloc(length);
        for (let k = 0; k < Math.min(length, 2048); k++) bytes[k] = Math.floor(random() * 256);
        if (length >= 3 && random() < 0.3) bytes.set([1, 1, 1 + Math.floor(random() * 7)], 0);
        if (length === 0) stats.empty++;
        if (length > 65_000) stats.oversized++;
        stats.bytes += length;
        sends.push(new Promise((resolve) => socket.send(bytes, port, host, (err) => {
          if (err) stats.errors++;
          else stats.sent++;
          resolve();
        })));
      }
      await Promise.all(sends);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    await new Promise<void>((r) => socket.close(() => r()));
  }
  return stats;
}

main().catch((err) => {
  process.stderr.write(`driver: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
