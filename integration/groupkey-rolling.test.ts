/**
 * KGRP2 rolling as deployed (issue 4, "Integration tests"): a controller, an intermediary and
 * local agents (`iolus agent`), each a real process, in three network namespaces on one bridge,
 * IPv4 multicast subgroups; period 2 s, lead 1 s, grace 1 s.
 *
 *   hC 10.X.Y.1: controller ctl (originator; 239.81.0.1)  agent m-c1
 *   hI 10.X.Y.2: intermediary ia (239.81.0.2)              ACL: m-b has `minutes: 3`
 *   hM 10.X.Y.3: agents m-i1, m-i2 (members of ia), the victims m-x*, the metered m-b
 *
 * Proves: (1) every member sees the same epoch sequence, no number skipped, for ≥10 rolls,
 * with the same derived key per epoch, each next key held before its activation (`iolus watch`
 * on each agent, and the agents' own key lines); (2) a member expelled during epoch n never
 * obtains a key of an epoch > n that anyone uses: its agent's API and its key lines (what its
 * process took off the wire) are checked, both when the expulsion comes before the next key went
 * out and when it comes after (that key is voided and replaced); (3) `minutes: 3` yields exactly
 * 3 epochs in the ledger (`iolus usage --csv`), the member can use each of them, then access
 * stops; the ledger survives a kill -9 of the daemon and the budget is still enforced after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, type NetnsHost, type Site } from './lib/netns.js';
import { exitWithin, gaps, GroupKeyBed, keydConfig, sleep, SRTP_LABEL, until, type AgentProc, type DaemonProc, type WatchProc } from './lib/groupKeyHarness.js';

const GROUP = 'gkroll';
const PORT = 7443;
const PERIOD = 2_000;
const GROUP_KEY = { period: '2s', lead: '1s', grace: '1s' };
const VICTIMS = ['m-x1', 'm-x2', 'm-x3', 'm-x4'];

let site: Site;
let bed: GroupKeyBed;
let hC: NetnsHost;
let hI: NetnsHost;
let hM: NetnsHost;
let ctl: DaemonProc;
let ia: DaemonProc;
const agents: Record<string, AgentProc> = {};
const watches: WatchProc[] = [];
/** What m-b's agent served (GET /v1/keys) while it ran: epoch → the states it was served in. */
const meteredServed = new Map<number, Set<string>>();
/** Activation and end of each epoch m-b's agent served (its grant's epochs print no key line). */
const meteredValidity = new Map<number, { notBefore: number; notAfter: number }>();
let meteredPoll: Promise<void> | undefined;

const acl = (extra: Record<string, unknown>[] = []): Record<string, unknown>[] => [...extra, { principal: 'm-*', roles: ['member'] }, { principal: 'admin', roles: ['admin'] }];

/** Activations seen by every watcher (the remaining members). */
const activated = () => new Set(watches.flatMap((w) => w.activations().map((a) => a.epoch)));

/** The epoch in force at `t`, from a remaining member's key lines. */
function epochAt(a: AgentProc, t: number): number {
  // Unique: a voided key and its replacement share their validity, but both were still pending at `t`.
  const k = a.keyEvents().find((e) => e.notBefore <= t && t < e.notAfter);
  if (!k) throw new Error(`no epoch in force at ${new Date(t).toISOString()} in ${a.name}'s key lines`);
  return k.epoch;
}

describe('KGRP2 rolling through a controller and an intermediary (local agents as processes)', () => {
  beforeAll(async () => {
    site = await createSite({ hosts: ['hC', 'hI', 'hM'], prefix: 'iolgkroll', ipv6: false });
    [hC, hI, hM] = site.hosts as [NetnsHost, NetnsHost, NetnsHost];
    bed = await GroupKeyBed.create(site, {
      group: GROUP,
      principals: [
        { name: 'ctl', role: 'controller', ip: [hC.ipv4] },
        { name: 'ia', role: 'intermediary', ip: [hI.ipv4] },
        { name: 'admin', role: 'admin' },
        ...['m-c1', 'm-i1', 'm-i2', 'm-b', ...VICTIMS].map((name) => ({ name, role: 'member' as const })),
      ],
    });
    ctl = await bed.daemon(hC, keydConfig(bed.pki, {
      name: 'ctl', role: 'controller', host: hC.ipv4, port: PORT, multicast: { address: '239.81.0.1', port: 17101 },
      acl: acl([{ principal: 'ia', roles: ['intermediary'] }]), groupKey: GROUP_KEY, stateDir: bed.stateDir('ctl'),
    }));
    ia = await bed.daemon(hI, keydConfig(bed.pki, {
      name: 'ia', role: 'intermediary', host: hI.ipv4, port: PORT, parentUrl: ctl.url, multicast: { address: '239.81.0.2', port: 17102 },
      // A per-minute customer: a budget of 3 periods (counted in epochs received).
      acl: acl([{ principal: 'm-b', roles: ['member'], minutes: 3 }]), stateDir: bed.stateDir('ia'),
    }));
    const [c1, i1, i2, b] = await Promise.all([
      bed.agent(hC, 'm-c1', ctl.url), bed.agent(hM, 'm-i1', ia.url), bed.agent(hM, 'm-i2', ia.url), bed.agent(hM, 'm-b', ia.url),
    ]);
    for (const a of [c1, i1, i2, b]) agents[a.name] = a;
    // m-b's current key, polled while its agent runs (test 3 checks it could use every epoch it paid for).
    meteredPoll = (async () => {
      while (b.proc.running) {
        const r = await b.get(`/v1/keys?label=${encodeURIComponent(SRTP_LABEL)}`);
        const keys = r.status === 200 && typeof r.body === 'object' ? (r.body.keys as { epoch: number; state: string; notBefore: string; notAfter: string }[]) : [];
        for (const k of keys) {
          meteredServed.set(k.epoch, (meteredServed.get(k.epoch) ?? new Set()).add(k.state));
          meteredValidity.set(k.epoch, { notBefore: Date.parse(k.notBefore), notAfter: Date.parse(k.notAfter) });
        }
        await sleep(50);
      }
    })();
    watches.push(...await Promise.all([c1, i1, i2].map((a) => bed.watch(hM, a, SRTP_LABEL))));
  });

  afterAll(async () => {
    await bed?.teardown();
    await site?.teardown();
  });

  it('every member sees the same epoch sequence, with no gap, for at least 10 rolls, and holds each next key before it activates', async () => {
    await until('11 activations at every member', () => watches.every((w) => w.activations().length >= 11), 40_000, 200);
    const seqs = watches.map((w) => w.activations());
    const lo = Math.max(...seqs.map((s) => s[0]!.epoch));
    const hi = Math.min(...seqs.map((s) => s[s.length - 1]!.epoch));
    expect(hi - lo, 'rolls seen by every member').toBeGreaterThanOrEqual(10);
    const reference = seqs[0]!.filter((a) => a.epoch >= lo && a.epoch <= hi);
    expect(gaps(reference.map((a) => a.epoch)), 'epochs skipped').toEqual([]);
    for (const [i, s] of seqs.entries()) {
      const mine = s.filter((a) => a.epoch >= lo && a.epoch <= hi);
      const who = watches[i]!.agent.name;
      expect(mine.map((a) => a.epoch), who).toEqual(reference.map((a) => a.epoch));
      // The same derived SRTP key for each epoch, at every member.
      expect(mine.map((a) => a.key), `${who}: keys`).toEqual(reference.map((a) => a.key));
      expect(mine.every((a) => typeof a.key === 'string' && a.key.length > 0), `${who}: keys present`).toBe(true);
      // Consecutive activations one period apart: no roll was early, none late.
      for (let k = 1; k < mine.length; k++) expect(mine[k]!.t - mine[k - 1]!.t, `${who}: period before ${mine[k]!.epoch}`).toBe(PERIOD);
    }
    // The agents' key lines: each epoch held once, and before its notBefore (the lead at work).
    for (const a of ['m-c1', 'm-i1', 'm-i2'].map((n) => agents[n]!)) {
      const keys = a.keyEvents().filter((k) => k.epoch > lo && k.epoch <= hi);
      expect(keys.map((k) => k.epoch), `${a.name}: key lines`).toEqual(reference.map((r) => r.epoch).filter((e) => e > lo));
      const late = keys.filter((k) => k.t >= k.notBefore);
      expect(late, `${a.name}: next keys that arrived after their activation`).toEqual([]);
    }
  });

  it('a member expelled during epoch n never obtains the key of any epoch > n that the group uses (before and after the next key went out)', async () => {
    const seen = new Set<'clean' | 'void'>();
    const reference = agents['m-i1']!;
    for (const [i, name] of VICTIMS.entries()) {
      if (seen.has('clean') && seen.has('void')) break;
      const want: 'clean' | 'void' = seen.has('clean') ? 'void' : seen.has('void') ? 'clean' : i % 2 === 0 ? 'clean' : 'void';
      const victim = await bed.agent(hM, name, ia.url);
      const id = await bed.memberIdAt(ia, name);
      await until(`${name} holds a current key`, async () => (await victim.key('current')).status === 200, 10_000, 50);
      if (want === 'clean') {
        // Just after an activation: the next key goes out `lead` before the end of the period.
        const cur = (await victim.key('current')).epoch!;
        await until(`${name}: epoch after ${cur} in force`, async () => ((await victim.key('current')).epoch ?? 0) > cur, 2 * PERIOD + 1_000, 20);
      } else {
        // The next key is out and held: the expulsion must void it.
        await until(`${name} holds a next key`, async () => {
          const r = await victim.key('next');
          return r.status === 200 && typeof r.body === 'object' && Date.now() < Date.parse(String(r.body.notBefore)) - 400;
        }, 2 * PERIOD + 1_000, 20);
      }
      // Probe the victim's key API throughout, from just before the expulsion until its agent has gone.
      const served: number[] = [];
      const answers = new Set<number>();
      const probing = (async () => {
        while (victim.proc.running) {
          for (const which of ['current', 'next'] as const) {
            const r = await victim.key(which);
            answers.add(r.status);
            if (r.epoch !== undefined) served.push(r.epoch);
          }
          await sleep(20);
        }
      })();
      const from = { ctl: ctl.lineCount, ia: ia.lineCount };
      const tExpel = Date.now();
      await bed.expel(ia, id);
      const n = epochAt(reference, tExpel);
      expect(await exitWithin(victim.proc, 10_000), `${name}'s agent ends when removed`).toMatchObject({ exitCode: 3 });
      await probing;
      expect(victim.events().some((e) => e.event === 'state' && e.state === 'removed'), `${name}: removed`).toBe(true);
      await ia.waitLog({ event: 'remove', principal: name, cause: 'expel' }, { from: from.ia });
      // The group goes on: two more epochs in force at the remaining members.
      await until('two epochs after n in force everywhere', () => watches.every((w) => w.activations().filter((a) => a.epoch > n).length >= 2), 4 * PERIOD + 4_000, 100);
      const used = [...activated()].filter((e) => e > n);
      const got = new Set([...victim.keyEvents().map((k) => k.epoch), ...served]);
      const beyond = [...got].filter((e) => e > n);
      // Whatever it got beyond n (the pending key, when the expulsion came after it went out) is void: nobody ever uses it.
      for (const e of beyond) {
        expect(used, `${name} held ${e} > n=${n}: it must be void`).not.toContain(e);
        await ctl.waitLog({ event: 'group-key', reason: 'void', voids: e }, { from: from.ctl, timeoutMs: 5_000 });
      }
      // Asked now for any epoch the group used after n, its agent has nothing (it is gone; 404/503 while it was closing).
      for (const e of used) {
        const r = await victim.key(e);
        expect([0, 404, 503], `${name}: epoch ${e} after the expulsion`).toContain(r.status);
      }
      expect([...answers].every((s) => [0, 200, 404, 503].includes(s)), `${name}: answers ${[...answers].join(',')}`).toBe(true);
      seen.add(beyond.length > 0 ? 'void' : 'clean');
    }
    expect([...seen].sort(), 'expelled both before and after the next key went out').toEqual(['clean', 'void']);
  });

  it('minutes: 3 yields exactly 3 epochs in the ledger, each usable, then access stops; the ledger survives kill -9', async () => {
    const b = agents['m-b']!;
    expect(await exitWithin(b.proc, 5 * PERIOD + 5_000), 'm-b removed when its budget is used').toMatchObject({ exitCode: 3 });
    await meteredPoll;
    const { rows } = await bed.usage(ia);
    const row = rows.find((r) => r.principal === 'm-b');
    expect(row, 'm-b in the ledger').toBeDefined();
    expect(row!.epochs, 'epochs billed to m-b').toBe(3);
    expect(row!.lastEpoch - row!.firstEpoch, 'three consecutive epochs').toBe(2);
    const billed = [row!.firstEpoch, row!.firstEpoch + 1, row!.lastEpoch];
    // What its process received (off the wire: its key lines; in the grant: what its API served
    // from the start, as the agent prints key lines only for epochs after it is ready): the billed ones.
    const lines = new Map(b.keyEvents().map((k) => [k.epoch, k.t]));
    expect([...new Set([...lines.keys(), ...meteredServed.keys()])].sort(), 'epochs m-b received').toEqual(billed);
    // It got what it paid for: each billed epoch held before its end, m-b still a member once it
    // began, and the later two served as current by its agent; nothing after them.
    const readyAt = Number(b.events().find((e) => e.event === 'ready')?.t);
    const removedAt = Number(b.events().find((e) => e.event === 'state' && e.state === 'removed')?.t);
    // An epoch's validity from any member that printed it, or from what m-b's agent served (an
    // epoch that came in everyone's grant, all starting together, is printed by nobody).
    const validity = (e: number) => until(`validity of ${e}`, async () => {
      const k = Object.values(agents).flatMap((a) => a.keyEvents()).find((x) => x.epoch === e);
      return k ? { notBefore: k.notBefore, notAfter: k.notAfter } : meteredValidity.get(e);
    }, 1_000);
    for (const e of billed) {
      const v = await validity(e);
      expect(lines.get(e) ?? readyAt, `epoch ${e} held before its end`).toBeLessThan(v.notAfter);
      expect(removedAt, `m-b still a member once epoch ${e} began`).toBeGreaterThan(v.notBefore);
    }
    expect(removedAt, 'access stops by the end of the last billed epoch').toBeLessThanOrEqual((await validity(billed[2]!)).notAfter);
    expect(billed.slice(1).filter((e) => !meteredServed.get(e)?.has('current')), 'billed epochs never served as current').toEqual([]);
    await ia.waitLog({ event: 'remove', principal: 'm-b', cause: 'entitlement' });
    // Access has stopped: the group went on without it.
    await until('an epoch after m-b\'s last in force', () => [...activated()].some((e) => e > billed[2]!), 3 * PERIOD, 100);

    // kill -9 of the intermediary: every row written before the crash is still there.
    const lastEnd = (await validity(billed[2]!)).notAfter;
    await until('m-b\'s last epoch over', () => Date.now() > lastEnd, 2 * PERIOD, 50);
    const before = (await bed.usage(ia)).rows;
    ia.proc.signal('SIGKILL');
    expect(await exitWithin(ia.proc, 5_000)).toMatchObject({ signal: 'SIGKILL' });
    const dead = (await bed.usage(ia)).rows;
    expect(dead.find((r) => r.principal === 'm-b'), 'm-b after kill -9').toEqual(row);
    for (const r of before) expect(dead.find((x) => x.principal === r.principal)?.epochs ?? 0, `${r.principal} after kill -9`).toBeGreaterThanOrEqual(r.epochs);

    // Restarted on the same state directory: the rows are there, and the budget is still spent.
    ia = await bed.restart(ia);
    const again = (await bed.usage(ia)).rows;
    expect(again.find((r) => r.principal === 'm-b')).toEqual(row);
    const retry = await bed.agent(hM, 'm-b', ia.url, { waitReady: false });
    const st = await exitWithin(retry.proc, 20_000);
    expect(st.exitCode, 'm-b cannot rejoin: its budget is spent').not.toBe(0);
    expect(retry.proc.stderr).toMatch(/budget of 3 minutes is used up/);
    // The others rejoin the restarted intermediary and keep rolling.
    const last = Math.max(...agents['m-i1']!.keyEvents().map((k) => k.epoch));
    await until('m-i1 gets keys again after the restart', () => agents['m-i1']!.keyEvents().some((k) => k.epoch > last + 1), 6 * PERIOD + 10_000, 100);
    const grew = (await bed.usage(ia)).rows.find((r) => r.principal === 'm-i1');
    expect(grew!.epochs).toBeGreaterThan(before.find((r) => r.principal === 'm-i1')!.epochs);
  });
});
