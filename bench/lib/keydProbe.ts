/**
 * Preloaded into a keyd process the benchmarks start (`node --expose-gc --import <this>
 * dist/src/cli/main.js keyd …`): answers `{op: 'mem'}` on the IPC channel with the process's
 * memory after two full garbage collections, so heap growth per member can be read from outside;
 * `{op: 'snapshot', path}` writes a V8 heap snapshot there.
 * Touches nothing of the daemon itself.
 */
declare const gc: (() => void) | undefined;

if (process.send) {
  process.on('message', (m: { op?: string; id?: number; path?: string }) => {
    if (m?.op === 'snapshot' && m.path) {
      // For investigating memory per member by hand (see bench/README.md).
      void import('node:v8').then((v8) => process.send?.({ op: 'snapshot', id: m.id, path: v8.writeHeapSnapshot(m.path) }));
      return;
    }
    if (m?.op !== 'mem') return;
    if (typeof gc === 'function') {
      gc();
      gc();
    }
    const u = process.memoryUsage();
    process.send?.({ op: 'mem', id: m.id, rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers });
  });
  // The channel must not keep the daemon alive (it exits on SIGTERM by itself).
  process.channel?.unref();
}
