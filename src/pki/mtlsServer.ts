/**
 * A fastify instance over HTTPS with mutual TLS 1.3 (tlsOptions.ts) on which the control plane
 * and the directory service are built. A client without a certificate from the group CA fails
 * the handshake; as a second line, an `onRequest` hook (the first hook, before any body is
 * read) answers 401 for a socket that is not authorized and 403 for a certificate without a
 * usable identity or of another group, so no handler ever runs for an unauthenticated client.
 * Handlers read `request.identity`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import { createHash } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { TlsFiles } from './files.js';
import { identityFromCertificate, identityFromPeerCertificate, type Identity } from './identity.js';
import { serverTlsOptions, type TlsMaterial } from './tlsOptions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's identity from its certificate; set on every request of a createMtlsServer instance. */
    identity: Identity;
  }
}

export type MtlsServer = FastifyInstance<https.Server, IncomingMessage, ServerResponse, FastifyBaseLogger>;

export interface MtlsServerOptions {
  /** The agent's certificate and key, and the group CA. */
  tls: TlsMaterial;
  /** Names of the material's sources for error messages (e.g. the file paths). */
  labels?: TlsFiles;
  /**
   * Clients must belong to this group. Default: the group of the server's own certificate;
   * `false` accepts any group the CA signs.
   */
  group?: string | false;
  /** Further fastify options (logger, bodyLimit, …); `https` is ours. */
  fastify?: Omit<FastifyServerOptions<https.Server, FastifyBaseLogger>, 'https' | 'http2'>;
  /** Clock for the certificate expiry check on long-lived connections (ms since epoch). */
  now?: () => number;
}

/** Certificates whose identity a server remembers (most recently seen). */
const IDENTITY_CACHE_SIZE = 10_000;

export function createMtlsServer(options: MtlsServerOptions): MtlsServer {
  const https = serverTlsOptions(options.tls, options.labels); // validates the material
  const own = identityFromCertificate(options.tls.cert);
  const group = options.group === undefined ? own.group : options.group;
  const now = options.now ?? Date.now;
  const app = Fastify({ ...options.fastify, https }) as unknown as MtlsServer;

  // One certificate per connection: extract its identity once, not once per request. And one
  // identity per certificate: a member that reconnects (a new connection per join, or a resumed
  // session) is found by the SHA-256 of its certificate's DER (its fingerprint, ~10 µs) instead
  // of parsed again by getPeerCertificate() (~50 µs). The identity is a function of those bytes
  // alone; the chain was checked by TLS for this connection (`socket.authorized`, below).
  const identities = new WeakMap<TLSSocket, Identity | Error>();
  const byFingerprint = new Map<string, Identity | Error>();
  const identityOf = (socket: TLSSocket): Identity | Error => {
    let found = identities.get(socket);
    if (!found) {
      const der = socket.getPeerX509Certificate()?.raw;
      const fingerprint = der ? createHash('sha256').update(der).digest('hex') : undefined;
      found = fingerprint === undefined ? undefined : byFingerprint.get(fingerprint);
      if (found) {
        byFingerprint.delete(fingerprint!); // least recently used goes first
      } else {
        try {
          found = identityFromPeerCertificate(socket.getPeerCertificate());
        } catch (err) {
          found = err instanceof Error ? err : new Error(String(err));
        }
      }
      if (fingerprint !== undefined) {
        byFingerprint.set(fingerprint, found);
        if (byFingerprint.size > IDENTITY_CACHE_SIZE) byFingerprint.delete(byFingerprint.keys().next().value as string);
      }
      identities.set(socket, found);
    }
    return found;
  };

  // Refused handshakes (no certificate, another CA, expired, TLS < 1.3) never reach fastify's
  // request path; log them, and let callers count them on `app.server`'s 'tlsClientError'.
  app.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    app.log.debug({ code: err.code, remote: socket.remoteAddress }, 'TLS handshake refused');
  });

  app.decorateRequest('identity', null as unknown as Identity);
  app.addHook('onRequest', async (request, reply) => {
    const socket = request.raw.socket;
    if (!(socket instanceof TLSSocket) || !socket.authorized) {
      const reason = socket instanceof TLSSocket ? String(socket.authorizationError ?? 'no client certificate') : 'not a TLS connection';
      return reply.code(401).header('connection', 'close').send({ error: 'unauthenticated', reason });
    }
    const identity = identityOf(socket);
    if (identity instanceof Error) {
      return reply.code(403).send({ error: 'forbidden', reason: identity.message });
    }
    if (group !== false && identity.group !== group) {
      return reply.code(403).send({ error: 'forbidden', reason: `certificate is for group ${identity.group}, this server serves ${group}` });
    }
    if (identity.notAfter.getTime() < now()) {
      return reply
        .code(401)
        .header('connection', 'close')
        .send({ error: 'unauthenticated', reason: `certificate expired at ${identity.notAfter.toISOString()}` });
    }
    request.identity = identity;
  });
  return app;
}
