/**
 * DirectoryClient: what agents (register, refresh, unregister) and members (lookup, list) say
 * to the directory, over one keep-alive HTTPS connection with our certificate. The directory's
 * own certificate must come from `ca` (its CA, or the group CA when the directory holds a
 * certificate of the group's) and name the host dialled. Every answer is parsed by api.ts.
 */
import https from 'node:https';
import type { z } from 'zod';
import { IolusError, ValidationError } from '../../errors.js';
import { ErrorBody, ListResponse, LookupResponse, RegisterResponse, StatsResponse, type RegisterRequest } from './api.js';

export class DirectoryError extends IolusError {
  constructor(readonly status: number, code: string, message: string) {
    super(code, message);
  }
}

export interface DirectoryClientOptions {
  /** https://host:port of the directory. */
  url: string;
  /** PEM: the CA the directory's certificate comes from. */
  ca: string;
  /** PEM: our certificate and key (absent: anonymous, for a public directory). */
  cert?: string;
  key?: string;
  timeoutMs?: number;
}

const MAX_BODY = 4 << 20;

export class DirectoryClient {
  readonly url: URL;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(opts: DirectoryClientOptions) {
    try {
      this.url = new URL(opts.url);
    } catch {
      throw new ValidationError('directory.url', `directory url: ${JSON.stringify(opts.url)} is not a URL`);
    }
    if (this.url.protocol !== 'https:') throw new ValidationError('directory.url', `directory url: ${opts.url} is not https://`);
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 2,
      ca: opts.ca,
      ...(opts.cert && opts.key ? { cert: opts.cert, key: opts.key } : {}),
      minVersion: 'TLSv1.3',
      rejectUnauthorized: true,
    });
    this.timeoutMs = opts.timeoutMs ?? 5_000;
  }

  private agentsPath(group: string): string {
    return `/v1/groups/${encodeURIComponent(group)}/agents`;
  }

  register(group: string, body: RegisterRequest): Promise<RegisterResponse> {
    return this.request('POST', this.agentsPath(group), body, RegisterResponse);
  }

  async unregister(group: string): Promise<boolean> {
    const r = await this.request('DELETE', this.agentsPath(group), undefined, undefined);
    return (r as { removed?: boolean } | undefined)?.removed === true;
  }

  lookup(group: string, options: { site?: string; limit?: number } = {}): Promise<LookupResponse> {
    const q = new URLSearchParams();
    if (options.site) q.set('site', options.site);
    if (options.limit) q.set('limit', String(options.limit));
    const qs = q.toString();
    return this.request('GET', `${this.agentsPath(group)}${qs ? `?${qs}` : ''}`, undefined, LookupResponse);
  }

  list(): Promise<ListResponse> {
    return this.request('GET', '/v1/groups', undefined, ListResponse);
  }

  stats(): Promise<StatsResponse> {
    return this.request('GET', '/v1/stats', undefined, StatsResponse);
  }

  close(): void {
    this.agent.destroy();
  }

  private request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body: unknown, schema: z.ZodType<T> | undefined): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = https.request(new URL(path, this.url), {
        method, agent: this.agent, timeout: this.timeoutMs,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) res.destroy(new DirectoryError(0, 'directory.response', `answer larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('error', (err) => reject(err instanceof IolusError ? err : new DirectoryError(0, 'directory.network', err.message)));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            return reject(new DirectoryError(status, 'directory.response', `${method} ${path}: the directory answered ${status} with invalid JSON`));
          }
          if (status < 200 || status >= 300) {
            const e = ErrorBody.safeParse(json);
            return reject(new DirectoryError(status, e.success ? e.data.error : `http.${status}`, `directory refused (${status}): ${e.success ? e.data.reason : text.slice(0, 200)}`));
          }
          if (!schema) return resolve(json as T);
          const parsed = schema.safeParse(json);
          if (!parsed.success) return reject(new DirectoryError(status, 'directory.response', `${method} ${path}: unexpected answer: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`));
          resolve(parsed.data);
        });
      });
      req.on('timeout', () => req.destroy(new DirectoryError(0, 'directory.timeout', `${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof IolusError ? err : new DirectoryError(0, 'directory.network', `${method} ${this.url.origin}${path}: ${err.message}`)));
      req.end(payload);
    });
  }
}
