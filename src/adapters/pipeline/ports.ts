/**
 * Local UDP ports for the plain side of a pipeline: picked free by the kernel, and waited for
 * until the tool has bound them (read from /proc/net/udp{,6}: Linux), so nothing is sent
 * before anyone listens.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

async function bindable(port: number, host: string): Promise<dgram.Socket | undefined> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, host, () => resolve());
    });
    return s;
  } catch {
    s.close();
    return undefined;
  }
}

function close(s: dgram.Socket | undefined): Promise<void> {
  return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()));
}

/**
 * A UDP port on `host` free when asked. With `withNext`, port+1 is free too (an ffmpeg SDP
 * receiver binds it for RTCP).
 */
export async function freeUdpPort(host = '127.0.0.1', withNext = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = await bindable(0, host);
    if (!a) throw new Error(`cannot bind a UDP socket on ${host}`);
    const port = a.address().port;
    if (!withNext || port >= 65535) {
      await close(a);
      if (!withNext) return port;
      continue;
    }
    const b = await bindable(port + 1, host);
    await Promise.all([close(a), close(b)]);
    if (b) return port;
  }
  throw new Error(`no pair of free UDP ports on ${host}`);
}

/** True when some socket of this machine (this namespace) is bound to UDP `port`. */
export function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local?.endsWith(hex)) return true;
    }
  }
  return false;
}

/** Resolves true once `port` is bound, false after `timeoutMs` or as soon as `alive()` turns false. */
export async function waitUdpBound(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end && alive()) {
    if (udpPortBound(port)) return true;
    await sleep(20);
  }
  return udpPortBound(port);
}

/** A UDP socket on 127.0.0.1 that reads and drops whatever comes (RTCP a plain gst-launch receiver has no branch for). */
export async function udpSink(): Promise<dgram.Socket> {
  const s = await bindable(0, '127.0.0.1');
  if (!s) throw new Error('cannot bind a UDP socket on 127.0.0.1');
  s.on('message', () => undefined);
  s.on('error', () => undefined);
  return s;
}
