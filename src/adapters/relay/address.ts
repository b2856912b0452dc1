/**
 * UDP endpoints as written on the command line: `127.0.0.1:5004`, `[::1]:5004`,
 * `localhost:5004`. Parsed by a zod schema that says what is wrong with a bad one.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The endpoint, or a message saying why `text` is not one. Port 0 only with `allowAnyPort`. */
export function parseHostPort(text: string, allowAnyPort = false): HostPort | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) return `expected host:port or [ipv6]:port, got ${JSON.stringify(text)}`;
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && isIP(host) !== 6) return `${JSON.stringify(host)} is not an IPv6 address`;
  if (m[2] !== undefined && isIP(host) === 0 && !HOSTNAME.test(host)) return `${JSON.stringify(host)} is neither an IP address nor a host name`;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && !allowAnyPort)) return `port ${port} is not in 1..65535`;
  return { host, port };
}

/** zod schema: a `host:port` string to a HostPort. */
export function hostPortSchema(opts: { allowAnyPort?: boolean } = {}) {
  return z.string().transform((s, ctx) => {
    const r = parseHostPort(s, opts.allowAnyPort ?? false);
    if (typeof r === 'string') {
      ctx.addIssue({ code: 'custom', message: r });
      return z.NEVER;
    }
    return r;
  });
}

/** True for addresses that stay on this host: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function formatHostPort(a: HostPort): string {
  return isIP(a.host) === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** The socket type to reach or bind `host` (names resolve to IPv4 unless they are IPv6 literals). */
export function udpType(host: string): 'udp4' | 'udp6' {
  return isIP(host) === 6 ? 'udp6' : 'udp4';
}
