/** A tool's failure in one sentence a person can act on. */
import { describe, expect, it } from 'vitest';
import { describeExit, describeSpawnError, diagnose, isNoise, SRTP_FAILURE } from '../../../src/adapters/pipeline/errors.js';

const exit = (stderrTail: string, code: number | null = 1) => ({ code, signal: code === null ? ('SIGSEGV' as const) : null, stopped: false, stderrTail });

describe('tool failures', () => {
  it('names a missing GStreamer element and the package that has it', () => {
    const stderr = 'WARNING: erroneous pipeline: no element "srtpdec"';
    expect(describeExit('gst-launch-1.0', exit(stderr))).toBe('gst-launch-1.0 exited 1: no element srtpdec — install gstreamer1.0-plugins-bad');
    expect(diagnose('gst-launch-1.0', 'WARNING: erroneous pipeline: no element "rtpjpegpay"')).toBe('no element rtpjpegpay — install gstreamer1.0-plugins-good');
  });

  it('recognises gst-launch errors: a busy port, an unlinked pad, any ERROR line', () => {
    expect(diagnose('gst-launch-1.0', 'ERROR: from element /GstPipeline:pipeline0/GstUDPSrc:udpsrc0: Could not get/set settings from/on resource.\nbind: Address already in use')).toMatch(/udpsrc cannot bind its port/);
    expect(diagnose('gst-launch-1.0', 'streaming stopped, reason not-linked (-1)')).toMatch(/not linked/);
    expect(diagnose('gst-launch-1.0', 'ERROR: pipeline could not be constructed: syntax error.')).toBe('pipeline could not be constructed: syntax error.');
  });

  it('recognises ffmpeg errors', () => {
    expect(diagnose('ffmpeg', 'Option srtp_in_suite not found.')).toMatch(/no option srtp_in_suite here .*receivers need an SDP file/);
    expect(diagnose('ffmpeg', "Unknown encoder 'libx264'")).toMatch(/no encoder libx264/);
    expect(diagnose('ffmpeg', '[udp @ 0x1] bind failed: Address already in use')).toMatch(/cannot bind its UDP port/);
    expect(diagnose('ffmpeg', 'HMAC mismatch')).toMatch(/sender and receiver hold different keys/);
    expect(describeExit('ffmpeg', exit('something odd\n[swscaler @ 0x1] deprecated pixel format used, make sure you did set range correctly', 1))).toBe('ffmpeg exited 1: something odd');
  });

  it('says when a tool died of a signal, and what stderr said when nothing is recognised', () => {
    expect(describeExit('gst-launch-1.0', exit('', null))).toBe('gst-launch-1.0 was killed by SIGSEGV (no stderr)');
    expect(describeExit('gst-launch-1.0', exit('just words'))).toBe('gst-launch-1.0 exited 1; stderr ends:\njust words');
  });

  it('names the package of a tool that is not installed', () => {
    const enoent = Object.assign(new Error('spawn gst-launch-1.0 ENOENT'), { code: 'ENOENT' });
    expect(describeSpawnError('gst-launch-1.0', enoent)).toBe('gst-launch-1.0 not found — install gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad (scripts/apt-packages.txt lists them)');
    expect(describeSpawnError('ffmpeg', enoent)).toMatch(/^ffmpeg not found — install ffmpeg/);
  });

  it('counts per-packet SRTP refusals, and keeps them out of error tails', () => {
    const gst = '0:00:01.584582780 2220 0x55 WARN srtpdec gstsrtpdec.c:1440:gst_srtp_dec_decode_buffer:<d> Error authentication packet, dropping';
    expect(SRTP_FAILURE.test(gst)).toBe(true);
    expect(SRTP_FAILURE.test('[srtp @ 0x5] HMAC mismatch')).toBe(true);
    expect(isNoise(gst)).toBe(true);
    expect(isNoise('ERROR: from element')).toBe(false);
  });
});
