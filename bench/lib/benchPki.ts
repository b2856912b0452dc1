/**
 * The keyd benchmarks' PKI: one group CA, the agents' certificates and up to 10,000 member
 * certificates (ECDSA P-256, src/pki), each member a distinct principal. Issuing runs at
 * ~200 certificates/s here, so the set is issued once (in two worker threads) before any
 * timing starts and cached as JSON in the OS temp directory; a cache that is missing, for
 * another group or too close to expiry is issued again.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { caFromPem, createCa, issueCertificate, type Role } from '../../src/pki/index.js';

export const BENCH_GROUP = 'bench-keyd';
/** Agents of the propagation tree (and the joins benchmark's controller). */
export const AGENT_NAMES = { controller: 'ctl', level1: ['i1a', 'i1b'], level2: ['i2a', 'i2b', 'i2c', 'i2d'] } as const;
const CACHE_VERSION = 1;
const DAYS = 60;

export interface Pair {
  cert: string;
  key: string;
}

export interface BenchPki {
  group: string;
  ca: { cert: string; key: string };
  /** Agents by name (controller and intermediaries) and `admin`. */
  principals: Record<string, Pair>;
  /** Member certificates, principal `memberName(i)`. */
  members: Pair[];
}

interface CacheFile extends BenchPki {
  version: number;
  notAfter: string;
}

export function memberName(i: number): string {
  return `m${String(i).padStart(5, '0')}`;
}

export const cacheDir = join(os.tmpdir(), 'iolus-bench-cache');
const cachePath = join(cacheDir, `pki-${BENCH_GROUP}-v${CACHE_VERSION}.json`);

/** The cached PKI with at least `members` member certificates; issues what is missing. */
export async function benchPki(members: number, log: (line: string) => void = () => {}): Promise<BenchPki> {
  let cached: CacheFile | undefined;
  if (existsSync(cachePath)) {
    try {
      const c = JSON.parse(readFileSync(cachePath, 'utf8')) as CacheFile;
      if (c.version === CACHE_VERSION && c.group === BENCH_GROUP && Date.parse(c.notAfter) > Date.now() + 2 * 86_400_000) cached = c;
    } catch {
      cached = undefined;
    }
  }
  if (cached && cached.members.length >= members) return cached;

  const t0 = Date.now();
  let file: CacheFile;
  if (!cached) {
    const ca = await createCa({ group: BENCH_GROUP, validityDays: DAYS });
    const principals: Record<string, Pair> = {};
    const agents: [string, Role][] = [
      [AGENT_NAMES.controller, 'controller'],
      ...[...AGENT_NAMES.level1, ...AGENT_NAMES.level2].map((n): [string, Role] => [n, 'intermediary']),
      ['admin', 'admin'],
    ];
    for (const [name, role] of agents) {
      const c = await issueCertificate(ca, { name, role, validityDays: DAYS });
      principals[name] = { cert: c.certPem, key: c.keyPem };
    }
    file = { version: CACHE_VERSION, group: BENCH_GROUP, notAfter: new Date(Date.now() + (DAYS - 1) * 86_400_000).toISOString(), ca: { cert: ca.certPem, key: ca.keyPem }, principals, members: [] };
  } else {
    file = cached;
  }
  const from = file.members.length;
  log(`issuing member certificates ${from}..${members - 1} (cached in ${cachePath})`);
  const workers = 2;
  const chunks = await Promise.all(Array.from({ length: workers }, (_, w) => issueInWorker(file.ca, from, members, w, workers)));
  for (let i = from; i < members; i++) {
    const pair = chunks[(i - from) % workers]![Math.floor((i - from) / workers)];
    if (!pair) throw new Error(`member certificate ${i} missing`);
    file.members.push(pair);
  }
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  writeFileSync(`${cachePath}.tmp`, JSON.stringify(file), { mode: 0o600 });
  renameSync(`${cachePath}.tmp`, cachePath);
  log(`issued ${members - from} certificates in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return file;
}

interface WorkerJob {
  ca: { cert: string; key: string };
  from: number;
  to: number;
  offset: number;
  stride: number;
}

/** Issues members from+offset, from+offset+stride, … below `to` in a worker thread. */
function issueInWorker(ca: { cert: string; key: string }, from: number, to: number, offset: number, stride: number): Promise<Pair[]> {
  return new Promise((resolve, reject) => {
    const job: WorkerJob = { ca, from, to, offset, stride };
    const w = new Worker(new URL(import.meta.url), { workerData: job });
    w.once('message', (pairs: Pair[]) => resolve(pairs));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`certificate worker exited with ${code}`));
    });
  });
}

async function workerMain(job: WorkerJob): Promise<void> {
  const ca = await caFromPem(job.ca.cert, job.ca.key);
  const out: Pair[] = [];
  const indices: number[] = [];
  for (let i = job.from + job.offset; i < job.to; i += job.stride) indices.push(i);
  // A few in flight: key generation runs on libuv's pool, signing partly in JS.
  let next = 0;
  const results = new Array<Pair>(indices.length);
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < indices.length) {
      const k = next++;
      const c = await issueCertificate(ca, { name: memberName(indices[k]!), role: 'member', validityDays: DAYS });
      results[k] = { cert: c.certPem, key: c.keyPem };
    }
  }));
  out.push(...results);
  parentPort!.postMessage(out);
}

if (!isMainThread && (workerData as WorkerJob | undefined)?.stride !== undefined) {
  await workerMain(workerData as WorkerJob);
}
