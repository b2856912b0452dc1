/**
 * Time for an mDNS resolution (global group name → agent candidates) on a quiet link: an agent
 * advertises in namespace hA, a resolver in hB resolves the group with an empty cache, round
 * after round. The time is measured inside the resolver process (query sent → first complete
 * candidate), so process start-up and the test's own pipes are not counted.
 *
 * What to expect: the browse answer is a PTR, a shared record, which RFC 6762 §6 makes every
 * responder delay by a random 20-120 ms; the median is therefore ~70 ms by design, not network time.
 * Rounds are spaced by more than a second, because a responder multicasts a record at most once
 * a second per interface (same section); closer rounds would measure that rule instead.
 *
 * Needs root (network namespaces). Returns the figures; the directory benchmark writes the report.
 */
import { median, percentile } from './report.js';
import { createSite, nodeEntry } from '../../integration/lib/netns.js';

export interface MdnsResolveOptions {
  /** Resolutions to time (default 30, at most 500). */
  rounds?: number;
  /** Pause between rounds, ms (default 1,100: see the file comment; at least 1,000). */
  intervalMs?: number;
  /** Give up on one resolution after this long, ms (default 3,000). */
  timeoutMs?: number;
}

export interface MdnsResolveFigures {
  rounds: number;
  /** Rounds that found the agent. */
  resolved: number;
  /** Rounds that timed out or found something else. */
  failures: number;
  medianMs: number;
  p99Ms: number;
  minMs: number;
  maxMs: number;
  /** Every successful round, in order. */
  samplesMs: number[];
}

const GROUP = 'bench-group';
const FINGERPRINT = '42'.repeat(32);

interface ResolveReply {
  ok: boolean;
  error?: string;
  candidates?: { port: number; group: string }[];
  elapsedMs?: number;
}

export async function measureMdnsResolve(options: MdnsResolveOptions = {}): Promise<MdnsResolveFigures> {
  const rounds = options.rounds ?? 30;
  const intervalMs = options.intervalMs ?? 1_100;
  const timeoutMs = options.timeoutMs ?? 3_000;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 500) throw new RangeError('rounds: an integer from 1 to 500');
  if (!(intervalMs >= 1_000)) throw new RangeError('intervalMs: at least 1000 (RFC 6762 §6 one-second rule)');
  if (!(timeoutMs > 0 && timeoutMs <= 60_000)) throw new RangeError('timeoutMs: 1 to 60000');

  const [site, driver] = await Promise.all([createSite({ hosts: ['hA', 'hB'], prefix: 'iolusbench' }), nodeEntry('src/discovery/mdns/driver.ts')]);
  try {
    const advertise = { group: GROUP, role: 'intermediary', level: 1, fingerprint: FINGERPRINT, port: 7443, hostName: 'bench-agent' };
    const agent = site.spawn('hA', process.execPath, [driver, JSON.stringify({ transport: { interfaces: ['eth0'] }, advertise: [advertise] })]);
    const resolver = site.spawn('hB', process.execPath, [driver, JSON.stringify({ transport: { interfaces: ['eth0'] } })]);
    await Promise.all([agent.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 }), resolver.waitForLine(/"event":"ready"/, { timeoutMs: 20_000 })]);
    // Let the start-up announcements (0 s, 1 s, 3 s; RFC 6762 §8.3) pass: the link must be quiet.
    await sleep(3_000 + intervalMs);

    const samples: number[] = [];
    let failures = 0;
    for (let i = 0; i < rounds; i++) {
      await resolver.request({ op: 'flush' });
      const r = await resolver.request<ResolveReply>({ op: 'resolve', group: GROUP, timeoutMs, settleMs: 0, useCache: false }, timeoutMs + 5_000);
      if (r.ok && r.candidates?.length === 1 && r.candidates[0]?.port === 7443 && typeof r.elapsedMs === 'number') samples.push(r.elapsedMs);
      else failures++;
      if (i + 1 < rounds) await sleep(intervalMs);
    }
    return {
      rounds,
      resolved: samples.length,
      failures,
      medianMs: median(samples),
      p99Ms: percentile(samples, 99),
      minMs: samples.length ? Math.min(...samples) : NaN,
      maxMs: samples.length ? Math.max(...samples) : NaN,
      samplesMs: samples,
    };
  } finally {
    await site.teardown();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
