/**
 * Command lines for gst-launch-1.0 and ffmpeg: the key where each tool reads it, in the form
 * it wants (GStreamer hex, ffmpeg base64, SDES in the SDP); payload types and SSRCs as the
 * other tool expects them. (Integration tests run them: integration/media-keyservice.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { ffmpegReceiverCommand, ffmpegSenderCommand, receiverSdp } from '../../../src/adapters/ffmpeg/commands.js';
import { gstReceiverCommand, gstSenderCommand } from '../../../src/adapters/gstreamer/pipelines.js';
import { DEFAULT_VIDEO } from '../../../src/adapters/pipeline/media.js';
import { ValidationError } from '../../../src/errors.js';

const key = Uint8Array.from({ length: 30 }, (_, i) => i);
const hex = Buffer.from(key).toString('hex');
const b64 = Buffer.from(key).toString('base64');
const mki = Uint8Array.from([0, 0, 0, 7]);
const to = { host: '127.0.0.1', port: 5004 };

describe('GStreamer', () => {
  it('sender: JPEG over RTP (pt 26) from I420, srtpenc keyed in hex with cipher, auth and MKI', () => {
    const c = gstSenderCommand({ media: 'video', video: DEFAULT_VIDEO, ssrc: 0xdeadbeef, to, frames: 30, srtp: { suite: 'AES_CM_128_HMAC_SHA1_32', key, mki } });
    expect(c.tool).toBe('gst-launch-1.0');
    const a = c.args.join(' ');
    expect(a).toContain('videotestsrc is-live=true pattern=ball num-buffers=30 ! video/x-raw,format=I420,width=160,height=120,framerate=10/1 ! jpegenc');
    expect(a).toContain(`rtpjpegpay pt=26 ssrc=${0xdeadbeef} mtu=1200 ! e.rtp_sink_0 srtpenc name=e key=${hex} rtp-cipher=aes-128-icm rtp-auth=hmac-sha1-32 rtcp-cipher=aes-128-icm rtcp-auth=hmac-sha1-80 mki=00000007 e.rtp_src_0 ! udpsink host=127.0.0.1 port=5004`);
  });

  it('sender without SRTP (relay mode): plain RTP straight to udpsink; audio as 20 ms PCMU', () => {
    const c = gstSenderCommand({ media: 'audio', video: DEFAULT_VIDEO, ssrc: 7, to });
    const a = c.args.join(' ');
    expect(a).not.toContain('srtpenc');
    expect(a).toContain('audiotestsrc is-live=true wave=sine freq=440 samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay pt=0 ssrc=7');
  });

  it('receiver: the key in srtpdec caps for the sender\'s SSRC; SRTCP to a fakesink; frames to stdout', () => {
    const c = gstReceiverCommand({ media: 'video', listen: { host: '127.0.0.1', port: 6000 }, ssrc: 42, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', key } });
    expect(c.args[0]).toBe('-q');
    const caps = c.args.find((x) => x.startsWith('caps='))!;
    expect(caps).toBe(`caps=application/x-srtp, media=(string)video, clock-rate=(int)90000, encoding-name=(string)JPEG, payload=(int)26, ssrc=(uint)42, srtp-key=(buffer)${hex}, srtp-cipher=(string)aes-128-icm, srtp-auth=(string)hmac-sha1-80, srtcp-cipher=(string)aes-128-icm, srtcp-auth=(string)hmac-sha1-80`);
    const a = c.args.join(' ');
    expect(a).toContain('srtpdec name=d d.rtp_src ! rtpjpegdepay ! jpegdec ! videoconvert ! videoscale ! video/x-raw,format=GRAY8,width=64,height=48 ! fdsink fd=1 sync=false d.rtcp_src ! fakesink');
  });

  it('receiver without SRTP takes any SSRC; with SRTP it needs one', () => {
    const c = gstReceiverCommand({ media: 'audio', listen: { host: '127.0.0.1', port: 6000 } });
    expect(c.args.find((x) => x.startsWith('caps='))).toBe('caps=application/x-rtp, media=(string)audio, clock-rate=(int)8000, encoding-name=(string)PCMU, payload=(int)0');
    expect(() => gstReceiverCommand({ media: 'audio', listen: { host: '127.0.0.1', port: 6000 }, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', key } })).toThrow(ValidationError);
  });
});

describe('ffmpeg', () => {
  it('sender: RFC 2435 JPEG (standard Huffman tables, both quantisers), -srtp_out_params base64, RTCP muxed on the RTP port', () => {
    const c = ffmpegSenderCommand({ media: 'video', video: DEFAULT_VIDEO, ssrc: 0xdeadbeef, to, frames: 30, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', key } });
    expect(c.tool).toBe('ffmpeg');
    const a = c.args.join(' ');
    expect(a).toContain('-re -f lavfi -i testsrc=size=160x120:rate=10 -frames:v 30 -an -c:v mjpeg -huffman default -force_duplicated_matrix 1 -pix_fmt yuvj420p');
    // ffmpeg's -ssrc is a signed 32-bit option.
    expect(a).toContain(`-f rtp -ssrc ${0xdeadbeef | 0} -payload_type 26 -srtp_out_suite AES_CM_128_HMAC_SHA1_80 -srtp_out_params ${b64} srtp://127.0.0.1:5004?rtcpport=5004&pkt_size=1200`);
  });

  it('sender refuses what ffmpeg cannot do: GCM, MKI', () => {
    const spec = { media: 'audio' as const, video: DEFAULT_VIDEO, ssrc: 1, to };
    expect(() => ffmpegSenderCommand({ ...spec, srtp: { suite: 'AEAD_AES_128_GCM', key: key.subarray(0, 28) } })).toThrow(/ffmpeg has no SRTP suite 'AEAD_AES_128_GCM'/);
    expect(() => ffmpegSenderCommand({ ...spec, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', key, mki } })).toThrow(/ffmpeg cannot send or read an MKI/);
    expect(ffmpegSenderCommand(spec).args.at(-1)).toBe('rtp://127.0.0.1:5004?rtcpport=5004&pkt_size=1200');
  });

  it('receiver: an SDP file with a=crypto (written 0600 by the launcher), frames to stdout', () => {
    const spec = { media: 'video' as const, listen: { host: '127.0.0.1', port: 6000 }, srtp: { suite: 'AES_CM_128_HMAC_SHA1_80', key } };
    expect(receiverSdp(spec)).toBe([
      'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=iolus pipeline', 'c=IN IP4 127.0.0.1', 't=0 0',
      'm=video 6000 RTP/SAVP 26', 'a=rtpmap:26 JPEG/90000', `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${b64}`, '',
    ].join('\n'));
    const c = ffmpegReceiverCommand(spec);
    expect(c.files?.['in.sdp']).toBe(receiverSdp(spec));
    expect(c.args).toContain('{dir}/in.sdp');
    expect(c.args).not.toContain('nobuffer');
    expect(c.args.slice(-10).join(' ')).toBe('-an -vf extractplanes=y,scale=64:48 -pix_fmt gray -fps_mode passthrough -f rawvideo pipe:1');
    expect(receiverSdp({ media: 'audio', listen: { host: '::1', port: 7000 } })).toContain('c=IN IP6 ::1\nt=0 0\nm=audio 7000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n');
  });
});
