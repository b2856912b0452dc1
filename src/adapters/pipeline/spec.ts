/**
 * What a builder needs to write one sender or receiver command line, whichever the tool.
 * No `srtp`: plain RTP (the relay mode, or the vic-like sample, which protects packets
 * itself). With `srtp`: the tool does SRTP with this one key (the direct mode).
 */
import type { HostPort } from '../relay/address.js';
import type { MediaKind, VideoFormat } from './media.js';

export interface SrtpKeying {
  /** SDES suite name, e.g. AES_CM_128_HMAC_SHA1_80 (SUITE_SPELLINGS in srtp/profile.ts). */
  readonly suite: string;
  /** Master key ‖ master salt. */
  readonly key: Uint8Array;
  /** 4-byte MKI to put in (sender) or expect in (receiver) every packet; GStreamer only. */
  readonly mki?: Uint8Array;
}

export interface SenderSpec {
  readonly media: MediaKind;
  readonly video: VideoFormat;
  /** RTP SSRC: distinct per sender sharing a group key (RFC 3711 §9.1). */
  readonly ssrc: number;
  /** Where RTP (and RTCP, RFC 5761 mux) goes. */
  readonly to: HostPort;
  /** Stop after this many frames (video) or 20 ms packets (audio); default: run until stopped. */
  readonly frames?: number;
  /** Test pattern, 0–3 (each tool has its own four). */
  readonly pattern?: number;
  readonly srtp?: SrtpKeying;
}

export interface ReceiverSpec {
  readonly media: MediaKind;
  /** Where to bind (an IP literal). */
  readonly listen: HostPort;
  /** The sender's SSRC: srtpdec keys only the SSRC its caps name. */
  readonly ssrc?: number;
  readonly srtp?: SrtpKeying;
}
