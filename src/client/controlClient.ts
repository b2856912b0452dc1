/**
 * The control-plane client (DESIGN.md "Planes"): JSON over HTTPS with mutual TLS 1.3, one
 * keep-alive connection per agent. Used by members, by the local agent, and by intermediaries
 * to talk to their parent. Every response is parsed with the same zod schema the agent uses.
 */
import https from 'node:https';
import type { z } from 'zod';
import { IolusError, ValidationError } from '../errors.js';
import { mtlsAgent, type TlsMaterial } from '../pki/tlsOptions.js';
import {
  CatchUpResponse, JoinGrant, RefreshResponse, type JoinRequest,
} from '../wire/control.js';

/** An HTTP error from the agent, with its status and the agent's reason. */
export class ControlError extends IolusError {
  constructor(readonly status: number, code: string, message: string) {
    super(code, message);
  }
}

export interface ControlClientOptions {
  /** e.g. https://10.77.0.1:7443 */
  url: string;
  group: string;
  tls: TlsMaterial;
  /** Per-request timeout (ms). */
  timeoutMs?: number;
  maxSockets?: number;
}

export class ControlClient {
  readonly url: URL;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(private readonly opts: ControlClientOptions) {
    this.url = new URL(opts.url);
    if (this.url.protocol !== 'https:') throw new ValidationError('client.url', `agent url: ${opts.url} is not https://`);
    this.agent = mtlsAgent(opts.tls, { group: opts.group, maxSockets: opts.maxSockets ?? 4 });
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  private path(op: string): string {
    return `/v1/groups/${encodeURIComponent(this.opts.group)}/${op}`;
  }

  join(body: Partial<JoinRequest> = {}): Promise<JoinGrant> {
    return this.request('POST', this.path('join'), { group: this.opts.group, ...body }, JoinGrant);
  }

  refresh(memberId: number): Promise<z.infer<typeof RefreshResponse>> {
    return this.request('POST', this.path('refresh'), { memberId }, RefreshResponse);
  }

  async leave(memberId: number): Promise<void> {
    await this.request('POST', this.path('leave'), { memberId }, undefined);
  }

  state(memberId: number): Promise<CatchUpResponse> {
    return this.request('GET', `${this.path('state')}?memberId=${memberId}`, undefined, CatchUpResponse);
  }

  /** The body of a GET as it arrives (for the SSE transport's own parser); throws on an HTTP error. */
  async rawStream(path: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = https.request(new URL(path, this.url), { method: 'GET', agent: this.agent, headers: { accept: 'text/event-stream' }, signal }, resolve);
      req.on('error', reject);
      req.end();
    });
    if (res.statusCode !== 200) throw errorFrom(res.statusCode ?? 0, await readBody(res, 64 * 1024));
    return res;
  }

  /** POSTs raw bytes (one datagram of an SSE member). */
  postBytes(path: string, body: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const req = https.request(new URL(path, this.url), {
        method: 'POST', agent: this.agent, timeout: this.timeoutMs,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
      }, (res) => {
        readBody(res, 64 * 1024).then((text) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) reject(errorFrom(status, text));
          else resolve();
        }, reject);
      });
      req.on('timeout', () => req.destroy(new ControlError(0, 'client.timeout', `POST ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof IolusError ? err : new ControlError(0, 'client.network', `POST ${path}: ${err.message}`)));
      req.end(body);
    });
  }

  /** Any JSON endpoint (admin and tools). */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, schema?: z.ZodType<T>): Promise<T> {
    return this.request(method, path, body, schema) as Promise<T>;
  }

  /**
   * The agent's event stream: yields each `data:` payload of the server-sent events at `path`
   * until the stream ends or `signal` aborts. Lines are bounded (a peer cannot make us buffer
   * without limit).
   */
  async *events(path: string, signal?: AbortSignal): AsyncGenerator<{ event: string; data: string }> {
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
      const req = https.request(new URL(path, this.url), { method: 'GET', agent: this.agent, headers: { accept: 'text/event-stream' }, signal }, resolve);
      req.on('error', reject);
      req.end();
    });
    if (res.statusCode !== 200) {
      const text = await readBody(res, 64 * 1024);
      throw errorFrom(res.statusCode ?? 0, text);
    }
    res.setEncoding('utf8');
    let buf = '';
    let event = 'message';
    let data: string[] = [];
    for await (const chunk of res as AsyncIterable<string>) {
      buf += chunk;
      if (buf.length > 1 << 20 && !buf.includes('\n')) throw new ControlError(0, 'client.sse-line', 'event stream line over 1 MiB');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        if (line === '') {
          if (data.length) yield { event, data: data.join('\n') };
          event = 'message';
          data = [];
        } else if (line.startsWith(':')) {
          continue;
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
        } else if (line.startsWith('event:')) {
          event = line.slice(6).trim();
        }
      }
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private request<T>(method: 'GET' | 'POST', path: string, body: unknown, schema: z.ZodType<T> | undefined): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(new URL(path, this.url), {
        method, agent: this.agent, timeout: this.timeoutMs,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      }, (res) => {
        readBody(res, 16 * 1024 * 1024).then((text) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(errorFrom(status, text));
          if (!schema && text.length === 0) return resolve(undefined as T);
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            return reject(new ControlError(status, 'client.response', `agent answered ${path} with invalid JSON`));
          }
          if (!schema) return resolve(json as T);
          const parsed = schema.safeParse(json);
          if (!parsed.success) {
            return reject(new ControlError(status, 'client.response', `agent answered ${path} with an invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`));
          }
          resolve(parsed.data);
        }, reject);
      });
      req.on('timeout', () => req.destroy(new ControlError(0, 'client.timeout', `${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof IolusError ? err : new ControlError(0, 'client.network', `${method} ${this.url.origin}${path}: ${err.message}`)));
      req.end(payload);
    });
  }
}

function readBody(res: import('node:http').IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        res.destroy();
        reject(new ControlError(res.statusCode ?? 0, 'client.response', `response larger than ${max} bytes`));
      } else chunks.push(c);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function errorFrom(status: number, text: string): ControlError {
  let reason = text.slice(0, 500);
  let code = `http.${status}`;
  try {
    const j = JSON.parse(text) as { error?: string; reason?: string; message?: string };
    reason = j.reason ?? j.message ?? reason;
    if (j.error) code = j.error;
  } catch {
    /* not JSON */
  }
  return new ControlError(status, code, `agent refused (${status}): ${reason}`);
}
