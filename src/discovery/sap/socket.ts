/**
 * SAP over UDP (RFC 2974 §3): a sender bound to the announcing interface's IPv4 address, and a
 * listener on the SAP port joined to the SAP group on one interface. Both only ever use the
 * configured interface: nothing leaves by a default route.
 */
import dgram from 'node:dgram';
import type { SapSender } from './announcer.js';

export interface SapSocketOptions {
  /** IPv4 address of the interface to send from (and to join on). */
  interfaceAddress: string;
  /** SAP group, e.g. 239.255.255.255. */
  address: string;
  port: number;
  /** Multicast TTL (1: the link). */
  ttl?: number;
}

export async function openSapSender(o: SapSocketOptions): Promise<SapSender> {
  const socket = dgram.createSocket({ type: 'udp4' });
  socket.on('error', () => undefined); // send errors arrive through the callbacks
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: o.interfaceAddress, port: 0 }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.setMulticastInterface(o.interfaceAddress);
  socket.setMulticastTTL(o.ttl ?? 1);
  socket.setMulticastLoopback(true);
  let closed = false;
  return {
    send: (packet) =>
      new Promise<void>((resolve, reject) => {
        if (closed) return reject(new Error('SAP socket closed'));
        socket.send(packet, o.port, o.address, (err) => (err ? reject(err) : resolve()));
      }),
    close: () =>
      new Promise<void>((resolve) => {
        if (closed) return resolve();
        closed = true;
        socket.close(() => resolve());
      }),
  };
}

export interface SapReceiver {
  close(): Promise<void>;
}

/** Receives datagrams on the SAP group; `onPacket` gets each with its sender's address. */
export async function openSapReceiver(o: SapSocketOptions, onPacket: (bytes: Uint8Array, from: string) => void): Promise<SapReceiver> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (msg, rinfo) => onPacket(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), rinfo.address));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: o.port }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => undefined);
  socket.addMembership(o.address, o.interfaceAddress);
  return {
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
