/**
 * The hitless SRTP relay, a bump in the wire (DESIGN.md, Adapters): plain RTP/RTCP in on a
 * local UDP port, SRTP/SRTCP out (mode `encrypt`), or the reverse (mode `decrypt`). Tools
 * that cannot change a key while running (ffmpeg, gst-launch) send and receive plain RTP on
 * 127.0.0.1 and the relay follows every rollover of the group key: its key ring switches
 * to the next key at activation and accepts the previous one through the grace window, so
 * no packet is lost to keying.
 *
 * RTP and RTCP share the listening port (RFC 5761 §4 tells them apart); RTCP goes out to
 * `rtcpTo` when given, else to `to`. One relay is one direction; run two for both.
 * Lifecycle (sockets) lives here, packet logic in the key ring (src/adapters/srtp).
 */
import dgram from 'node:dgram';
import type { KeySource } from '../../client/keyMaterial.js';
import { UsageError } from '../../errors.js';
import { createLogger, type Logger } from '../../util/log.js';
import type { ProtectResult, UnprotectResult } from '../srtp/counters.js';
import { SrtpKeyRing } from '../srtp/keyRing.js';
import type { SrtpProfileName } from '../srtp/profile.js';
import { isRtcp } from '../srtp/rtpPacket.js';
import { formatHostPort, udpType, type HostPort } from './address.js';
import { emptyDrops, type RelayCounters } from './counters.js';

export type RelayMode = 'encrypt' | 'decrypt';

export interface RelayInit {
  /** `encrypt`: plain in, SRTP out. `decrypt`: SRTP in, plain out. */
  readonly mode: RelayMode;
  /** Where to receive (port 0: any free port; see `address` after start). */
  readonly listen: HostPort;
  /** Where RTP goes (and RTCP, unless rtcpTo is given). */
  readonly to: HostPort;
  readonly rtcpTo?: HostPort;
  readonly profile: SrtpProfileName;
  /** Insert (encrypt) or expect (decrypt) a 4-byte MKI naming the epoch. */
  readonly mki: boolean;
  readonly replayWindowSize?: number;
  /** SO_RCVBUF/SO_SNDBUF request (the kernel may cap it). Default 4 MiB. */
  readonly socketBufferBytes?: number;
}

export interface RelayComponents {
  readonly keySource: KeySource;
  readonly clock?: () => number;
  readonly logger?: Logger;
}

interface Counts {
  packetsIn: number;
  rtpIn: number;
  rtcpIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  downstreamErrors: number;
  dropped: RelayCounters['dropped'];
}

export class SrtpRelay {
  readonly ring: SrtpKeyRing;
  readonly init: RelayInit;
  private readonly log: Logger;
  private readonly counts: Counts = { packetsIn: 0, rtpIn: 0, rtcpIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, downstreamErrors: 0, dropped: emptyDrops() };
  private inSocket: dgram.Socket | undefined;
  private rtpOut: dgram.Socket | undefined;
  private rtcpOut: dgram.Socket | undefined;
  private bound: HostPort | undefined;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';

  constructor(init: RelayInit, components: RelayComponents) {
    this.init = init;
    this.log = components.logger ?? createLogger('relay', { mode: init.mode });
    this.ring = new SrtpKeyRing(components.keySource, {
      profile: init.profile,
      mki: init.mki,
      ...(init.replayWindowSize !== undefined ? { replayWindowSize: init.replayWindowSize } : {}),
      ...(components.clock ? { clock: components.clock } : {}),
      // Only a receiving relay can see another source's packets; an encrypting one never
      // unprotects, so it skips the bookkeeping (loop tags) collision checks need.
      detectCollisions: init.mode === 'decrypt',
      logger: this.log.child({ component: 'srtp-ring' }),
    });
  }

  /** The bound listening address (after start). */
  get address(): HostPort | undefined {
    return this.bound;
  }

  /** Binds the listening socket and connects the output sockets; resolves when packets can flow. */
  async start(): Promise<HostPort> {
    if (this.state !== 'new') throw new UsageError('relay.state', `relay: start() called when ${this.state}`);
    this.state = 'starting';
    const buf = this.init.socketBufferBytes ?? 4 << 20;
    try {
      // An ICMP error (port unreachable) for an earlier packet surfaces once on a connected
      // socket: as a socket error when read first, else as the failure of the next send.
      const onError = (err: Error): void => {
        this.counts.downstreamErrors++;
        if (this.counts.downstreamErrors === 1) this.log.warn({ err: err.message }, 'relay: destination refused a packet (nobody listening?)');
      };
      this.rtpOut = await connected(this.init.to, buf, onError);
      const rtcpTo = this.init.rtcpTo;
      this.rtcpOut = rtcpTo && formatHostPort(rtcpTo) !== formatHostPort(this.init.to) ? await connected(rtcpTo, buf, onError) : this.rtpOut;
      const sock = dgram.createSocket({ type: udpType(this.init.listen.host), recvBufferSize: buf });
      sock.on('error', (err) => this.log.error({ err }, 'listening socket error'));
      sock.on('message', (msg, rinfo) => this.onPacket(msg, rinfo));
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(this.init.listen.port, this.init.listen.host, () => {
          sock.off('error', reject);
          resolve();
        });
      });
      this.inSocket = sock;
    } catch (err) {
      await this.stop();
      throw new UsageError('relay.socket', `relay: cannot open sockets (listen ${formatHostPort(this.init.listen)}, to ${formatHostPort(this.init.to)}): ${(err as Error).message}`, { cause: err });
    }
    const a = this.inSocket.address();
    this.bound = { host: a.address, port: a.port };
    this.state = 'running';
    this.log.info(
      { listen: formatHostPort(this.bound), to: formatHostPort(this.init.to), profile: this.init.profile, mki: this.init.mki, epoch: this.ring.currentEpoch() },
      this.init.mode === 'encrypt' ? 'relay: plain RTP in, SRTP out' : 'relay: SRTP in, plain RTP out',
    );
    return this.bound;
  }

  /** Closes the sockets and wipes the ring's keys. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const socks = new Set([this.inSocket, this.rtpOut, this.rtcpOut].filter((s): s is dgram.Socket => s !== undefined));
    await Promise.all([...socks].map((s) => new Promise<void>((resolve) => {
      try {
        s.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    })));
    this.ring.close();
    this.log.info({ counters: this.summary() }, 'relay stopped');
  }

  counters(): RelayCounters {
    const ring = this.ring.counters();
    return { mode: this.init.mode, ...this.counts, dropped: { ...this.counts.dropped }, perEpoch: ring.perEpoch, ring };
  }

  /** One line of figures for logs: in, out, drops that happened. */
  summary(): Record<string, number> {
    const c = this.counts;
    const drops = Object.fromEntries(Object.entries(c.dropped).filter(([, n]) => n > 0).map(([k, n]) => [`dropped.${k}`, n]));
    return { in: c.packetsIn, out: c.packetsOut, ...drops };
  }

  private onPacket(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counts;
    c.packetsIn++;
    c.bytesIn += msg.length;
    const rtcp = isRtcp(msg);
    if (rtcp) c.rtcpIn++;
    else c.rtpIn++;
    let r: ProtectResult | UnprotectResult;
    if (this.init.mode === 'encrypt') {
      r = rtcp ? this.ring.protectRtcp(msg) : this.ring.protectRtp(msg);
    } else {
      const source = `${rinfo.address}:${rinfo.port}`;
      r = rtcp ? this.ring.unprotectRtcp(msg, source) : this.ring.unprotectRtp(msg, source);
    }
    if (!r.ok) {
      c.dropped[r.cause]++;
      return;
    }
    const out = rtcp ? this.rtcpOut : this.rtpOut;
    const len = r.packet.length;
    out?.send(r.packet, (err) => {
      if (err) {
        this.sendFailed(err);
        return;
      }
      c.packetsOut++;
      c.bytesOut += len;
    });
  }

  private sendFailed(err: Error): void {
    this.counts.dropped.sendError++;
    // ECONNREFUSED: nobody listens at the destination yet (ICMP port unreachable); log it once in a while.
    if (this.counts.dropped.sendError === 1 || this.counts.dropped.sendError % 1000 === 0) {
      this.log.warn({ err: err.message, sendErrors: this.counts.dropped.sendError }, 'relay: send failed');
    }
  }
}

/** A UDP socket connected to `to` (the kernel picks the source), with errors counted rather than thrown. */
async function connected(to: HostPort, bufferBytes: number, onError: (err: Error) => void): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: udpType(to.host), sendBufferSize: bufferBytes });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.connect(to.port, to.host, () => {
      s.off('error', reject);
      resolve();
    });
  });
  s.on('error', onError);
  // Replies to our port (an ICMP error aside) are not expected; reading them keeps the buffer empty.
  s.on('message', () => undefined);
  return s;
}
