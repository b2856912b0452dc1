/**
 * Socket lifecycle for the UDP transports: open and bind a node:dgram socket with an error
 * listener already in place (an unhandled 'error' would throw and end the process), send
 * with counting, and close idempotently.
 */
import dgram, { type Socket } from 'node:dgram';
import type { Logger } from '../util/log.js';
import type { TransportCounters } from './types.js';
import { countDrop, countOut, DropCause } from './datagram.js';
import type { Family } from './config.js';

export interface OpenOptions {
  family: Family;
  /** Default: the unspecified address of the family. */
  address?: string;
  /** Default 0 (any). */
  port?: number;
  reuseAddr?: boolean;
  /** SO_RCVBUF wish (capped by the kernel's rmem_max). */
  recvBufferSize?: number;
  /** What the socket is for, in log lines. */
  role: string;
}

export interface SocketContext {
  counters: TransportCounters;
  log: Logger;
}

/** Opens and binds; rejects (and closes the socket) if the bind fails. */
export async function openSocket(options: OpenOptions, ctx: SocketContext): Promise<Socket> {
  const socket = dgram.createSocket({ type: options.family === 6 ? 'udp6' : 'udp4', reuseAddr: options.reuseAddr ?? false });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      socket.off('listening', onListening);
      safeClose(socket);
      reject(err);
    };
    const onListening = () => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind({ address: options.address ?? (options.family === 6 ? '::' : '0.0.0.0'), port: options.port ?? 0, exclusive: true });
  });
  // From now on, trouble is counted and logged, never thrown.
  socket.on('error', (err) => {
    countDrop(ctx.counters, DropCause.SocketError);
    ctx.log.warn({ err, socket: options.role }, 'socket error');
  });
  if (options.recvBufferSize) {
    try {
      socket.setRecvBufferSize(options.recvBufferSize);
    } catch (err) {
      ctx.log.debug({ err, socket: options.role }, 'could not set the receive buffer size');
    }
  }
  return socket;
}

/** Sends one datagram and counts it; a failure (now or in the callback) is counted, never thrown. */
export function sendTo(socket: Socket, bytes: Uint8Array, port: number, address: string | undefined, ctx: SocketContext): void {
  countOut(ctx.counters, bytes);
  const done = (err: Error | null) => {
    if (err) {
      countDrop(ctx.counters, DropCause.SendError);
      ctx.log.debug({ err, address, port }, 'send failed');
    }
  };
  try {
    if (address === undefined) socket.send(bytes, done);
    else socket.send(bytes, port, address, done);
  } catch (err) {
    done(err as Error);
  }
}

/** Closes a socket whatever its state; resolves once closed. */
export function closeSocket(socket: Socket | undefined): Promise<void> {
  if (!socket) return Promise.resolve();
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // already closed (ERR_SOCKET_DGRAM_NOT_RUNNING)
    }
  });
}

function safeClose(socket: Socket): void {
  try {
    socket.close();
  } catch {
    /* already closed */
  }
}
