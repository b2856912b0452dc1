import { describe, expect, it } from 'vitest';
import { insertMki, mkiValue, readMki, stripMki } from '../../../src/adapters/srtp/mki.js';
import { mkiForEpoch } from '../../../src/client/keyMaterial.js';

describe('MKI insert and strip', () => {
  const packet = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415', 'hex');
  const mki = mkiForEpoch(0xdeadbeef);

  it('inserts before an HMAC tag and strips back to the same bytes', () => {
    const withMki = insertMki(packet, mki, 10);
    expect(withMki.length).toBe(packet.length + 4);
    expect(withMki.subarray(packet.length - 10, packet.length - 6).toString('hex')).toBe('deadbeef');
    expect(withMki.subarray(-10).equals(packet.subarray(-10))).toBe(true);
    expect(readMki(withMki, 10)).toBe(0xdeadbeef);
    expect(stripMki(withMki, 10).equals(packet)).toBe(true);
  });

  it('appends after an AEAD tag (offset 0) and strips it', () => {
    const withMki = insertMki(packet, mki, 0);
    expect(withMki.subarray(-4).toString('hex')).toBe('deadbeef');
    expect(readMki(withMki, 0)).toBe(0xdeadbeef);
    expect(stripMki(withMki, 0).equals(packet)).toBe(true);
  });

  it('says when a packet is too short to hold an MKI', () => {
    expect(readMki(Buffer.alloc(13), 10)).toBeUndefined();
    expect(() => stripMki(Buffer.alloc(13), 10)).toThrow(RangeError);
    expect(readMki(Buffer.alloc(14), 10)).toBe(0);
  });

  it('reads the epoch back from DerivedKey.mki', () => {
    expect(mkiValue(mkiForEpoch(42))).toBe(42);
    expect(() => mkiValue(new Uint8Array(3))).toThrow(RangeError);
    expect(() => insertMki(packet, new Uint8Array(2), 0)).toThrow(RangeError);
  });
});
