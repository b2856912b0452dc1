/**
 * The media group on loopback: what an IP multicast group was to vic (paper §7: KGRP2
 * secures data multicast "in an unrelated and independent multicast group"). A UDP reflector
 * on 127.0.0.1: every datagram goes to every other address heard from in the last
 * `memberTimeoutMs`. It knows nothing of keys: an expelled participant still receives every
 * packet, and can decrypt none of the new epoch's.
 *
 * A datagram shorter than an RTP header is a keep-alive (a participant that has nothing to
 * send still has to be heard to be sent to); it is not reflected.
 */
import dgram from 'node:dgram';

export interface MediaGroupCounters {
  datagrams: number;
  reflected: number;
  members: number;
}

const RTP_HEADER = 12;

export class MediaGroup {
  private readonly members = new Map<string, { port: number; address: string; lastSeen: number }>();
  private socket: dgram.Socket | undefined;
  readonly counters: MediaGroupCounters = { datagrams: 0, reflected: 0, members: 0 };

  constructor(private readonly memberTimeoutMs = 10_000) {}

  /** Binds 127.0.0.1:`port` (0: any); resolves with the port. */
  async start(port = 0): Promise<number> {
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, '127.0.0.1', () => resolve());
    });
    s.on('error', () => undefined);
    s.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.socket = s;
    return s.address().port;
  }

  private onMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const now = Date.now();
    const from = `${rinfo.address}:${rinfo.port}`;
    this.counters.datagrams++;
    this.members.set(from, { address: rinfo.address, port: rinfo.port, lastSeen: now });
    if (msg.length < RTP_HEADER) return;
    for (const [addr, m] of this.members) {
      if (now - m.lastSeen > this.memberTimeoutMs) {
        this.members.delete(addr);
        continue;
      }
      if (addr === from) continue;
      this.socket?.send(msg, m.port, m.address);
      this.counters.reflected++;
    }
    this.counters.members = this.members.size;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.socket ? this.socket.close(() => resolve()) : resolve()));
  }
}
