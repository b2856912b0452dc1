/**
 * KGRP2 when an originator fails (issue 4): a controller restart keeps epochs increasing, and a
 * killed originator member does not leave anyone without a usable key. Real processes in three
 * namespaces (controller hC, intermediary hI, local agents hM); period 2 s, lead 1 s, grace 1 s.
 *
 * The controller as originator (the default), killed with SIGKILL — what happens, tested:
 *   nobody makes keys while it is down, so members keep the keys they hold and these lapse on
 *   schedule: the newest is current until its notAfter and usable as previous until notAfter +
 *   grace; after that the local agent has no key (404) until the controller is back. Restarted
 *   on the same state directory, it continues above the last epoch it ever made: epochs are
 *   max(last + 1, ⌊now / period⌋, persisted floor), and forced rolls made them run ahead of the
 *   time term, so only the persisted floor (the ledger) keeps them from going back. Members get
 *   keys again as their intermediary rejoins.
 *
 * A member designated as originator (`iolus agent --role originator`, controller config
 * `groupKey.originator: orig`), killed with SIGKILL: the controller, standing by, takes over when
 * the next key is late (half the lead before activation), so every member's agent serves a
 * current key throughout, and the epochs go on without a gap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, type NetnsHost, type Site } from './lib/netns.js';
import { exitWithin, gaps, GroupKeyBed, keydConfig, sleep, until, type AgentProc, type DaemonProc } from './lib/groupKeyHarness.js';

const GROUP = 'gkfail';
const PERIOD = 2_000;
const GRACE = 1_000;
const GROUP_KEY = { period: '2s', lead: '1s', grace: '1s' };
const ROLLS = 8;

let site: Site;
let bed: GroupKeyBed;
let hC: NetnsHost;
let hI: NetnsHost;
let hM: NetnsHost;

const members = [{ principal: 'm-*', roles: ['member'] }, { principal: 'admin', roles: ['admin'] }];

/** A pino line's time (ms). */
const timeOf = (l: Record<string, unknown>) => (typeof l.time === 'number' ? l.time : Date.parse(String(l.time)));

/** Epochs the controller made (its 'group key created' lines). */
const made = (d: DaemonProc) => d.logs().filter((l) => l.event === 'group-key').map((l) => ({ epoch: Number(l.epoch), reason: String(l.reason), t: timeOf(l) }));

/** Polls an agent's key API until `stop()`; records what it served as current and previous. */
function watchApi(a: AgentProc, stop: () => boolean) {
  const samples: { t: number; current?: number; previous?: number; status: number }[] = [];
  const done = (async () => {
    while (!stop()) {
      const [c, p] = await Promise.all([a.key('current'), a.key('previous')]);
      samples.push({ t: Date.now(), status: c.status, ...(c.epoch !== undefined ? { current: c.epoch } : {}), ...(p.epoch !== undefined ? { previous: p.epoch } : {}) });
      await sleep(50);
    }
  })();
  return { samples, done };
}

describe('KGRP2 when the originator fails', () => {
  beforeAll(async () => {
    site = await createSite({ hosts: ['hC', 'hI', 'hM'], prefix: 'iolgkfail', ipv6: false });
    [hC, hI, hM] = site.hosts as [NetnsHost, NetnsHost, NetnsHost];
    bed = await GroupKeyBed.create(site, {
      group: GROUP,
      principals: [
        { name: 'ctl', role: 'controller', ip: [hC.ipv4] },
        { name: 'ia', role: 'intermediary', ip: [hI.ipv4] },
        { name: 'ctl-b', role: 'controller', ip: [hC.ipv4] },
        { name: 'ib', role: 'intermediary', ip: [hI.ipv4] },
        { name: 'orig', role: 'originator' },
        { name: 'admin', role: 'admin' },
        ...['m-1', 'm-2', 'm-3'].map((name) => ({ name, role: 'member' as const })),
      ],
    });
  });

  afterAll(async () => {
    await bed?.teardown();
    await site?.teardown();
  });

  it('the controller (default originator) killed: keys lapse at notAfter + grace; restarted, epochs continue above the last', async () => {
    let ctl = await bed.daemon(hC, keydConfig(bed.pki, {
      name: 'ctl', role: 'controller', host: hC.ipv4, port: 7443, multicast: { address: '239.83.0.1', port: 17301 },
      acl: [...members, { principal: 'ia', roles: ['intermediary'] }], groupKey: GROUP_KEY, stateDir: bed.stateDir('ctl'),
    }));
    const ia = await bed.daemon(hI, keydConfig(bed.pki, {
      name: 'ia', role: 'intermediary', host: hI.ipv4, port: 7443, parentUrl: ctl.url, multicast: { address: '239.83.0.2', port: 17302 },
      acl: members, stateDir: bed.stateDir('ia'),
    }));
    const m1 = await bed.agent(hM, 'm-1', ia.url);
    await until('m-1 holds a current key', async () => (await m1.key('current')).status === 200, 10_000);

    // Forced rolls push the epochs ahead of ⌊now / period⌋ (`iolus roll` once, then the admin API).
    const rolled = [await bed.roll(hC, ctl.url)];
    const probe = await bed.probe(hC);
    for (let i = 1; i < ROLLS; i++) rolled.push((await probe.json<{ epoch: number }>(`${ctl.url}/v1/admin/roll`, bed.pki.tls('admin'), 'POST', {})).epoch);
    expect(gaps(rolled), 'each roll one epoch up').toEqual([]);
    await until('m-1 has the last rolled key in force', async () => ((await m1.key('current')).epoch ?? 0) >= rolled.at(-1)!, 5_000, 50);

    // Down: SIGKILL (no GRP_END). Members keep what they hold; nobody makes new keys.
    let down = true;
    const api = watchApi(m1, () => !down);
    ctl.proc.signal('SIGKILL');
    expect(await exitWithin(ctl.proc, 5_000)).toMatchObject({ signal: 'SIGKILL' });
    const killedAt = Date.now();
    const last = Math.max(...made(ctl).map((e) => e.epoch));
    // The newest key m-1 holds, and when it lapses.
    const held = await until('m-1 key list', async () => {
      const r = await m1.get('/v1/keys?label=srtp%2FAES_CM_128_HMAC_SHA1_80');
      return r.status === 200 && typeof r.body === 'object' ? (r.body.keys as { epoch: number; notAfter: string }[]) : undefined;
    }, 2_000);
    const newest = held.reduce((a, b) => (b.epoch > a.epoch ? b : a));
    const lapse = Date.parse(newest.notAfter) + GRACE;
    await until('past notAfter + grace of the newest key held', () => Date.now() > lapse + 500, lapse - Date.now() + 3_000, 50);
    const [cur, prev] = await Promise.all([m1.key('current'), m1.key('previous')]);
    expect(cur.status, 'no current key once the newest lapsed').toBe(404);
    expect(prev.status, 'no previous key past its grace').toBe(404);
    down = false;
    await api.done;
    const s = api.samples;
    // Until the newest key's notAfter there was always a current key; between notAfter and +grace a previous one.
    const naOfNewest = Date.parse(newest.notAfter);
    expect(s.filter((x) => x.t < naOfNewest - 100).every((x) => x.current !== undefined), 'a current key until the newest one ended').toBe(true);
    expect(s.filter((x) => x.t > naOfNewest + 100 && x.t < lapse - 100).every((x) => x.current === undefined && x.previous === newest.epoch), 'only the previous key in the grace window').toBe(true);
    expect(s.filter((x) => x.t > lapse + 100).every((x) => x.current === undefined && x.previous === undefined), 'nothing after notAfter + grace').toBe(true);
    expect(newest.epoch).toBeLessThanOrEqual(last);
    expect(lapse - killedAt, 'the lapse is the schedule: at most a period and the grace after the kill').toBeLessThanOrEqual(2 * PERIOD + GRACE + 500);

    // Back on the same state directory: the first epoch is above the last, and, rolls having run
    // ahead of the time term, exactly last + 1: that floor comes from the persisted ledger.
    ctl = await bed.restart(ctl);
    const first = await ctl.waitLog({ event: 'group-key' }, { timeoutMs: 5_000 });
    const timeTerm = Math.floor(timeOf(first) / PERIOD);
    expect(Number(first.epoch), 'first epoch after the restart').toBeGreaterThan(last);
    expect(timeTerm, 'the rolls ran ahead of ⌊now / period⌋').toBeLessThan(last + 1);
    expect(Number(first.epoch)).toBe(last + 1);
    // Members get keys again (their intermediary rejoins), and epochs keep increasing from there.
    await until('m-1 has a key above the last again', async () => ((await m1.key('current')).epoch ?? 0) > last, 15_000, 100);
    const after = m1.keyEvents().filter((k) => k.t > killedAt).map((k) => k.epoch);
    expect(after.every((e) => e > last), `epochs after the restart: ${after.join(', ')}`).toBe(true);
    expect(gaps(after), 'epochs after the restart, one after the other').toEqual([]);
    await ia.proc.stop();
    await ctl.proc.stop();
    await m1.proc.stop();
  });

  it('a designated originator member killed: the controller takes over before any member is without a current key', async () => {
    const ctl = await bed.daemon(hC, keydConfig(bed.pki, {
      name: 'ctl-b', role: 'controller', host: hC.ipv4, port: 7543, multicast: { address: '239.83.0.3', port: 17303 },
      acl: [...members, { principal: 'ib', roles: ['intermediary'] }, { principal: 'orig', roles: ['originator'] }],
      groupKey: { ...GROUP_KEY, originator: 'orig' }, stateDir: bed.stateDir('ctl-b'),
    }));
    const orig = await bed.agent(hC, 'orig', ctl.url, { role: 'originator' });
    const ib = await bed.daemon(hI, keydConfig(bed.pki, {
      name: 'ib', role: 'intermediary', host: hI.ipv4, port: 7543, parentUrl: ctl.url, multicast: { address: '239.83.0.4', port: 17304 },
      acl: members, stateDir: bed.stateDir('ib'),
    }));
    const ms = await Promise.all([bed.agent(hM, 'm-2', ib.url), bed.agent(hM, 'm-3', ib.url)]);
    // The member originator at work: epochs the members hold that the controller did not make.
    const byOrig = () => {
      const mine = new Set(made(ctl).map((e) => e.epoch));
      return ms[0]!.keyEvents().filter((k) => !mine.has(k.epoch));
    };
    await until('two epochs from the originator member at the members', () => byOrig().length >= 2, 40_000, 200);
    // Kill it just after an activation: the next key would have been its to make.
    const cur = (await ms[0]!.key('current')).epoch!;
    await until('the next activation', async () => ((await ms[0]!.key('current')).epoch ?? 0) > cur, 2 * PERIOD + 1_000, 20);
    const lastByOrig = Math.max(...byOrig().map((k) => k.epoch));
    let watching = true;
    const apis = ms.map((a) => watchApi(a, () => !watching));
    const from = ctl.lineCount;
    orig.proc.signal('SIGKILL');
    expect(await exitWithin(orig.proc, 5_000)).toMatchObject({ signal: 'SIGKILL' });
    const killedAt = Date.now();
    const takeover = await ctl.waitLog({ event: 'group-key' }, { from, timeoutMs: 2 * PERIOD + 2_000 });
    await until('three epochs in force after the kill', () => ms.every((a) => a.keyEvents().filter((k) => k.t > killedAt && k.notBefore + 100 < Date.now()).length >= 3), 5 * PERIOD + 3_000, 100);
    watching = false;
    await Promise.all(apis.map((x) => x.done));
    for (const [i, a] of ms.entries()) {
      const s = apis[i]!.samples;
      expect(s.length, `${a.name}: samples`).toBeGreaterThan(20);
      expect(s.filter((x) => x.current === undefined), `${a.name}: without a current key`).toEqual([]);
      const epochs = a.keyEvents().map((k) => k.epoch).filter((e) => e >= lastByOrig - 1);
      expect(gaps(epochs), `${a.name}: epochs across the takeover`).toEqual([]);
      // The controller's key reached it ahead of activation (half the lead, less the trip).
      const k = a.keyEvents().find((x) => x.epoch === Number(takeover.epoch));
      expect(k, `${a.name} got the controller's first key`).toBeDefined();
      expect(k!.t, `${a.name}: controller's first key held before activation`).toBeLessThan(k!.notBefore);
    }
    expect(Number(takeover.epoch), 'the controller continues above the originator\'s epochs').toBeGreaterThan(lastByOrig);
  });
});
