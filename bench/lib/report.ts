/**
 * Benchmark reports: each benchmark writes bench/results/<name>.json with its figures and
 * refreshes its own section of the table in bench/README.md. Figures are always paired with
 * a baseline measured in the same run, so a ratio survives a noisy machine.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

export interface BenchRow {
  /** What was measured, e.g. `leave, N=10^6, tree`. */
  case: string;
  /** Figure name → value (numbers are printed with 3 significant digits). */
  figures: Record<string, number | string>;
}

export interface BenchReport {
  name: string;
  /** One line: what the benchmark measures and against which baseline. */
  description: string;
  rows: BenchRow[];
  /** Targets from the issue, each with whether it was met. */
  targets: { target: string; met: boolean; detail: string }[];
  notes?: string[];
}

const here = dirname(fileURLToPath(import.meta.url));
/** bench/ in the source tree, whether running from src (tsx/vitest) or dist/bench. */
export const benchDir = here.includes(`${join('dist', 'bench')}`) ? join(here, '..', '..', '..', 'bench') : join(here, '..');

export function fmt(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(3)).toString();
}

function markdown(r: BenchReport): string {
  const cols = [...new Set(r.rows.flatMap((row) => Object.keys(row.figures)))];
  const lines = [
    `### ${r.name}`,
    '',
    r.description,
    '',
    `| case | ${cols.join(' | ')} |`,
    `|---|${cols.map(() => '---:').join('|')}|`,
    ...r.rows.map((row) => `| ${row.case} | ${cols.map((c) => (row.figures[c] === undefined ? '' : fmt(row.figures[c]!))).join(' | ')} |`),
    '',
    ...r.targets.map((t) => `- ${t.met ? 'met' : '**not met**'}: ${t.target} (${t.detail})`),
    ...(r.notes ?? []).map((n) => `- ${n}`),
    '',
  ];
  return lines.join('\n');
}

export function writeReport(r: BenchReport): void {
  const resultsDir = join(benchDir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30) };
  writeFileSync(join(resultsDir, `${r.name}.json`), JSON.stringify({ ...r, machine, at: new Date().toISOString() }, null, 2) + '\n');

  const readme = join(benchDir, 'README.md');
  const begin = `<!-- bench:${r.name}:begin -->`;
  const end = `<!-- bench:${r.name}:end -->`;
  let text = existsSync(readme) ? readFileSync(readme, 'utf8') : '# Benchmarks\n\nRun all: `npm run bench`; one: `npm run bench -- <name>`.\n\n';
  const section = `${begin}\n${markdown(r)}${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(readme, text);

  process.stdout.write(`\n${markdown(r)}\n`);
}

/** Percentile of an unsorted sample (nearest rank). */
export function percentile(sample: number[], p: number): number {
  if (sample.length === 0) return NaN;
  const s = [...sample].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[idx]!;
}

export function median(sample: number[]): number {
  return percentile(sample, 50);
}
