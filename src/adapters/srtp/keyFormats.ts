/**
 * One derived SRTP key (master key ‖ master salt) as each tool wants it: hex for GStreamer
 * srtpenc/srtpdec, bare base64 for ffmpeg, `inline:` base64 in SDES a=crypto (RFC 4568
 * §6.1, what ffmpeg's SDP demuxer reads). Facts in shared/notes/media-interop.md.
 */
import type { DerivedKey } from '../../client/keyMaterial.js';
import { toBase64, toHex } from '../../crypto/bytes.js';
import { ValidationError } from '../../errors.js';
import { MKI_LENGTH } from './mki.js';
import { SUITE_SPELLINGS, type SuiteSpelling } from './profile.js';

function suite(name: string): SuiteSpelling {
  const s = SUITE_SPELLINGS[name];
  if (!s) throw new ValidationError('srtp.profile', `profile: unknown SRTP suite '${name}'`);
  return s;
}

/** GStreamer `key=` / caps `srtp-key=(buffer)`: hex of master key ‖ salt. */
export function gstKeyHex(masterKeyAndSalt: Uint8Array): string {
  return toHex(masterKeyAndSalt);
}

/** ffmpeg `-srtp_out_params` / `-srtp_in_params`: base64 of exactly master key ‖ salt, nothing else. */
export function ffmpegSrtpParams(masterKeyAndSalt: Uint8Array): string {
  return toBase64(masterKeyAndSalt);
}

/**
 * SDP `a=crypto:<tag> <suite> inline:<base64>[|MKI:<value>:<length>]` (RFC 4568 §9.1).
 * ffmpeg 5.1 reads the suite and key only: give it no MKI.
 */
export function sdesCryptoAttribute(tag: number, suiteName: string, key: DerivedKey, opts: { mki?: boolean } = {}): string {
  const s = suite(suiteName);
  const mki = opts.mki ? `|${Buffer.from(key.mki).readUInt32BE(0)}:${MKI_LENGTH}` : '';
  return `a=crypto:${tag} ${s.sdes} inline:${toBase64(key.key)}${mki}`;
}

export interface GstCapsKey {
  /** Master key ‖ salt. */
  readonly key: Uint8Array;
  /** 4-byte MKI, when the stream carries one. */
  readonly mki?: Uint8Array;
}

/**
 * The srtpdec caps fields for a suite and up to 16 keys: `srtp-key`/`mki`, then
 * `srtp-key2`/`mki2` … (srtpdec picks the key by MKI). Without MKI only one key is allowed.
 */
export function gstSrtpCapsFields(suiteName: string, keys: readonly GstCapsKey[], opts: { ssrc?: number; roc?: number } = {}): string {
  const s = suite(suiteName);
  if (!s.gst) throw new ValidationError('srtp.profile', `profile: GStreamer has no suite '${suiteName}'`);
  if (keys.length === 0 || keys.length > 16) throw new RangeError(`keys: expected 1..16, got ${keys.length}`);
  if (keys.length > 1 && keys.some((k) => !k.mki)) throw new RangeError('keys: several keys need an MKI each');
  const fields: string[] = [];
  if (opts.ssrc !== undefined) fields.push(`ssrc=(uint)${opts.ssrc >>> 0}`);
  if (opts.roc !== undefined) fields.push(`roc=(uint)${opts.roc >>> 0}`);
  keys.forEach((k, i) => {
    const n = i === 0 ? '' : String(i + 1);
    fields.push(`srtp-key${n}=(buffer)${toHex(k.key)}`);
    if (k.mki) fields.push(`mki${n}=(buffer)${toHex(k.mki)}`);
  });
  fields.push(
    `srtp-cipher=(string)${s.gst.cipher}`,
    `srtp-auth=(string)${s.gst.auth}`,
    `srtcp-cipher=(string)${s.gst.cipher}`,
    `srtcp-auth=(string)${s.gst.rtcpAuth}`,
  );
  return fields.join(', ');
}
