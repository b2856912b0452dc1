/**
 * Preloaded into a keyd process the benchmarks start (`node --expose-gc --import <this>
 * dist/src/cli/main.js keyd …`): answers `{op: 'mem'}` on the IPC channel with the process's
 * memory after two full garbage collections, so heap growth per member can be read from outside;
 * `{op: 'snapshot', path}` writes a V8 heap snapshot there.
 * Touches nothing of the daemon itself.
 */
import v8 from 'node:v8';

declare const gc: (() => void) | undefined;

if (process.send) {
  process.on('message', (m: { op?: string; id?: number; path?: string }) => {
    if (m?.op === 'snapshot' && m.path) {
      // For investigating memory per member by hand (see bench/README.md).
      process.send?.({ op: 'snapshot', id: m.id, path: v8.writeHeapSnapshot(m.path) });
      return;
    }
    if (m?.op !== 'mem') return;
    if (typeof gc === 'function') {
      gc();
      gc();
    }
    const u = process.memoryUsage();
    // Compiled code grows as V8 optimizes whatever ran; it is not state, so it is reported apart.
    const code = v8.getHeapSpaceStatistics().filter((sp) => sp.space_name.startsWith('code')).reduce((n, sp) => n + sp.space_used_size, 0);
    process.send?.({ op: 'mem', id: m.id, rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, code });
  });
  // The channel must not keep the daemon alive (it exits on SIGTERM by itself).
  process.channel?.unref();
}
