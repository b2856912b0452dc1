/**
 * A running key service for the media integration tests: PKI, a controller (and
 * intermediaries) as `iolus keyd` processes, and local agents (`iolus agent`) as processes,
 * all on 127.0.0.1 (samples/vic-like/deployment.ts does the work). The processes run from a
 * private tsc build of the CLI and of the vic-like sample, kept in node_modules/.cache under a
 * hash of src/ and samples/, so a concurrent `tsc -p .` by someone else cannot race with it.
 *
 *   const ks = await startKeyService({ periodMs: 2000, intermediaries: 1 });
 *   const rx = await ks.agent('rx', 'gsi-1');
 *   …
 *   await stopKeyServices();   // in afterAll: every process of every service
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { LocalKeyService, type KeyServiceOptions } from '../../samples/vic-like/deployment.js';

const ROOT = resolvePath(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Entry points the processes run (main.ts loads its commands by dynamic import: list them). */
const ENTRIES = [
  'src/cli/main.ts',
  'src/cli/commands/keyd.ts',
  'src/cli/commands/agent.ts',
  'src/cli/commands/getkey.ts',
  'src/cli/commands/relay.ts',
  'src/cli/commands/pipeline.ts',
  'samples/vic-like/run.ts',
  'samples/vic-like/participant.ts',
];

export interface MediaBuild {
  /** dist-like root of the build: `<root>/src/cli/main.js`, `<root>/samples/vic-like/run.js`. */
  readonly root: string;
  readonly cli: string;
  readonly vicRun: string;
}

let building: Promise<MediaBuild> | undefined;

const result = (root: string): MediaBuild => ({ root, cli: join(root, 'src', 'cli', 'main.js'), vicRun: join(root, 'samples', 'vic-like', 'run.js') });

function sourceHash(): string {
  const h = createHash('sha256').update(readFileSync(join(ROOT, 'tsconfig.json'))).update(ENTRIES.join());
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, d.name);
      if (d.isDirectory()) walk(path);
      else if (d.name.endsWith('.ts')) h.update(relative(ROOT, path)).update(readFileSync(path));
    }
  };
  for (const dir of ['src', 'samples']) walk(join(ROOT, dir));
  return h.digest('hex').slice(0, 16);
}

async function compile(): Promise<MediaBuild> {
  const cache = join(ROOT, 'node_modules', '.cache', 'iolus-media');
  const final = join(cache, sourceHash());
  if (existsSync(join(final, 'samples', 'vic-like', 'run.js'))) return result(final);
  mkdirSync(cache, { recursive: true });
  const work = mkdtempSync(join(cache, 'tmp-'));
  try {
    const typeDecls = join(ROOT, 'src', 'types');
    const files = [
      ...ENTRIES.map((e) => join(ROOT, e)),
      ...(existsSync(typeDecls) ? readdirSync(typeDecls).filter((f) => f.endsWith('.d.ts')).map((f) => join(typeDecls, f)) : []),
    ];
    writeFileSync(join(work, 'tsconfig.json'), JSON.stringify({
      extends: join(ROOT, 'tsconfig.json'),
      compilerOptions: { outDir: work, rootDir: ROOT, sourceMap: false, noEmitOnError: true, typeRoots: [join(ROOT, 'node_modules', '@types')], incremental: false },
      files,
      include: [],
    }));
    const r = await execa(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(work, 'tsconfig.json')], { reject: false, timeout: 300_000 });
    if (r.exitCode !== 0) throw new Error(`keyService: compiling the CLI and the sample failed:\n${r.stdout}\n${r.stderr}`);
    writeFileSync(join(work, 'package.json'), JSON.stringify({ type: 'module' }));
    try {
      renameSync(work, final);
    } catch {
      rmSync(work, { recursive: true, force: true }); // a concurrent build of the same tree won
    }
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    throw err;
  }
  // Keep the three newest builds.
  const builds = readdirSync(cache, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('tmp-'))
    .map((d) => ({ path: join(cache, d.name), at: statSync(join(cache, d.name)).mtimeMs }))
    .sort((a, b) => b.at - a.at);
  for (const b of builds.slice(3)) if (b.path !== final) rmSync(b.path, { recursive: true, force: true });
  return result(final);
}

/** The private build (compiled once per test process). */
export function mediaBuild(): Promise<MediaBuild> {
  // The test command has just built everything into dist/ and nothing else is building: use it.
  if (process.env.IOLUS_USE_DIST === '1') building ??= Promise.resolve(result(join(ROOT, 'dist')));
  building ??= compile();
  return building;
}

const services: { ks: LocalKeyService; dir: string }[] = [];

export type StartOptions = Omit<KeyServiceOptions, 'dir' | 'cli'> & { readonly dir?: string };

/** Starts a key service in a fresh temp directory (removed by stopKeyServices). */
export async function startKeyService(opts: StartOptions = {}): Promise<LocalKeyService> {
  const build = await mediaBuild();
  const dir = opts.dir ?? mkdtempSync(join(os.tmpdir(), 'iolus-ks-'));
  const ks = await LocalKeyService.start({ ...opts, dir, cli: build.cli, ...(process.env.KS_TEST_LOG ? { onLine: (p, s, l) => process.stderr.write(`[${p} ${s}] ${l}\n`) } : {}) });
  services.push({ ks, dir });
  return ks;
}

/** Stops every service started here and removes their directories. */
export async function stopKeyServices(): Promise<void> {
  for (const { ks, dir } of services.splice(0).reverse()) {
    await ks.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Processes of every service still running (a test asserts none at the end). */
export function liveServiceProcesses(): number {
  return services.reduce((n, s) => n + s.ks.live().length, 0);
}

/** Polls `check` until it returns something other than undefined/false, at most `timeoutMs`. */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
