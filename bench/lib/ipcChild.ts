/**
 * The parent's side of a benchmark helper process: requests over the IPC channel, answered by
 * id ({ id, result } or { id, error }), each with a timeout; every pending request fails when
 * the child exits. `stop` asks it to exit ({ op: 'exit' }) and kills it if it does not.
 */
import type { ChildProcess } from 'node:child_process';

export class IpcChild<Req extends { op: string }> {
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(readonly child: ChildProcess, private readonly name: string) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (${String(code)})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  call<T>(req: Req | { op: 'exit' }, timeoutMs = 240_000): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${req.op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.child.send({ id, req });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call({ op: 'exit' }, 3000).catch(() => undefined);
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(t);
  }
}
