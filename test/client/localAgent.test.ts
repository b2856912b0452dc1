/**
 * The local agent's key API (src/client/localAgent/keyApi.ts) over a real Unix socket and
 * 127.0.0.1, in front of a GroupClient whose ring is fed by a real Originator: every form of
 * key, the answers never stale across an activation or a void (the API and getKey cache what
 * they can), the bearer token on TCP, the rollover events, and the socket's permissions.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { GroupClient } from '../../src/client/client.js';
import { MemberKeys } from '../../src/client/memberKeys.js';
import { Member } from '../../src/client/member.js';
import { deriveKey } from '../../src/client/keyMaterial.js';
import { KeyApi } from '../../src/client/localAgent/keyApi.js';
import { generateSigningKey } from '../../src/crypto/sign.js';
import { fromBase64, toBase64, toHex } from '../../src/crypto/bytes.js';
import { Originator } from '../../src/keyd/groupKey/originator.js';
import { systemClock } from '../../src/util/clock.js';

const GROUP = 'lagent';
const LABEL = 'srtp/AES_CM_128_HMAC_SHA1_80';
const TOKEN = 'a-bearer-token-of-32-characters!';

interface Fake {
  client: GroupClient;
  keys: MemberKeys;
  setStatus(s: string): void;
}

/** A GroupClient without a network: its real getKey/keysFor over a ring we feed. */
function fakeClient(): Fake {
  const member = new Member(GROUP, systemClock);
  const keys = new MemberKeys(member);
  const client = Object.create(GroupClient.prototype) as GroupClient;
  const state = { value: 'joined' };
  Object.assign(client, { keys, member, opts: { group: GROUP }, derivedCache: new WeakMap() });
  Object.defineProperty(client, 'status', { get: () => state.value });
  return { client, keys, setStatus: (s) => (state.value = s) };
}

function get(where: { socketPath: string } | { port: number }, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const opts = 'socketPath' in where ? { socketPath: where.socketPath } : { host: '127.0.0.1', port: where.port };
    http.get({ ...opts, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    }).on('error', reject);
  });
}

const q = (epoch: string | number, format = 'json', extra = '') => `/v1/key?label=${encodeURIComponent(LABEL)}&epoch=${epoch}&format=${format}${extra}`;

describe('local agent key API', () => {
  let dir: string;
  let socketPath: string;
  let api: KeyApi;
  let fake: Fake;
  const signing = generateSigningKey();

  /** Epochs from a real originator: `period` ms each, the first starting `startAgo` ms ago. */
  function feed(o: Originator, at: number): void {
    for (const b of o.tick(at)) fake.keys.onAnnouncement(b);
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'iolus-keyapi-'));
    socketPath = join(dir, 'run', 'agent.sock');
    fake = fakeClient();
    fake.keys.ring.setOriginators([signing.publicKey]);
    api = new KeyApi(fake.client, { socketPath, tcp: { host: '127.0.0.1', port: 0, token: TOKEN } });
    await api.start();
  });

  afterEach(async () => {
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves current, next, previous and by-epoch keys in every form, derived by label', async () => {
    const now = Date.now();
    const o = new Originator(GROUP, signing, { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 }, 0);
    feed(o, now - 65_000); // epoch A: [now-65 s, now-5 s): previous, in its grace
    feed(o, now - 15_000); // epoch B: [now-5 s, now+55 s): current
    feed(o, now + 50_000); // epoch C: from now+55 s: next
    const [a, b, c] = fake.keys.ring.epochs() as [number, number, number];
    expect([b - a, c - b]).toEqual([1, 1]);
    const where = { socketPath };
    for (const [which, epoch, state] of [['previous', a, 'previous'], ['current', b, 'current'], ['next', c, 'next'], [b, b, 'current']] as const) {
      const r = await get(where, q(which));
      expect(r.status, String(which)).toBe(200);
      const k = JSON.parse(r.body) as { epoch: number; state: string; key: string; mki: string; label: string };
      expect(k).toMatchObject({ epoch, state, label: LABEL, mki: toHex(new Uint8Array([epoch >>> 24, (epoch >>> 16) & 255, (epoch >>> 8) & 255, epoch & 255])) });
      expect(k.key).toBe(toBase64(deriveKey(fake.keys.ring.byEpoch(epoch)!, LABEL).key));
      expect(fromBase64(k.key)).toHaveLength(30);
    }
    const cur = toBase64(deriveKey(fake.keys.ring.byEpoch(b)!, LABEL).key);
    expect((await get(where, q('current', 'sdes'))).body).toBe(`inline:${cur}\n`);
    expect((await get(where, q('current', 'sdes', '&mki=1'))).body).toBe(`inline:${cur}|${b >>> 0}:4\n`);
    expect((await get(where, q('current', 'gst'))).body).toBe(`${Buffer.from(cur, 'base64').toString('hex')}\n`);
    expect((await get(where, q('current', 'ffmpeg'))).body).toBe(`${cur}\n`);
    const all = JSON.parse((await get(where, `/v1/keys?label=${encodeURIComponent(LABEL)}`)).body) as { keys: { epoch: number; state: string }[] };
    expect(all.keys.map((k) => [k.epoch, k.state])).toEqual([[a, 'previous'], [b, 'current'], [c, 'next']]);
    // Another label, another key.
    const sframe = JSON.parse((await get(where, `/v1/key?label=sframe&epoch=current`)).body) as { key: string };
    expect(sframe.key).not.toBe(cur);
    expect(fromBase64(sframe.key)).toHaveLength(32);
    expect(api.pulls).toBeGreaterThanOrEqual(9);
  });

  it('refuses what is not a key query, and never answers a cached query once the membership is gone', async () => {
    const o = new Originator(GROUP, signing, { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 }, 0);
    feed(o, Date.now());
    const where = { socketPath };
    expect((await get(where, `/v1/key?label=srtp/NOPE&epoch=current`)).status).toBe(400);
    expect((await get(where, `/v1/key?label=${LABEL}&epoch=zero`)).status).toBe(400);
    expect((await get(where, `/v1/key?label=${LABEL}&epoch=current&what=1`)).status).toBe(400);
    expect((await get(where, `/v1/key?label=srtp/NOPE&epoch=current`)).status, 'a refused query is not remembered').toBe(400);
    expect((await get(where, q(123))).status, 'an epoch not held').toBe(404);
    expect((await get(where, q('next'))).status, 'no next key yet').toBe(404);
    expect((await get(where, '/v1/nothing')).status).toBe(404);
    expect((await get(where, q('current'))).status).toBe(200);
    expect((await get(where, q('current'))).status, 'the same query again (cached)').toBe(200);
    fake.setStatus('removed');
    const r = await get(where, q('current'));
    expect(r.status).toBe(503);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'not-joined' });
    const s = JSON.parse((await get(where, '/v1/status')).body) as { state: string };
    expect(s.state).toBe('removed');
  });

  it('follows an activation and a void: no answer outlives the key it came from', async () => {
    const t0 = Date.now();
    const o = new Originator(GROUP, signing, { periodMs: 1_000, leadMs: 500, graceMs: 200, repeats: 3 }, 0);
    feed(o, t0); // E in force now
    feed(o, t0 + 600); // E+1 from t0+1000
    const [e, e1] = fake.keys.ring.epochs() as [number, number];
    const where = { socketPath };
    const epochOf = async (which: string | number) => {
      const r = await get(where, q(which));
      return r.status === 200 ? (JSON.parse(r.body) as { epoch: number }).epoch : r.status;
    };
    expect(await epochOf('current')).toBe(e);
    expect(await epochOf('next')).toBe(e1);
    // The next key is voided (an expulsion): its replacement, same activation, answers from now on.
    for (const b of o.voidPending(t0 + 700)) fake.keys.onAnnouncement(b);
    const e2 = fake.keys.ring.epoch;
    expect(e2).toBeGreaterThan(e1);
    expect(await epochOf('next')).toBe(e2);
    expect(await epochOf(e1), 'the voided epoch').toBe(404);
    // Bytes handed out are copies: wiping them does not corrupt what the next caller gets.
    const k1 = fake.client.getKey({ label: LABEL, epoch: e2 })!;
    const want = toBase64(k1.key);
    k1.key.fill(0);
    expect(toBase64(fake.client.getKey({ label: LABEL, epoch: e2 })!.key)).toBe(want);
    // Activation (by time): the same query now answers the new epoch.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1_050 - Date.now())));
    expect(await epochOf('current')).toBe(e2);
    expect(await epochOf('previous')).toBe(e);
    expect(JSON.parse((await get(where, q(e2))).body)).toMatchObject({ state: 'current', key: want });
    // Past the grace: the old key is gone.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1_250 - Date.now())));
    expect(await epochOf('previous')).toBe(404);
    expect(await epochOf(e)).toBe(404);
  });

  it('on 127.0.0.1 answers only with the bearer token; the socket is 0600', async () => {
    const o = new Originator(GROUP, signing, { periodMs: 60_000, leadMs: 10_000, graceMs: 10_000, repeats: 3 }, 0);
    feed(o, Date.now());
    const port = api.tcpPort!;
    expect((await get({ port }, q('current'))).status).toBe(401);
    expect((await get({ port }, q('current'), { authorization: `Bearer ${TOKEN.slice(1)}x` })).status).toBe(401);
    expect((await get({ port }, '/v1/status')).status, 'status too').toBe(401);
    const ok = await get({ port }, q('current'), { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.type).toBe('application/json');
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
    expect(() => new KeyApi(fake.client, { socketPath: join(dir, 'x.sock'), tcp: { host: '10.0.0.1', port: 1, token: TOKEN } })).toThrow(/127\.0\.0\.1 or ::1/);
    expect(() => new KeyApi(fake.client, { socketPath: join(dir, 'x.sock'), tcp: { host: '127.0.0.1', port: 1, token: 'short' } })).toThrow(/at least 16/);
  });

  it('streams rollovers: key (a new epoch held) and activate (a new epoch in force)', async () => {
    const t0 = Date.now();
    const o = new Originator(GROUP, signing, { periodMs: 1_000, leadMs: 500, graceMs: 200, repeats: 3 }, 0);
    feed(o, t0);
    const events: { event: string; data: { epoch: number } }[] = [];
    const req = http.get({ socketPath, path: '/v1/events', agent: false });
    const res = await new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    expect(res.headers['content-type']).toBe('text/event-stream');
    let buf = '';
    res.on('data', (c: Buffer) => {
      buf += c.toString();
      for (let i; (i = buf.indexOf('\n\n')) >= 0;) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) events.push({ event: ev, data: JSON.parse(data) as { epoch: number } });
      }
    });
    feed(o, t0 + 600);
    const next = fake.keys.ring.epoch;
    const held = fake.keys.ring.byEpoch(next)!;
    fake.client.emit('key', { epoch: next, notBefore: held.notBefore, notAfter: held.notAfter });
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 1_300 - Date.now())));
    req.destroy();
    expect(events.filter((e) => e.event === 'key').map((e) => e.data.epoch)).toEqual([next]);
    expect(events.filter((e) => e.event === 'activate').map((e) => e.data.epoch)).toContain(next);
  });
});
