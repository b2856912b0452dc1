/**
 * One SRTP/SRTCP crypto context (RFC 3711 §3.2): one master key (one group epoch), with
 * per-SSRC ROC, replay lists and SRTCP indices. Cryptography is werift-rtp's: its session
 * runs the SRTP KDF (RFC 3711 §4.3) and its cipher does AES-CM + HMAC-SHA1 or AES-GCM. This
 * class decides which ROC and index each packet gets, which werift 0.8.9 guesses on its own
 * and without a replay list.
 *
 * werift's cipher takes an `RtpHeader` it re-serializes; we hand it a minimal header object
 * that yields the packet's own header bytes, so protected headers stay byte-exact (werift's
 * parser rewrites some header extensions) and no header is parsed twice.
 */
import { SrtpSession } from 'werift-rtp';
import type { DerivedKey } from '../../client/keyMaterial.js';
import { MKI_LENGTH, insertMki, mkiValue } from './mki.js';
import { MAX_ROC, PacketIndexTracker, rocOf } from './packetIndex.js';
import { splitMasterKey, type SrtpProfile } from './profile.js';
import { ReplayWindow } from './replayWindow.js';
import { RTCP_MIN_LENGTH, SRTCP_INDEX_LENGTH, readU32, type RtpHeaderView } from './rtpPacket.js';

/** The part of werift's CipherAesBase we call (public in its typings, loosely typed here). */
interface WeriftCipher {
  encryptRtp(header: unknown, payload: Buffer, rolloverCounter: number): Buffer;
  decryptRtp(cipherText: Buffer, rolloverCounter: number, header?: unknown): [Buffer, unknown];
  encryptRTCP(rawRtcp: Buffer, srtcpIndex: number): Buffer;
  decryptRTCP(encrypted: Buffer): [Buffer, unknown];
}

interface WeriftContextKeys {
  srtpSessionKey: Buffer;
  srtpSessionSalt: Buffer;
  srtpSessionAuthTag: Buffer;
  srtcpSessionKey: Buffer;
  srtcpSessionSalt: Buffer;
  srtcpSessionAuthTag: Buffer;
  masterKey: Buffer;
  masterSalt: Buffer;
}

interface RtpStreamState {
  readonly tracker: PacketIndexTracker;
  readonly window: ReplayWindow;
  /** Sender side, for loop detection: auth tag of recently protected indices. */
  readonly tags?: Map<number, Buffer>;
}

export interface CryptoContextOptions {
  readonly replayWindowSize: number;
  /** Insert the key's MKI into every protected packet. */
  readonly mki: boolean;
  /** Remember recent tags of protected packets so our own packets are recognised when they loop back. */
  readonly rememberTags: boolean;
}

export type RxOutcome = { readonly packet: Buffer; readonly index: number } | 'auth' | 'replay';
export type TxOutcome = { readonly packet: Buffer; readonly index: number } | 'noKey' | 'replay';

/** SSRCs tracked per direction per context; beyond this the least recently created is forgotten. */
const MAX_STREAMS = 1024;
/** Protected packets remembered per SSRC for loop detection. */
const TAG_HISTORY = 512;
/** The SRTCP index is 31 bits (RFC 3711 §3.4); the key must change before it wraps. */
const MAX_SRTCP_INDEX = 0x7fffffff;

export class SrtpCryptoContext {
  readonly key: DerivedKey;
  readonly profile: SrtpProfile;
  readonly epoch: number;
  /** The MKI as a u32 (the epoch, for keys from keyMaterial.ts). */
  readonly mki: number;
  private readonly mkiBytes: Uint8Array;
  private readonly cipher: WeriftCipher;
  private readonly weriftKeys: WeriftContextKeys[];
  private readonly rxRtp = new Map<number, RtpStreamState>();
  private readonly txRtp = new Map<number, RtpStreamState>();
  private readonly rxRtcp = new Map<number, ReplayWindow>();
  private readonly txRtcp = new Map<number, number>();

  constructor(profile: SrtpProfile, key: DerivedKey, private readonly options: CryptoContextOptions) {
    const { masterKey, masterSalt } = splitMasterKey(profile, key.key);
    // One werift session per key: in a group both directions use the same master key.
    const session = new SrtpSession({
      keys: { localMasterKey: masterKey, localMasterSalt: masterSalt, remoteMasterKey: masterKey, remoteMasterSalt: masterSalt },
      profile: profile.weriftProfile,
    });
    this.cipher = session.localContext.cipher as unknown as WeriftCipher;
    this.weriftKeys = [session.localContext, session.remoteContext] as unknown as WeriftContextKeys[];
    this.key = key;
    this.profile = profile;
    this.epoch = key.epoch;
    this.mkiBytes = Uint8Array.from(key.mki);
    this.mki = mkiValue(this.mkiBytes);
  }

  /** True when this context was built from exactly these key bytes (a voided next key is replaced). */
  sameKey(key: DerivedKey): boolean {
    return key.epoch === this.epoch && Buffer.compare(Buffer.from(key.key), Buffer.from(this.key.key)) === 0;
  }

  /** Protects one RTP packet whose header is `hdr`. */
  protectRtp(packet: Buffer, hdr: RtpHeaderView): TxOutcome {
    let st = this.txRtp.get(hdr.ssrc);
    if (!st) {
      st = this.newState(this.options.rememberTags);
      remember(this.txRtp, hdr.ssrc, st);
    }
    const index = st.tracker.estimate(hdr.sequenceNumber);
    if (index < 0) return 'replay';
    const roc = rocOf(index);
    if (roc > MAX_ROC) return 'noKey';
    // A second packet with one index would reuse keystream (RFC 3711 §9.1): refuse it.
    if (st.window.check(index) !== 'fresh') return 'replay';
    const header = rawHeader(packet, hdr);
    let out = this.cipher.encryptRtp(header, packet.subarray(hdr.payloadOffset), roc);
    st.tracker.update(index);
    st.window.accept(index);
    if (st.tags) {
      st.tags.set(index, Buffer.from(out.subarray(out.length - this.profile.tagLength)));
      st.tags.delete(index - TAG_HISTORY);
    }
    if (this.options.mki) out = insertMki(out, this.mkiBytes, this.profile.mkiOffsetFromEnd);
    return { packet: out, index };
  }

  /**
   * Checks and decrypts one SRTP packet (MKI already stripped). With `commit` false nothing
   * is recorded (used to classify a packet under an expired key).
   */
  unprotectRtp(packet: Buffer, hdr: RtpHeaderView, commit: boolean): RxOutcome {
    const st = this.rxRtp.get(hdr.ssrc);
    if (st) {
      const index = st.tracker.estimate(hdr.sequenceNumber);
      // ROC-1 below zero: older than this context's first packet, i.e. behind the window.
      if (index < 0 || st.window.check(index) !== 'fresh') return 'replay';
      const out = this.decryptRtp(packet, hdr, rocOf(index));
      if (!out) return 'auth';
      if (commit) {
        st.tracker.update(index);
        st.window.accept(index);
      }
      return { packet: out, index };
    }
    // First packet of this SSRC under this key. RFC 3711 §3.3.1 says ROC 0; a receiver that
    // joins after the sender wrapped once under this key would stay dark until the next key,
    // so ROC 1 is tried too (each key starts at ROC 0, so one wrap covers 65536 packets).
    for (const roc of [0, 1]) {
      const out = this.decryptRtp(packet, hdr, roc);
      if (!out) continue;
      const index = roc * 0x10000 + hdr.sequenceNumber;
      if (commit) {
        const fresh = this.newState(false);
        fresh.tracker.update(index);
        fresh.window.accept(index);
        remember(this.rxRtp, hdr.ssrc, fresh);
      }
      return { packet: out, index };
    }
    return 'auth';
  }

  /** Protects one RTCP compound packet (at least 8 bytes, checked by the caller). */
  protectRtcp(packet: Buffer): TxOutcome {
    const ssrc = readU32(packet, 4);
    const index = (this.txRtcp.get(ssrc) ?? -1) + 1;
    if (index > MAX_SRTCP_INDEX) return 'noKey';
    if (!this.txRtcp.has(ssrc) && this.txRtcp.size >= MAX_STREAMS) {
      const oldest = this.txRtcp.keys().next().value;
      if (oldest !== undefined) this.txRtcp.delete(oldest);
    }
    this.txRtcp.set(ssrc, index);
    let out = this.cipher.encryptRTCP(packet, index);
    if (this.options.mki) out = insertMki(out, this.mkiBytes, this.profile.mkiOffsetFromEnd);
    return { packet: out, index };
  }

  /** Checks and decrypts one SRTCP packet (MKI already stripped). */
  unprotectRtcp(packet: Buffer, commit: boolean): RxOutcome | 'malformed' {
    const tag = this.profile.tagLength;
    if (packet.length < RTCP_MIN_LENGTH + SRTCP_INDEX_LENGTH + tag || packet[0]! >> 6 !== 2) return 'malformed';
    // E ‖ SRTCP index: before the HMAC tag (RFC 3711 §3.4), after the AEAD tag (RFC 7714 §9).
    const at = packet.length - SRTCP_INDEX_LENGTH - (this.profile.aead ? 0 : tag);
    const index = readU32(packet, at) & MAX_SRTCP_INDEX;
    const ssrc = readU32(packet, 4);
    const window = this.rxRtcp.get(ssrc);
    if (window && window.check(index) !== 'fresh') return 'replay';
    let out: Buffer;
    try {
      [out] = this.cipher.decryptRTCP(packet);
    } catch {
      return 'auth';
    }
    if (commit) {
      let w = window;
      if (!w) {
        w = new ReplayWindow(this.options.replayWindowSize);
        remember(this.rxRtcp, ssrc, w);
      }
      w.accept(index);
    }
    return { packet: out, index };
  }

  /** True when (ssrc, index) is a packet this context protected, tag for tag: our own packet looping back. */
  protectedByUs(ssrc: number, index: number, packet: Buffer): boolean {
    const sent = this.txRtp.get(ssrc)?.tags?.get(index);
    if (!sent) return false;
    return sent.equals(packet.subarray(packet.length - this.profile.tagLength));
  }

  /** True when this context protected RTP with this SSRC. */
  sends(ssrc: number): boolean {
    return this.txRtp.has(ssrc);
  }

  /** Wipes werift's copies of the master and session keys (best effort, as JS allows). */
  dispose(): void {
    for (const k of this.weriftKeys) {
      for (const b of [k.masterKey, k.masterSalt, k.srtpSessionKey, k.srtpSessionSalt, k.srtpSessionAuthTag, k.srtcpSessionKey, k.srtcpSessionSalt, k.srtcpSessionAuthTag]) {
        b?.fill(0);
      }
    }
    this.rxRtp.clear();
    this.txRtp.clear();
    this.rxRtcp.clear();
    this.txRtcp.clear();
  }

  private decryptRtp(packet: Buffer, hdr: RtpHeaderView, roc: number): Buffer | undefined {
    // werift reads payloadOffset/ssrc/sequenceNumber; padding stays the application's
    // business (it is encrypted payload, RFC 3711 §3.1), so werift need not check it.
    const header = { payloadOffset: hdr.payloadOffset, sequenceNumber: hdr.sequenceNumber, ssrc: hdr.ssrc, padding: false, paddingSize: 0 };
    try {
      return this.cipher.decryptRtp(packet, roc, header)[0];
    } catch {
      return undefined;
    }
  }

  private newState(withTags: boolean): RtpStreamState {
    return {
      tracker: new PacketIndexTracker(0),
      window: new ReplayWindow(this.options.replayWindowSize),
      ...(withTags ? { tags: new Map<number, Buffer>() } : {}),
    };
  }
}

/** The header object werift's cipher serializes: the packet's own header bytes, unchanged. */
function rawHeader(packet: Buffer, hdr: RtpHeaderView): object {
  const bytes = packet.subarray(0, hdr.payloadOffset);
  return {
    sequenceNumber: hdr.sequenceNumber,
    ssrc: hdr.ssrc,
    serializeSize: hdr.payloadOffset,
    serialize: () => bytes,
  };
}

function remember<V>(map: Map<number, V>, ssrc: number, value: V): void {
  if (map.size >= MAX_STREAMS) {
    const oldest = map.keys().next().value;
    if (oldest !== undefined) map.delete(oldest);
  }
  map.set(ssrc, value);
}

/** Why a key from the KeySource cannot be used, or undefined when it can. */
export function derivedKeyProblem(k: DerivedKey | undefined, label: string): string | undefined {
  if (!k || typeof k !== 'object') return 'not a key';
  if (k.label !== label) return `label '${String(k.label)}' is not '${label}'`;
  if (!Number.isSafeInteger(k.epoch) || k.epoch < 0 || k.epoch > 0xffffffff) return 'epoch out of range';
  if (![k.notBefore, k.notAfter, k.graceMs].every(Number.isFinite) || k.notAfter < k.notBefore || k.graceMs < 0) return 'bad validity times';
  if (!(k.mki instanceof Uint8Array) || k.mki.length !== MKI_LENGTH) return 'MKI is not 4 bytes';
  if (!(k.key instanceof Uint8Array)) return 'key is not bytes';
  return undefined;
}
