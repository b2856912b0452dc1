import { describe, expect, it } from 'vitest';
import { ffmpegSrtpParams, gstKeyHex, gstSrtpCapsFields, sdesCryptoAttribute } from '../../../src/adapters/srtp/keyFormats.js';
import { SRTP_PROFILE_NAMES, SUITE_SPELLINGS, splitMasterKey, srtpProfile } from '../../../src/adapters/srtp/profile.js';
import { SRTP_KEY_LENGTHS, deriveKey, mkiForEpoch } from '../../../src/client/keyMaterial.js';
import { ValidationError } from '../../../src/errors.js';
import { groupKeyEpoch } from '../support/keys.js';

describe('SRTP profiles and key formats', () => {
  it('splits derived bytes into master key and salt per profile', () => {
    for (const name of SRTP_PROFILE_NAMES) {
      const p = srtpProfile(name);
      const k = deriveKey(groupKeyEpoch(1, { notBefore: 0, notAfter: 1, graceMs: 0 }), p.label).key;
      expect(k.length).toBe(SRTP_KEY_LENGTHS[name]);
      const { masterKey, masterSalt } = splitMasterKey(p, k);
      expect([masterKey.length, masterSalt.length]).toEqual([16, p.aead ? 12 : 14]);
      expect(Buffer.concat([masterKey, masterSalt]).equals(Buffer.from(k))).toBe(true);
      expect(() => splitMasterKey(p, k.subarray(1))).toThrow(RangeError);
    }
    expect(() => srtpProfile('AES_256_CM_HMAC_SHA1_80')).toThrow(ValidationError);
    expect(Object.keys(SUITE_SPELLINGS).sort()).toEqual(Object.keys(SRTP_KEY_LENGTHS).sort());
  });

  it('spells a key for GStreamer, ffmpeg and SDES', () => {
    const key = Uint8Array.from({ length: 30 }, (_, i) => i);
    expect(gstKeyHex(key)).toBe('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d');
    expect(ffmpegSrtpParams(key)).toBe(Buffer.from(key).toString('base64'));
    const dk = { label: 'srtp/AES_CM_128_HMAC_SHA1_80', epoch: 7, notBefore: 0, notAfter: 1, graceMs: 0, key, mki: mkiForEpoch(7) };
    expect(sdesCryptoAttribute(1, 'AES_CM_128_HMAC_SHA1_80', dk)).toBe(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${ffmpegSrtpParams(key)}`);
    expect(sdesCryptoAttribute(2, 'AES_CM_128_HMAC_SHA1_80', dk, { mki: true })).toMatch(/\|7:4$/);
  });

  it('writes srtpdec caps with several keys by MKI, and the right SRTCP tag for _32 suites', () => {
    const k = new Uint8Array(30);
    const caps = gstSrtpCapsFields('AES_CM_128_HMAC_SHA1_32', [{ key: k, mki: mkiForEpoch(1) }, { key: k, mki: mkiForEpoch(2) }], { ssrc: 0xffffffff });
    expect(caps).toContain('ssrc=(uint)4294967295');
    expect(caps).toContain('mki=(buffer)00000001');
    expect(caps).toContain('srtp-key2=(buffer)');
    expect(caps).toContain('mki2=(buffer)00000002');
    expect(caps).toContain('srtp-auth=(string)hmac-sha1-32');
    expect(caps).toContain('srtcp-auth=(string)hmac-sha1-80');
    expect(() => gstSrtpCapsFields('AES_CM_128_HMAC_SHA1_80', [{ key: k }, { key: k }])).toThrow(/MKI/);
    expect(() => gstSrtpCapsFields('NOPE', [{ key: k }])).toThrow(ValidationError);
  });
});
