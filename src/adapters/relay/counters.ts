/** What the relay counts, on top of its key ring's counters. */
import { RX_DROP_CAUSES, TX_DROP_CAUSES, type EpochCounters, type RxDropCause, type SrtpCounters, type TxDropCause } from '../srtp/counters.js';

/** Why a packet that reached the relay did not leave it (`sendError`: the kernel refused to send it). */
export type RelayDropCause = RxDropCause | TxDropCause | 'sendError';
export const RELAY_DROP_CAUSES: readonly RelayDropCause[] = [...new Set<RelayDropCause>([...RX_DROP_CAUSES, ...TX_DROP_CAUSES, 'sendError'])];

export interface RelayCounters {
  readonly mode: 'encrypt' | 'decrypt';
  packetsIn: number;
  rtpIn: number;
  rtcpIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** ICMP errors reported for packets already sent (the destination refused them). */
  downstreamErrors: number;
  /** Every packet in is out, dropped here, or still being sent. */
  dropped: Record<RelayDropCause, number>;
  /** Packets per epoch, from the ring (protected when encrypting, unprotected when decrypting). */
  perEpoch: EpochCounters[];
  ring: SrtpCounters;
}

export function emptyDrops(): Record<RelayDropCause, number> {
  const r = {} as Record<RelayDropCause, number>;
  for (const c of RELAY_DROP_CAUSES) r[c] = 0;
  return r;
}
