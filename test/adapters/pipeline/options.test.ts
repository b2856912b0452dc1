/** Pipeline options: zod names the option of every problem; defaults and parsing. */
import { describe, expect, it } from 'vitest';
import { parsePipelineOptions } from '../../../src/adapters/pipeline/options.js';

function problems(input: Record<string, unknown>): string[] {
  const r = parsePipelineOptions(input);
  return r.ok ? [] : r.problems;
}

const send = { role: 'send', tool: 'gst', group: 'media', to: '127.0.0.1:5004' };
const receive = { role: 'receive', tool: 'ffmpeg', group: 'media', listen: '127.0.0.1:5004' };

describe('pipeline options', () => {
  it('fills defaults: relay mode, video 160x120 at 10 fps, AES_CM_128_HMAC_SHA1_80, a random SSRC, 30 s key wait', () => {
    const r = parsePipelineOptions(send);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.options).toMatchObject({ mode: 'relay', media: 'video', profile: 'AES_CM_128_HMAC_SHA1_80', mki: false, video: { width: 160, height: 120, fps: 10 }, keyWaitMs: 30_000, to: { host: '127.0.0.1', port: 5004 } });
    expect(r.options.ssrc).toBeGreaterThan(0);
    expect(r.options.ssrc).toBeLessThanOrEqual(0xffffffff);
  });

  it('takes CLI strings: hex SSRC, numbers, seconds', () => {
    const r = parsePipelineOptions({ ...send, ssrc: '0x1234abcd', frames: '50', duration: '3', fps: '25', 'key-wait': '0' });
    expect(r.ok && r.options).toMatchObject({ ssrc: 0x1234abcd, frames: 50, durationMs: 3000, video: { fps: 25 }, keyWaitMs: 0 });
  });

  it('names the option of every problem', () => {
    expect(problems({ role: 'send', group: 'media', to: '127.0.0.1:1' })).toEqual(['tool: required (one of gst, ffmpeg)']);
    expect(problems({ ...send, tool: 'vlc' })).toEqual(['tool: must be one of gst, ffmpeg, got "vlc"']);
    expect(problems({ ...send, group: 'Not A Group' })[0]).toMatch(/^group: /);
    expect(problems({ ...send, to: undefined })).toEqual(['to: required to send (host:port the SRTP goes to)']);
    expect(problems({ ...send, listen: '127.0.0.1:6' })).toEqual(['listen: only for receive (a sender sends to --to)']);
    expect(problems({ ...receive, listen: undefined })).toEqual(['listen: required to receive (host:port the SRTP arrives on)']);
    expect(problems({ ...receive, frames: 10 })).toEqual(['frames: only for send']);
    expect(problems({ ...receive, listen: 'localhost:5004' })).toEqual(['listen: must be an IP address to bind, got localhost']);
    expect(problems({ ...send, to: '127.0.0.1:99999' })[0]).toMatch(/^to: port 99999 is not in 1\.\.65535/);
    expect(problems({ ...send, ssrc: '0x1FFFFFFFF' })[0]).toMatch(/^ssrc: must be a 32-bit number/);
    expect(problems({ ...send, fps: 0 })).toEqual(['fps: must be at least 1']);
    expect(problems({ ...send, width: 'wide' })).toEqual(['width: must be a whole number (pixels)']);
    expect(problems({ ...send, bogus: 1 })[0]).toMatch(/bogus/);
  });

  it('knows what each mode and tool can do', () => {
    expect(problems({ ...send, profile: 'AES_256_CM_HMAC_SHA1_80' })).toEqual([
      'profile: the relay (werift) runs AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM only; AES_256_CM_HMAC_SHA1_80 needs --mode direct',
    ]);
    expect(problems({ ...send, mode: 'direct', profile: 'AES_256_CM_HMAC_SHA1_80' })).toEqual([]);
    expect(problems({ ...send, tool: 'ffmpeg', mode: 'direct', profile: 'AEAD_AES_128_GCM' })[0]).toMatch(/^profile: ffmpeg has no AEAD_AES_128_GCM/);
    expect(problems({ ...send, tool: 'ffmpeg', mode: 'direct', mki: true })[0]).toMatch(/^mki: ffmpeg cannot send or read an MKI/);
    expect(problems({ ...send, tool: 'ffmpeg', mode: 'relay', mki: true })).toEqual([]);
    expect(problems({ ...receive, tool: 'gst', mode: 'direct' })[0]).toMatch(/^ssrc: required for a GStreamer receiver in direct mode/);
    expect(problems({ ...receive, tool: 'gst', mode: 'relay' })).toEqual([]);
    expect(problems({ ...send, media: 'audio', pattern: 2 })).toEqual(['pattern: only for video']);
  });
});
