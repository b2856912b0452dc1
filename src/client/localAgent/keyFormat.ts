/**
 * The forms a pipeline wants a key in (shared/notes/media-interop.md): JSON with everything,
 * SDES `inline:` (RFC 4568), GStreamer hex, ffmpeg base64. SRTP labels carry master key ‖ salt.
 */
import { ffmpegSrtpParams, gstKeyHex } from '../../adapters/srtp/keyFormats.js';
import { toBase64, toHex } from '../../crypto/bytes.js';
import { z } from 'zod';
import type { KeyInfo } from '../client.js';

export const KeyFormat = z.enum(['json', 'sdes', 'gst', 'ffmpeg']);
export type KeyFormat = z.infer<typeof KeyFormat>;

export interface KeyJson {
  label: string;
  epoch: number;
  state: KeyInfo['state'];
  notBefore: string;
  notAfter: string;
  graceMs: number;
  /** base64 of the derived bytes (for SRTP: master key ‖ master salt). */
  key: string;
  mki: string;
}

export function keyJson(k: KeyInfo): KeyJson {
  return {
    label: k.label, epoch: k.epoch, state: k.state, notBefore: new Date(k.notBefore).toISOString(),
    notAfter: new Date(k.notAfter).toISOString(), graceMs: k.graceMs, key: toBase64(k.key), mki: toHex(k.mki),
  };
}

/** One line of text for `format` (json is an object, the others a string). */
export function formatKey(k: KeyInfo, format: KeyFormat, opts: { mki?: boolean } = {}): string | KeyJson {
  switch (format) {
    case 'json':
      return keyJson(k);
    case 'gst':
      return gstKeyHex(k.key);
    case 'ffmpeg':
      return ffmpegSrtpParams(k.key);
    case 'sdes': {
      const mki = opts.mki ? `|${Buffer.from(k.mki).readUInt32BE(0)}:4` : '';
      return `inline:${toBase64(k.key)}${mki}`;
    }
  }
}
