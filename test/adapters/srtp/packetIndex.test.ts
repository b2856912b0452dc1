import { describe, expect, it } from 'vitest';
import { PacketIndexTracker, estimateRoc } from '../../../src/adapters/srtp/packetIndex.js';

describe('packet index estimation (RFC 3711 §3.3.1, Appendix A)', () => {
  it('guesses ROC-1, ROC or ROC+1 as Appendix A does, at its boundaries', () => {
    // s_l < 2^15: ROC-1 only when SEQ - s_l > 2^15.
    expect(estimateRoc(5, 32767, 65535)).toBe(5); // difference exactly 32768
    expect(estimateRoc(5, 32766, 65535)).toBe(4); // 32769
    expect(estimateRoc(5, 0, 32768)).toBe(5);
    expect(estimateRoc(5, 0, 32769)).toBe(4);
    // s_l ≥ 2^15: ROC+1 only when s_l - 2^15 > SEQ.
    expect(estimateRoc(5, 32768, 0)).toBe(5);
    expect(estimateRoc(5, 32769, 0)).toBe(6);
    expect(estimateRoc(5, 65535, 32766)).toBe(6);
    expect(estimateRoc(5, 65535, 32767)).toBe(5);
  });

  it('follows a sequence wrap and places a late packet from before it', () => {
    const t = new PacketIndexTracker();
    expect(t.highest).toBe(-1);
    for (const seq of [65533, 65534]) t.update(t.estimate(seq));
    expect(t.estimate(0)).toBe(65536);
    t.update(65536);
    expect(t.rolloverCounter).toBe(1);
    expect(t.estimate(65535)).toBe(65535); // reordered, sent before the wrap
    t.update(65535); // older: s_l and ROC stay
    expect(t.highest).toBe(65536);
    expect(t.estimate(1)).toBe(65537);
  });

  it('starts from the first packet and ROC 0 unless told otherwise', () => {
    const t = new PacketIndexTracker();
    expect(t.estimate(40000)).toBe(40000);
    t.update(40000);
    expect(t.estimate(1000)).toBe(65536 + 1000); // 40000 - 32768 > 1000: next ROC
    const u = new PacketIndexTracker(7);
    expect(u.estimate(3)).toBe(7 * 65536 + 3);
  });

  it('a packet estimated before the context started gets a negative index', () => {
    const t = new PacketIndexTracker();
    t.update(10);
    expect(t.estimate(60000)).toBe(-65536 + 60000);
  });
});
