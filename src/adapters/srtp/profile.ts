/**
 * SRTP protection profiles: the two werift-rtp 0.8.9 implements, how a derived key splits
 * into master key and master salt, and how every suite we derive keys for is spelled by
 * GStreamer (srtpenc/srtpdec, libsrtp 2) and ffmpeg 5.1 (see README.md in this folder).
 *
 * Key derivation: the key service gives `srtp/<profile>` bytes = master key ‖ master salt
 * (src/client/keyMaterial.ts, HKDF of KGRP2); SRTP's own KDF (RFC 3711 §4.3) runs inside
 * werift from there.
 */
import { ProtectionProfileAeadAes128Gcm, ProtectionProfileAes128CmHmacSha1_80 } from 'werift-rtp';
import { abytes } from '../../crypto/bytes.js';
import { ValidationError } from '../../errors.js';

/** Profiles the key ring can run (werift-rtp implements exactly these two). */
export const SRTP_PROFILE_NAMES = ['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM'] as const;
export type SrtpProfileName = (typeof SRTP_PROFILE_NAMES)[number];

export interface SrtpProfile {
  readonly name: SrtpProfileName;
  /** Label of the derived key: `srtp/<name>` (DESIGN.md, KGRP2). */
  readonly label: string;
  /** werift-rtp's profile id (the DTLS-SRTP protection profile number, RFC 5764 §4.1.2 / RFC 7714 §14.2). */
  readonly weriftProfile: typeof ProtectionProfileAes128CmHmacSha1_80 | typeof ProtectionProfileAeadAes128Gcm;
  readonly masterKeyLength: number;
  /** 112-bit salt for AES-CM (RFC 3711 §8.2), 96-bit for AES-GCM (RFC 7714 §12). */
  readonly masterSaltLength: number;
  readonly aead: boolean;
  /** Bytes of authentication tag at the end of SRTP and SRTCP packets. */
  readonly tagLength: number;
  /**
   * Where the MKI sits, counted in bytes from the end of the packet. With an HMAC suite the
   * MKI precedes the authentication tag and the tag does not cover it (RFC 3711 §3.1, §3.4);
   * with AEAD the tag is part of the ciphertext and the MKI comes last (RFC 7714 §8, §9).
   * Both placements checked against libsrtp 2.5 (GStreamer srtpenc) on this machine.
   */
  readonly mkiOffsetFromEnd: number;
}

const PROFILES: Readonly<Record<SrtpProfileName, SrtpProfile>> = {
  AES_CM_128_HMAC_SHA1_80: {
    name: 'AES_CM_128_HMAC_SHA1_80',
    label: 'srtp/AES_CM_128_HMAC_SHA1_80',
    weriftProfile: ProtectionProfileAes128CmHmacSha1_80,
    masterKeyLength: 16,
    masterSaltLength: 14,
    aead: false,
    tagLength: 10,
    mkiOffsetFromEnd: 10,
  },
  AEAD_AES_128_GCM: {
    name: 'AEAD_AES_128_GCM',
    label: 'srtp/AEAD_AES_128_GCM',
    weriftProfile: ProtectionProfileAeadAes128Gcm,
    masterKeyLength: 16,
    masterSaltLength: 12,
    aead: true,
    tagLength: 16,
    mkiOffsetFromEnd: 0,
  },
};

export function isSrtpProfileName(name: string): name is SrtpProfileName {
  return (SRTP_PROFILE_NAMES as readonly string[]).includes(name);
}

/** The profile by name; a name werift cannot run is a ValidationError naming `profile`. */
export function srtpProfile(name: string): SrtpProfile {
  if (!isSrtpProfileName(name)) {
    throw new ValidationError('srtp.profile', `profile: '${name}' is not one of ${SRTP_PROFILE_NAMES.join(', ')}`);
  }
  return PROFILES[name];
}

export interface MasterKey {
  readonly masterKey: Buffer;
  readonly masterSalt: Buffer;
}

/** Splits derived `srtp/<profile>` bytes into master key and master salt (copies, so the caller may wipe its bytes). */
export function splitMasterKey(profile: SrtpProfile, derived: Uint8Array): MasterKey {
  abytes(derived, profile.masterKeyLength + profile.masterSaltLength, 'derived');
  return {
    masterKey: Buffer.from(derived.subarray(0, profile.masterKeyLength)),
    masterSalt: Buffer.from(derived.subarray(profile.masterKeyLength)),
  };
}

/**
 * How each suite we derive keys for (SRTP_KEY_LENGTHS) is spelled by the tools that can run
 * it. `undefined` means the tool has no such suite. Key material is always master key ‖
 * master salt: hex for GStreamer, base64 for ffmpeg and SDES (keyFormats.ts).
 */
export interface SuiteSpelling {
  /** RFC 4568 / RFC 7714 SDES crypto-suite name. */
  readonly sdes: string;
  readonly werift: boolean;
  /**
   * srtpenc/srtpdec `rtp-cipher`/`rtp-auth` and `rtcp-auth` (the cipher is the same for RTCP).
   * AEAD suites take auth `null`; the `_32` suites keep an 80-bit SRTCP tag (RFC 4568 §6.2.2).
   */
  readonly gst?: { readonly cipher: string; readonly auth: string; readonly rtcpAuth: string };
  /** ffmpeg `-srtp_out_suite` / `-srtp_in_suite`, SDP a=crypto suite. */
  readonly ffmpeg?: string;
}

export const SUITE_SPELLINGS: Readonly<Record<string, SuiteSpelling>> = {
  AES_CM_128_HMAC_SHA1_80: { sdes: 'AES_CM_128_HMAC_SHA1_80', werift: true, gst: { cipher: 'aes-128-icm', auth: 'hmac-sha1-80', rtcpAuth: 'hmac-sha1-80' }, ffmpeg: 'AES_CM_128_HMAC_SHA1_80' },
  AES_CM_128_HMAC_SHA1_32: { sdes: 'AES_CM_128_HMAC_SHA1_32', werift: false, gst: { cipher: 'aes-128-icm', auth: 'hmac-sha1-32', rtcpAuth: 'hmac-sha1-80' }, ffmpeg: 'AES_CM_128_HMAC_SHA1_32' },
  AEAD_AES_128_GCM: { sdes: 'AEAD_AES_128_GCM', werift: true, gst: { cipher: 'aes-128-gcm', auth: 'null', rtcpAuth: 'null' } },
  AES_256_CM_HMAC_SHA1_80: { sdes: 'AES_256_CM_HMAC_SHA1_80', werift: false, gst: { cipher: 'aes-256-icm', auth: 'hmac-sha1-80', rtcpAuth: 'hmac-sha1-80' } },
  AES_256_CM_HMAC_SHA1_32: { sdes: 'AES_256_CM_HMAC_SHA1_32', werift: false, gst: { cipher: 'aes-256-icm', auth: 'hmac-sha1-32', rtcpAuth: 'hmac-sha1-80' } },
  AEAD_AES_256_GCM: { sdes: 'AEAD_AES_256_GCM', werift: false, gst: { cipher: 'aes-256-gcm', auth: 'null', rtcpAuth: 'null' } },
};
