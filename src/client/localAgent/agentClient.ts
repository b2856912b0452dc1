/**
 * Talking to a local agent (`iolus agent`): what getkey, watch, the relay and the pipeline
 * launchers use. A KeySource over it keeps the usable keys of a label cached and refetches on
 * every rollover event, so adapters read keys synchronously.
 */
import http from 'node:http';
import { existsSync } from 'node:fs';
import { IolusError } from '../../errors.js';
import { fromBase64, fromHex } from '../../crypto/bytes.js';
import type { DerivedKey, KeySource } from '../keyMaterial.js';
import { defaultSocketPath } from './paths.js';
import type { KeyJson } from './keyFormat.js';

export class LocalAgentError extends IolusError {
  constructor(code: string, message: string, readonly status = 0) {
    super(code, message);
  }
}

export interface LocalAgentAddress {
  socketPath?: string;
  tcp?: { host: string; port: number; token: string };
}

export class LocalAgentClient {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  readonly where: string;

  constructor(readonly group: string, private readonly addr: LocalAgentAddress = {}) {
    this.where = addr.tcp ? `http://${addr.tcp.host}:${addr.tcp.port}` : (addr.socketPath ?? defaultSocketPath(group));
  }

  private options(path: string): http.RequestOptions {
    const base: http.RequestOptions = { path, method: 'GET', agent: this.agent };
    if (this.addr.tcp) return { ...base, host: this.addr.tcp.host, port: this.addr.tcp.port, headers: { authorization: `Bearer ${this.addr.tcp.token}` } };
    return { ...base, socketPath: this.where };
  }

  private noAgent(err: NodeJS.ErrnoException): LocalAgentError {
    const hint = `start one with: iolus agent --group ${this.group} --agent https://<keyd>:<port> --cert … --key … --ca …`;
    if (!this.addr.tcp && !existsSync(this.where)) return new LocalAgentError('agent.absent', `no local agent for group ${this.group} (no socket at ${this.where}); ${hint}`);
    return new LocalAgentError('agent.unreachable', `local agent for group ${this.group} at ${this.where} does not answer (${err.code ?? err.message}); ${hint}`);
  }

  /** GET `path`; the body as text. Throws LocalAgentError with the agent's reason. */
  get(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = http.request(this.options(path), (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode === 200) return resolve(text);
          let reason = text;
          try {
            reason = (JSON.parse(text) as { reason?: string }).reason ?? text;
          } catch {
            /* text */
          }
          reject(new LocalAgentError(res.statusCode === 503 ? 'agent.not-joined' : 'agent.refused', reason, res.statusCode ?? 0));
        });
      });
      req.on('error', (err) => reject(this.noAgent(err)));
      req.end();
    });
  }

  async json<T>(path: string): Promise<T> {
    return JSON.parse(await this.get(path)) as T;
  }

  /** Server-sent events from the agent, until `signal` aborts or the agent goes away. */
  async *events(signal?: AbortSignal): AsyncGenerator<{ event: string; data: unknown }> {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ ...this.options('/v1/events'), ...(signal ? { signal } : {}) }, resolve);
      req.on('error', (err) => reject(this.noAgent(err)));
      req.end();
    });
    res.setEncoding('utf8');
    let buf = '';
    let event = 'message';
    for await (const chunk of res as AsyncIterable<string>) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) {
          try {
            yield { event, data: JSON.parse(line.slice(5)) };
          } catch {
            /* not ours */
          }
          event = 'message';
        }
      }
      if (buf.length > 1 << 20) buf = '';
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

function toDerived(k: KeyJson): DerivedKey {
  return {
    label: k.label, epoch: k.epoch, notBefore: Date.parse(k.notBefore), notAfter: Date.parse(k.notAfter), graceMs: k.graceMs,
    key: fromBase64(k.key), mki: fromHex(k.mki),
  };
}

/**
 * A KeySource backed by the local agent: fetches the label's keys now and after each event.
 * The first fetch must succeed (a clear error otherwise).
 */
export async function openKeySource(group: string, addr: LocalAgentAddress = {}): Promise<KeySource & { close(): void; prime(label: string): Promise<void> }> {
  const client = new LocalAgentClient(group, addr);
  const cache = new Map<string, DerivedKey[]>();
  const listeners = new Set<() => void>();
  const abort = new AbortController();
  const fetchLabel = async (label: string) => {
    const r = await client.json<{ keys: KeyJson[] }>(`/v1/keys?label=${encodeURIComponent(label)}`);
    cache.set(label, r.keys.map(toDerived));
  };
  const refresh = async () => {
    for (const label of cache.keys()) await fetchLabel(label).catch(() => undefined);
    for (const l of listeners) l();
  };
  await client.json('/v1/status'); // fails clearly when there is no agent
  void (async () => {
    for (;;) {
      try {
        for await (const e of client.events(abort.signal)) if (e.event === 'key' || e.event === 'activate' || e.event === 'state') await refresh();
      } catch {
        /* the agent went away: retry */
      }
      if (abort.signal.aborted) return;
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  const source = {
    keys(label: string): DerivedKey[] {
      if (!cache.has(label)) {
        cache.set(label, []);
        void fetchLabel(label).then(() => {
          for (const l of listeners) l();
        }, () => undefined);
      }
      return cache.get(label)!;
    },
    onChange(listener: () => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close(): void {
      abort.abort();
      client.close();
    },
    /** Fetches a label before first use (so keys() is filled at once). */
    prime: fetchLabel,
  };
  return source;
}
