/**
 * keyd under bad input (issue 3): what an unauthenticated, unauthorized or hostile peer sends
 * must be refused and counted, and the daemon must go on serving. Three namespaces on a bridge:
 *
 *   hC 10.X.Y.1: controller ctl alone (multicast 239.78.0.1:17101, datagram port 7444), so the
 *                kernel's UDP counters of hC are ctl's own
 *   hA 10.X.Y.2: intermediary i-a (a member of ctl's group), members m-c1 (at ctl), m-a1 (at i-a)
 *   hB 10.X.Y.3: the probe: HTTPS clients and the datagram flooder
 *
 * Control plane: no client certificate and a certificate of another CA fail the handshake
 * (iolus_tls_refused_total); a valid certificate outside the ACL gets 403 with the reason;
 * malformed and oversized bodies get 400 (iolus_http_bad_requests_total by cause); a burst of
 * joins gets 429 past the burst (iolus_join_refused_total{reason="rate-limited"}).
 *
 * Subgroup plane: 10k random datagrams and 10k well-formed, agent-signed-looking datagrams under
 * a random Ed25519 key (heartbeats, GRP_END, key updates, method-2 data), each at the agent's
 * datagram port and at the multicast group. Every one is counted in
 * iolus_messages_dropped_total (the controller's, and i-a's as the parent subgroup's member),
 * up to what the kernel itself dropped for full buffers; no member believes a forged GRP_END or
 * key update; afterwards a new member joins and data flows.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomKey } from '../src/crypto/bytes.js';
import { generateSigningKey, signBytes } from '../src/crypto/sign.js';
import { sealDataUnit, encodeDataUnit } from '../src/protocol/dataUnit.js';
import { ContentType } from '../src/wire/data.js';
import { EndReason, encodeGroupEnd } from '../src/wire/groupEnd.js';
import { AGENT_SENDER, groupIdFor, MessageType, subgroupIdFor, SUITE_AES256GCM_ED25519, WIRE_VERSION, type Header } from '../src/wire/header.js';
import { encodeHeartbeat } from '../src/wire/heartbeat.js';
import { encodeJoinKeyUpdate, encodeLeaveKeyUpdate, RekeyReason } from '../src/wire/keyUpdate.js';
import { createSite, type NetnsHost, type Site } from './lib/netns.js';
import {
  diff, exitWithin, kernelUdpDrops, keydConfig, KeydTestbed, makePki, sum, writeDatagrams,
  type DaemonProc, type KeydPki, type MemberProc, type MetricSamples, type Probe,
} from './lib/keyd.js';

const GROUP = 'hostile';
const PORT = 7443;
const DATAGRAM_PORT = 7444;
const GROUP_ADDRESS = '239.78.0.1';
const GROUP_PORT = 17101;
const FLOOD = 10_000;
const EMPTY = 20;
const OVERSIZED = 5;
/**
 * Sending pace (datagrams per batch, pause after each): fast enough to be a flood, slow enough
 * that the receivers' 4 MiB socket buffers rarely overflow. Forged messages cost every receiver
 * an Ed25519 verification (two receivers share hA's core with the rest), so they go slower.
 */
const RANDOM_PACE = { batch: 50, pauseMs: 2 };
const FORGED_PACE = { batch: 10, pauseMs: 2 };

let site: Site;
let bed: KeydTestbed;
let otherCa: KeydPki;
let hC: NetnsHost;
let hA: NetnsHost;
let hB: NetnsHost;
let ctl: DaemonProc;
let ia: DaemonProc;
let probe: Probe;
const m: Record<string, MemberProc> = {};

const admin = () => bed.pki.tls('admin');
const metricsOf = (d: DaemonProc): Promise<MetricSamples> => probe.metrics(d.url, admin());
const dropped = async (d: DaemonProc) => (await metricsOf(d)).by('iolus_messages_dropped_total', 'cause');
const post = (path: string, name: string, body: string, contentType?: string) =>
  probe.https(`${ctl.url}${path}`, { method: 'POST', body, tls: bed.pki.tls(name), ...(contentType ? { contentType } : {}) });
const joinBody = (role = 'member') => JSON.stringify({ group: GROUP, role });

/** 10k random datagrams: EMPTY empty ones, OVERSIZED over 65,000 bytes, the rest 1–1,400 random bytes. */
function randomDatagrams(): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let i = 0; i < EMPTY; i++) list.push(new Uint8Array(0));
  for (let i = 0; i < OVERSIZED; i++) list.push(randomBytes(65_100));
  while (list.length < FLOOD) list.push(randomBytes(1 + Math.floor(Math.random() * 1400)));
  return list;
}

/**
 * 10k well-formed messages of ctl's subgroup that claim to come from its agent (sender 0), each
 * signed by a random Ed25519 key: heartbeats, GRP_END, join and leave key updates, method-2 data.
 */
function forgedDatagrams(): Uint8Array[] {
  const key = generateSigningKey();
  const sign = (c: Uint8Array) => signBytes(key, c);
  const group = groupIdFor(GROUP);
  const subgroup = subgroupIdFor(GROUP, 'ctl');
  const list: Uint8Array[] = [];
  for (let i = 0; i < FLOOD; i++) {
    const h = (type: MessageType): Header => ({
      version: WIRE_VERSION, suite: SUITE_AES256GCM_ED25519, type, group, subgroup, sender: AGENT_SENDER,
      epoch: 1_000 + i, sequence: Date.now() * 1000 + i, timestamp: Date.now(),
    });
    switch (i % 5) {
      case 0:
        list.push(encodeHeartbeat(h(MessageType.Heartbeat), { groupEpoch: 0, intervalMs: 300 }, sign));
        break;
      case 1:
        list.push(encodeGroupEnd(h(MessageType.GroupEnd), { reason: EndReason.Shutdown }, sign));
        break;
      case 2:
        list.push(encodeJoinKeyUpdate(h(MessageType.JoinKeyUpdate), 999 + i, () => randomBytes(60), sign));
        break;
      case 3:
        list.push(encodeLeaveKeyUpdate(h(MessageType.LeaveKeyUpdate), { reason: RekeyReason.Expel, partial: false, part: 0, parts: 1, memberIds: [1, 2, 3] }, () => randomBytes(60), sign));
        break;
      default: {
        const unit = sealDataUnit(group, ContentType.Application, { subgroup, member: 1, seq: i }, new TextEncoder().encode(`forged ${i}`));
        list.push(encodeDataUnit({ ...h(MessageType.DataMethod2), type: MessageType.DataMethod2 }, unit, randomKey(), () => {}, sign));
      }
    }
  }
  return list;
}

/** Floods `target` with `file`'s datagrams from hB; returns the drops counted by each daemon and the kernel's drops per host. */
async function flood(file: string, target: 'port' | 'group', pace: { batch: number; pauseMs: number }) {
  // Quiet first: nothing of ours in flight when the counters are read.
  const before = { ctl: await dropped(ctl), ia: await dropped(ia), kC: await kernelUdpDrops(site, hC), kA: await kernelUdpDrops(site, hA) };
  const r = target === 'port'
    ? await probe.udp(file, hC.ipv4, DATAGRAM_PORT, pace)
    : await probe.udp(file, GROUP_ADDRESS, GROUP_PORT, { interface: hB.ipv4, ...pace });
  expect(r).toMatchObject({ sent: FLOOD, errors: 0 });
  // Until the counts settle (the daemon works through its socket buffer).
  let last = -1;
  let now = { ctl: before.ctl, ia: before.ia };
  for (let i = 0; i < 100; i++) {
    await new Promise((res) => setTimeout(res, 200));
    now = { ctl: await dropped(ctl), ia: await dropped(ia) };
    const total = sum(diff(now.ctl, before.ctl)) + sum(diff(now.ia, before.ia));
    if (total === last) break;
    last = total;
  }
  return {
    ctl: diff(now.ctl, before.ctl),
    ia: diff(now.ia, before.ia),
    kernelC: (await kernelUdpDrops(site, hC)) - before.kC,
    kernelA: (await kernelUdpDrops(site, hA)) - before.kA,
  };
}

describe('keyd under bad input', () => {
  beforeAll(async () => {
    site = await createSite({ hosts: ['hC', 'hA', 'hB'], prefix: 'iolkdbad', ipv6: false });
    [hC, hA, hB] = site.hosts as [NetnsHost, NetnsHost, NetnsHost];
    bed = await KeydTestbed.create(site, {
      group: GROUP,
      principals: [
        { name: 'ctl', role: 'controller', ip: [hC.ipv4] },
        { name: 'i-a', role: 'intermediary', ip: [hA.ipv4] },
        { name: 'i-x', role: 'intermediary' },
        { name: 'admin', role: 'admin' },
        { name: 'eve', role: 'member' },
        ...['m-c1', 'm-a1', 'm-new', 'm-burst', 'm-bad'].map((name) => ({ name, role: 'member' as const })),
      ],
    });
    // Another group CA, with a certificate of the very same name and group: only the CA differs.
    otherCa = await makePki(bed.file('other-pki'), GROUP, [{ name: 'm-c1', role: 'member' }]);
    const acl = [{ principal: 'm-*', roles: ['member'] }, { principal: 'admin', roles: ['admin'] }];
    ctl = await bed.daemon(hC, keydConfig(bed.pki, {
      name: 'ctl', role: 'controller', host: hC.ipv4, port: PORT, datagramPort: DATAGRAM_PORT,
      transport: { kind: 'multicast', address: GROUP_ADDRESS, port: GROUP_PORT, interface: hC.ipv4 },
      acl: [...acl, { principal: 'i-a', roles: ['intermediary'] }],
      limits: { joinsPerMinute: 60, joinBurst: 5, bodyLimit: 4096 },
      // No group key roll while the floods are counted (its announcements' repeats are dropped as duplicates).
      groupKey: { period: '1h' },
    }));
    ia = await bed.daemon(hA, keydConfig(bed.pki, {
      name: 'i-a', role: 'intermediary', host: hA.ipv4, port: PORT, parentUrl: ctl.url,
      transport: { kind: 'multicast', address: '239.78.0.2', port: 17102, interface: hA.ipv4 }, acl,
    }));
    [m['m-c1'], m['m-a1']] = await Promise.all([bed.member(hA, 'm-c1', ctl.url), bed.member(hA, 'm-a1', ia.url)]);
    await ia.waitLog({ event: 'parent-join' });
    probe = await bed.probe(hB);
  });

  afterAll(async () => {
    await bed?.teardown();
    await site?.teardown();
    expect(bed?.live.map((p) => p.command) ?? []).toEqual([]);
  });

  it('refuses the handshake of a client without a certificate or with one of another CA, and counts it', async () => {
    const before = (await metricsOf(ctl)).get('iolus_tls_refused_total');
    const none = await probe.https(`${ctl.url}/healthz`, { tls: { ca: bed.pki.ca } });
    expect(none.ok, JSON.stringify(none)).toBe(false);
    expect(`${none.code} ${none.error}`).toMatch(/certificate required|ECONNRESET|socket hang up/i);
    const noneJoin = await probe.https(`${ctl.url}/v1/groups/${GROUP}/join`, { method: 'POST', body: joinBody(), tls: { ca: bed.pki.ca } });
    expect(noneJoin.ok).toBe(false);
    const foreign = await probe.https(`${ctl.url}/v1/groups/${GROUP}/join`, { method: 'POST', body: joinBody(), tls: { ...otherCa.tls('m-c1'), ca: bed.pki.ca } });
    expect(foreign.ok, JSON.stringify(foreign)).toBe(false);
    expect(`${foreign.code} ${foreign.error}`).toMatch(/unknown ca|ECONNRESET|socket hang up/i);
    expect((await metricsOf(ctl)).get('iolus_tls_refused_total') - before).toBe(3);
  });

  it('answers a valid certificate outside the ACL with 403 and the reason', async () => {
    const eve = await post(`/v1/groups/${GROUP}/join`, 'eve', joinBody());
    expect(eve.status).toBe(403);
    expect(JSON.parse(eve.body!)).toMatchObject({ error: 'forbidden', reason: expect.stringMatching(/no ACL entry matches principal eve/) });
    const ix = await post(`/v1/groups/${GROUP}/join`, 'i-x', joinBody('intermediary'));
    expect(ix.status).toBe(403);
    expect(JSON.parse(ix.body!).reason).toMatch(/no ACL entry matches principal i-x/);
    const wrongRole = await post(`/v1/groups/${GROUP}/join`, 'm-bad', joinBody('intermediary'));
    expect(wrongRole.status).toBe(403);
    expect(JSON.parse(wrongRole.body!).reason).toMatch(/carries role member/);
    const metrics = await probe.https(`${ctl.url}/metrics`, { tls: bed.pki.tls('m-bad') });
    expect(metrics.status).toBe(403);
    expect(JSON.parse(metrics.body!).reason).toMatch(/role member may not use \/metrics/);
    const expel = await post('/v1/admin/members/1/expel', 'm-bad', '{}');
    expect(expel.status).toBe(403);
    expect((await metricsOf(ctl)).get('iolus_join_refused_total', { reason: 'acl' })).toBe(3);
  });

  it('answers malformed and oversized bodies with 400 and counts them', async () => {
    const before = (await metricsOf(ctl)).by('iolus_http_bad_requests_total', 'cause');
    const broken = await post(`/v1/groups/${GROUP}/join`, 'm-bad', '{"group": "hostile", "role": ');
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body!).error).toBe('bad-request');
    const notJson = await post(`/v1/groups/${GROUP}/refresh`, 'm-bad', 'memberId=1');
    expect(notJson.status).toBe(400);
    const big = await post(`/v1/groups/${GROUP}/join`, 'm-bad', JSON.stringify({ group: GROUP, role: 'member', pad: 'x'.repeat(8_000) }));
    expect(big.status).toBe(400);
    expect(JSON.parse(big.body!).reason).toMatch(/larger than 4096 bytes/);
    const wrongShape = await post(`/v1/groups/${GROUP}/refresh`, 'm-bad', JSON.stringify({ memberId: 'one' }));
    expect(wrongShape.status).toBe(400);
    expect(JSON.parse(wrongShape.body!).reason).toMatch(/memberId/);
    const after = (await metricsOf(ctl)).by('iolus_http_bad_requests_total', 'cause');
    expect(diff(after, before)).toEqual({ malformed: 2, oversized: 1 });
  });

  it('rate-limits joins per principal (429 with retry-after past the burst)', async () => {
    const results = await probe.httpsMany(`${ctl.url}/v1/groups/${GROUP}/join`, { method: 'POST', body: joinBody(), tls: bed.pki.tls('m-burst') }, 8);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(Number(results[5]!.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(results[5]!.body!)).toMatchObject({ error: 'rate-limited' });
    // Another principal is not affected.
    const other = await post(`/v1/groups/${GROUP}/join`, 'm-bad', joinBody());
    expect(other.status).toBe(200);
    expect((await metricsOf(ctl)).get('iolus_join_refused_total', { reason: 'rate-limited' })).toBe(3);
  });

  describe('10k random datagrams and 10k forged agent messages, at the datagram port and at the group', () => {
    let randomFile: string;
    let forgedFile: string;

    beforeAll(() => {
      randomFile = bed.file('random.bin');
      forgedFile = bed.file('forged.bin');
      writeDatagrams(randomFile, randomDatagrams());
      writeDatagrams(forgedFile, forgedDatagrams());
    });

    it('counts every random datagram at the datagram port', async () => {
      const r = await flood(randomFile, 'port', RANDOM_PACE);
      // Random bytes never decode; empty and oversized ones are refused by the transport first.
      if (r.kernelC === 0) expect(r.ctl).toEqual({ malformed: FLOOD - EMPTY - OVERSIZED, 'transport-empty': EMPTY, 'transport-oversized': OVERSIZED });
      expect(sum(r.ctl) + r.kernelC, JSON.stringify(r)).toBe(FLOOD);
      expect(r.ia).toEqual({});
    });

    it('counts every random datagram at the multicast group, at the agent and at the intermediary', async () => {
      const r = await flood(randomFile, 'group', RANDOM_PACE);
      expect(sum(r.ctl) + r.kernelC, JSON.stringify(r)).toBe(FLOOD);
      if (r.kernelA === 0) expect(r.ia).toEqual({ 'parent-malformed': FLOOD - EMPTY - OVERSIZED, 'parent-transport-empty': EMPTY, 'parent-transport-oversized': OVERSIZED });
      // i-a hears the group as a member of ctl's subgroup; the kernel's drops in hA include other sockets'.
      expect(sum(r.ia), JSON.stringify(r)).toBeLessThanOrEqual(FLOOD);
      expect(sum(r.ia) + r.kernelA, JSON.stringify(r)).toBeGreaterThanOrEqual(FLOOD);
    });

    it('counts every forged agent message at the datagram port', async () => {
      const r = await flood(forgedFile, 'port', FORGED_PACE);
      expect(sum(r.ctl) + r.kernelC, JSON.stringify(r)).toBe(FLOOD);
      expect(r.ctl['bad-signature'], JSON.stringify(r)).toBe(sum(r.ctl));
      expect(r.ia).toEqual({});
    });

    it('counts every forged agent message at the multicast group; no member believes one', async () => {
      const r = await flood(forgedFile, 'group', FORGED_PACE);
      expect(sum(r.ctl) + r.kernelC, JSON.stringify(r)).toBe(FLOOD);
      expect(r.ctl['bad-signature'], JSON.stringify(r)).toBe(sum(r.ctl));
      expect(sum(r.ia), JSON.stringify(r)).toBeLessThanOrEqual(FLOOD);
      expect(sum(r.ia) + r.kernelA, JSON.stringify(r)).toBeGreaterThanOrEqual(FLOOD);
      expect(r.ia['parent-bad-signature'] ?? 0).toBe(sum(r.ia));
      for (const x of Object.values(m)) {
        expect(x.proc.running, x.name).toBe(true);
        expect(x.events().filter((e) => e.event === 'state' && e.state !== 'joined'), x.name).toEqual([]);
      }
    });

    it('still serves afterwards: a new member joins and data flows', async () => {
      const fresh = await bed.member(hB, 'm-new', ctl.url);
      m['m-new'] = fresh;
      await fresh.send('after the flood');
      await Promise.all([m['m-c1']!.waitData('after the flood'), m['m-a1']!.waitData('after the flood')]);
      await m['m-a1']!.send('the tree is intact');
      await Promise.all([fresh.waitData('the tree is intact'), m['m-c1']!.waitData('the tree is intact')]);
      const health = await probe.json<{ status: string }>(`${ctl.url}/healthz`, admin());
      expect(health.status).toBe('ok');
      ctl.proc.signal('SIGTERM');
      expect(await exitWithin(ctl.proc, 2_000)).toMatchObject({ exitCode: 0 });
    });
  });
});
