/**
 * `npm run bench [-- <name> …]`: runs the named benchmarks (all by default), one after the
 * other; each prints its table and writes bench/results/<name>.json and bench/README.md.
 * A benchmark module at bench/<name>.ts exports `run(): Promise<void>`.
 */
const ALL = ['rekey', 'forward', 'joins', 'propagation', 'keypull', 'rollover', 'srtp', 'relay', 'directory'];

async function main(): Promise<void> {
  const names = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const chosen = names.length ? names : ALL;
  for (const name of chosen) {
    if (!ALL.includes(name)) {
      process.stderr.write(`bench: unknown benchmark '${name}' (known: ${ALL.join(', ')})\n`);
      process.exitCode = 2;
      return;
    }
  }
  for (const name of chosen) {
    let mod: { run(): Promise<void> };
    try {
      mod = (await import(`./${name}.js`)) as typeof mod;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        process.stderr.write(`bench: '${name}' is not built yet, skipped\n`);
        continue;
      }
      throw err;
    }
    process.stdout.write(`\n== bench ${name} ==\n`);
    await mod.run();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
