/**
 * Load generation over mutual TLS for the joins benchmark: each member is a distinct principal
 * with its own certificate, its own SecureContext (built once, before timing: a real member
 * builds it once at start) and its own TLS connection. A connection is opened either with a
 * full handshake or by resuming a TLS 1.3 session ticket the member received earlier, or an
 * open keep-alive connection is reused.
 */
import https from 'node:https';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { checkAgentCertificate } from '../../src/pki/tlsOptions.js';
import type { Pair } from './benchPki.js';

export interface LoadMember {
  name: string;
  context: SecureContext;
  /** Keep-alive agent of the member's current connection (one socket). */
  agent: https.Agent | undefined;
  /** The newest TLS session ticket the member received. */
  session: Buffer | undefined;
}

export type ConnectionMode = 'full' | 'resume' | 'keep-alive';

export interface Outcome {
  ms: number;
  status: number;
  /** The connection was a resumed TLS session. */
  reused: boolean;
  body: string;
  error?: string;
}

export function loadMembers(ca: string, pairs: Pair[], names: string[]): LoadMember[] {
  return pairs.map((p, i) => ({
    name: names[i]!,
    context: tls.createSecureContext({ ca, cert: p.cert, key: p.key, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }),
    agent: undefined,
    session: undefined,
  }));
}

/** Closes the member's connection (the session ticket is kept). */
export function hangUp(m: LoadMember): void {
  m.agent?.destroy();
  m.agent = undefined;
}

const watched = new WeakSet<TLSSocket>();

/**
 * One request. `full` and `resume` open a new connection (closing the member's previous one);
 * `keep-alive` reuses it. Resolves with the outcome; never rejects.
 */
export function request(m: LoadMember, url: URL, group: string, mode: ConnectionMode, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 60_000): Promise<Outcome> {
  if (mode !== 'keep-alive' || !m.agent) {
    hangUp(m);
    m.agent = new https.Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0 });
  }
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const t0 = performance.now();
  return new Promise<Outcome>((resolve) => {
    let reused = false;
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host: url.hostname,
      port: Number(url.port),
      method,
      path,
      agent: m.agent,
      secureContext: m.context,
      rejectUnauthorized: true,
      checkServerIdentity: (host, cert) => checkAgentCertificate(host, cert, group),
      ...(mode === 'resume' && m.session ? { session: m.session } : {}),
      timeout: timeoutMs,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    };
    const req = https.request(options, (res) => {
      reused = (res.socket as TLSSocket | null)?.isSessionReused() ?? false;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ ms: performance.now() - t0, status: res.statusCode ?? 0, reused, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', (err) => resolve({ ms: performance.now() - t0, status: 0, reused, body: '', error: err.message }));
    });
    req.on('socket', (s: TLSSocket) => {
      if (watched.has(s)) return;
      watched.add(s);
      s.on('session', (session: Buffer) => {
        m.session = session;
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ms: performance.now() - t0, status: 0, reused, body: '', error: err.message }));
    req.end(payload);
  });
}
