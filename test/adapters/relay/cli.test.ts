/** `iolus relay`: flags checked by zod (each problem names its flag), the key source injectable. */
import { describe, expect, it } from 'vitest';
import { run, noLocalAgent } from '../../../src/cli/commands/relay.js';
import { ValidationError, UsageError } from '../../../src/errors.js';
import type { SrtpRelay } from '../../../src/adapters/relay/relay.js';
import { UdpCollector } from '../../../integration/lib/media.js';
import { sourceOf } from '../support/ring.js';
import { groupKeyEpoch } from '../support/keys.js';
import { rtp } from '../support/rtp.js';

async function problems(args: string[]): Promise<string[]> {
  try {
    await run(args, { openKeySource: async () => sourceOf([]), signal: AbortSignal.abort(), stdout: { write: () => true } });
  } catch (err) {
    if (err instanceof ValidationError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('iolus relay flags', () => {
  const base = ['--group', 'media', '--listen', '127.0.0.1:5004', '--to', '192.0.2.7:5004'];

  it('names the flag of every bad value', async () => {
    expect(await problems(['--listen', '127.0.0.1:5004', '--to', '192.0.2.7:5004'])).toEqual(['--group: required (the group name)']);
    expect((await problems(['--group', 'media', '--listen', 'nope', '--to', '192.0.2.7:5004']))[0]).toMatch(/^--listen: expected host:port/);
    expect((await problems([...base.slice(0, 4), '--to', '192.0.2.7:99999']))[0]).toMatch(/^--to: port 99999 is not in 1\.\.65535/);
    expect((await problems([...base.slice(0, 4), '--to', '[zz]:5']))[0]).toMatch(/^--to: "zz" is not an IPv6 address/);
    expect((await problems([...base, '--profile', 'AES_256_CM_HMAC_SHA1_80']))[0]).toMatch(/^--profile: must be one of AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM/);
    expect((await problems([...base, '--replay-window', '100']))[0]).toMatch(/^--replay-window: must be a multiple of 32/);
    expect((await problems([...base, '--rtcp-to', 'x']))[0]).toMatch(/^--rtcp-to: expected host:port/);
  });

  it('keeps plain RTP on this host: the plain side must be loopback', async () => {
    expect(await problems(['--group', 'g', '--listen', '0.0.0.0:5004', '--to', '192.0.2.7:5004'])).toEqual([
      '--listen: plain RTP stays on this host: use a loopback address (127.0.0.1, ::1 or localhost), got 0.0.0.0',
    ]);
    expect((await problems(['--group', 'g', '--decrypt', '--listen', '0.0.0.0:5004', '--to', '192.0.2.7:5004']))[0]).toMatch(/^--to: plain RTP stays on this host/);
    expect(await problems(['--group', 'g', '--decrypt', '--listen', '0.0.0.0:0', '--to', 'localhost:5004'])).toEqual([]);
  });

  it('says clearly when there is no local agent for the group', async () => {
    await expect(noLocalAgent('media')).rejects.toThrow('no local agent for group media');
    process.env.IOLUS_RUN_DIR = '/nonexistent/iolus-run';
    await expect(run(base, { signal: AbortSignal.abort(), stdout: { write: () => true } })).rejects.toThrow(/no local agent for group media \(no socket at \/nonexistent\/iolus-run\/media.sock\)/);
    delete process.env.IOLUS_RUN_DIR;
    await expect(run(base, { openKeySource: async () => { throw new Error('ECONNREFUSED /run/iolus.sock'); }, stdout: { write: () => true } })).rejects.toThrow(
      /^no local agent for group media: ECONNREFUSED/,
    );
  });

  it('runs a relay keyed by the injected source until stopped, then prints its counters', async () => {
    const sink = await UdpCollector.open();
    const app = await UdpCollector.open();
    const ctl = new AbortController();
    let out = '';
    let relay: SrtpRelay | undefined;
    const now = Date.now();
    const source = sourceOf([groupKeyEpoch(9, { notBefore: now - 1000, notAfter: now + 60_000, graceMs: 1000 })]);
    const done = run(['--group', 'media', '--listen', '127.0.0.1:0', '--to', `127.0.0.1:${sink.port}`, '--mki'], {
      openKeySource: async (g) => (g === 'media' ? source : sourceOf([])),
      signal: ctl.signal,
      onListening: (r) => (relay = r),
      stdout: { write: (s: string) => (out += s) },
    });
    while (!relay) await new Promise((r) => setTimeout(r, 5));
    await app.send(rtp({ ssrc: 1, seq: 1 }), relay.address!.port);
    expect(await sink.waitFor(1, 2000)).toBe(1);
    expect(sink.packets[0]!.data.readUInt32BE(sink.packets[0]!.data.length - 14)).toBe(9); // MKI = epoch, before the tag
    ctl.abort();
    expect(await done).toBe(0);
    expect(out).toMatch(/^iolus relay: plain RTP in on 127\.0\.0\.1:\d+, SRTP out to 127\.0\.0\.1:\d+, AES_CM_128_HMAC_SHA1_80 with MKI, group media\n/);
    const counters = JSON.parse(out.split('\n')[1]!) as { packetsIn: number; packetsOut: number; perEpoch: { epoch: number }[] };
    expect([counters.packetsIn, counters.packetsOut, counters.perEpoch[0]!.epoch]).toEqual([1, 1, 9]);
    await sink.close();
    await app.close();
  });
});
