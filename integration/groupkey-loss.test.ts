/**
 * KGRP2 under loss (issue 4): with 30% loss on the subgroup transport, every member still holds
 * each next key before its activation — the announcement's repeats, the heartbeats that show a
 * newer group epoch, and the catch-up over the secure channel (paper §7: at-least-once delivery
 * without reliable multicast).
 *
 * The loss is real, made by the kernel on the bridge ports that lead to the members' namespaces
 * (in this site's own switch namespace). This kernel has no netem (CONFIG_NET_SCH_NETEM is off,
 * and so is the gact action), so the equivalent is built from what it has: an htb root qdisc and
 * a classic-BPF classifier (cls_bpf) that sends each IPv4 UDP datagram, with probability 0.3
 * (`ld rand`, the kernel's prandom), to a class whose queue holds nothing (`pfifo limit 0`):
 * the datagram is dropped, as netem's `loss 30%` would. Other UDP goes to a counting class, and
 * everything else (ARP, and TCP: the mutual-TLS control channel the catch-up uses, which has its
 * own retransmission) to the default class untouched. Only the subgroup transport (UDP
 * multicast) loses; each member has its own namespace and port, so losses are independent.
 *
 *   hC 10.X.Y.1: controller ctl (239.82.0.1), agent m-c1 (no loss: the reference)
 *   hI 10.X.Y.2: intermediary ia (239.82.0.2)
 *   hM1..hM3:    agents m-l1..m-l3, members of ia, 30% of the UDP towards each dropped
 *
 * Period 3 s, lead 1.5 s, grace 1 s, 3 repeats (the minimum), heartbeats every 300 ms.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createSite, type NetnsHost, type Site } from './lib/netns.js';
import { gaps, GroupKeyBed, keydConfig, until, type AgentProc, type DaemonProc } from './lib/groupKeyHarness.js';

const GROUP = 'gkloss';
const PORT = 7443;
const PERIOD = 3_000;
const LEAD = 1_500;
const LOSS = 0.3;
const EPOCHS = 8;
const LOSSY = ['hM1', 'hM2', 'hM3'] as const;

let site: Site;
let bed: GroupKeyBed;
let ctl: DaemonProc;
let ia: DaemonProc;
const agents: AgentProc[] = [];
let reference: AgentProc;

const inSwitch = (args: string[]) => execa('ip', ['netns', 'exec', site.switchNs, 'tc', ...args], { timeout: 10_000 });
/** The bridge port of a host (netns.ts names them p0, p1, … in host order). */
const portOf = (h: NetnsHost) => `p${site.hosts.indexOf(h)}`;

/**
 * Classic BPF (tc bytecode: count, then `code jt jf k` per instruction), run on each frame from
 * its Ethernet header: not IPv4 UDP → 0 (default class 1:1); else a random u32 below
 * LOSS × 2^32 → class 1:2 (dropped), otherwise class 1:3 (passed, counted).
 */
const DROP_RANDOM_UDP = [
  '40 0 0 12', //          ldh [12]               ethertype
  '21 0 5 2048', //        jeq #0x0800, 0, →7     IPv4?
  '48 0 0 23', //          ldb [23]               IP protocol
  '21 0 3 17', //          jeq #17, 0, →7         UDP?
  '32 0 0 4294963256', //  ld rand                SKF_AD_OFF + SKF_AD_RANDOM
  `53 2 0 ${Math.round(LOSS * 2 ** 32)}`, // jge #LOSS·2^32, →8, 0
  '6 0 0 65538', //        ret #1:2               drop
  '6 0 0 0', //            ret #0                 default class
  '6 0 0 65539', //        ret #1:3               pass
];

/** 30% loss for UDP towards `h`; everything else passes. */
async function addLoss(h: NetnsHost): Promise<void> {
  const dev = portOf(h);
  await inSwitch(['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '1']);
  for (const c of ['1:1', '1:2', '1:3']) await inSwitch(['class', 'add', 'dev', dev, 'parent', '1:', 'classid', c, 'htb', 'rate', '10gbit']);
  await inSwitch(['qdisc', 'add', 'dev', dev, 'parent', '1:2', 'handle', '20:', 'pfifo', 'limit', '0']);
  await inSwitch(['filter', 'add', 'dev', dev, 'parent', '1:', 'prio', '1', 'bpf', 'bytecode', `${DROP_RANDOM_UDP.length},${DROP_RANDOM_UDP.join(',')}`]);
}

/** UDP datagrams passed and dropped on a port. */
async function lossCounts(h: NetnsHost): Promise<{ sent: number; dropped: number }> {
  const classes = (await inSwitch(['-s', 'class', 'show', 'dev', portOf(h)])).stdout;
  const qdiscs = (await inSwitch(['-s', 'qdisc', 'show', 'dev', portOf(h)])).stdout;
  const sent = /class htb 1:3 [\s\S]*?Sent \d+ bytes (\d+) pkt/.exec(classes);
  const dropped = /qdisc pfifo 20:[\s\S]*?\(dropped (\d+)/.exec(qdiscs);
  if (!sent || !dropped) throw new Error(`no loss counters on ${portOf(h)}:\n${classes}\n${qdiscs}`);
  return { sent: Number(sent[1]), dropped: Number(dropped[1]) };
}

describe('KGRP2 with 30% loss on the subgroup transport', () => {
  beforeAll(async () => {
    site = await createSite({ hosts: ['hC', 'hI', ...LOSSY], prefix: 'iolgkloss', ipv6: false });
    const [hC, hI] = site.hosts as [NetnsHost, NetnsHost];
    bed = await GroupKeyBed.create(site, {
      group: GROUP,
      principals: [
        { name: 'ctl', role: 'controller', ip: [hC.ipv4] },
        { name: 'ia', role: 'intermediary', ip: [hI.ipv4] },
        ...['m-c1', 'm-l1', 'm-l2', 'm-l3'].map((name) => ({ name, role: 'member' as const })),
      ],
    });
    const members = [{ principal: 'm-*', roles: ['member'] }];
    ctl = await bed.daemon(hC, keydConfig(bed.pki, {
      name: 'ctl', role: 'controller', host: hC.ipv4, port: PORT, multicast: { address: '239.82.0.1', port: 17201 },
      acl: [...members, { principal: 'ia', roles: ['intermediary'] }], groupKey: { period: '3s', lead: '1500ms', grace: '1s', repeats: 3 },
      stateDir: bed.stateDir('ctl'),
    }));
    ia = await bed.daemon(hI, keydConfig(bed.pki, {
      name: 'ia', role: 'intermediary', host: hI.ipv4, port: PORT, parentUrl: ctl.url, multicast: { address: '239.82.0.2', port: 17202 },
      acl: members, stateDir: bed.stateDir('ia'),
    }));
    reference = await bed.agent(hC, 'm-c1', ctl.url);
    agents.push(...await Promise.all(LOSSY.map((h, i) => bed.agent(h, `m-l${i + 1}`, ia.url))));
    await until('every member holds a current key', async () => (await Promise.all([reference, ...agents].map((a) => a.key('current')))).every((r) => r.status === 200), 15_000);
  });

  afterAll(async () => {
    await bed?.teardown();
    await site?.teardown();
  });

  it(`every member holds each next key before its activation, for ${EPOCHS} epochs`, async () => {
    const lossy = LOSSY.map((n) => site.host(n));
    for (const h of lossy) await addLoss(h);
    const t0 = Date.now();
    // Epochs whose first announcement went out once the loss was on.
    const measured = () => reference.keyEvents().filter((k) => k.notBefore - LEAD > t0 + 100);
    await until(`${EPOCHS} epochs announced and in force under loss`, () => measured().filter((k) => k.notBefore + 200 < Date.now()).length >= EPOCHS, (EPOCHS + 3) * PERIOD, 200);
    const epochs = measured().slice(0, EPOCHS);
    expect(gaps(epochs.map((k) => k.epoch)), 'epochs skipped at the reference').toEqual([]);
    const counts = await Promise.all(lossy.map(lossCounts));
    for (const a of agents) {
      const got = new Map(a.keyEvents().map((k) => [k.epoch, k]));
      for (const e of epochs) {
        const k = got.get(e.epoch);
        expect(k, `${a.name} never got epoch ${e.epoch}`).toBeDefined();
        expect(k!.t, `${a.name}: epoch ${e.epoch} held ${e.notBefore - k!.t} ms before activation`).toBeLessThan(e.notBefore);
        expect(k!.notBefore).toBe(e.notBefore);
      }
      // And what its key API serves now is the group's current key.
      const [mine, theirs] = await Promise.all([a.key('current'), reference.key('current')]);
      if (mine.epoch === theirs.epoch) expect(mine.key, `${a.name}: same derived key`).toBe(theirs.key);
    }
    const margins = agents.flatMap((a) => epochs.map((e) => e.notBefore - (a.keyEvents().find((k) => k.epoch === e.epoch)?.t ?? Infinity)));
    console.log(`groupkey-loss: ${agents.length} members × ${epochs.length} epochs; next key held before activation by min ${Math.min(...margins)} ms, median ${margins.sort((x, y) => x - y)[Math.floor(margins.length / 2)]} ms (lead ${LEAD} ms); UDP passed/dropped per member ${JSON.stringify(counts)}`);
    // The loss was there: about 30% of the datagrams towards each member's namespace.
    for (const [i, c] of counts.entries()) {
      const rate = c.dropped / (c.sent + c.dropped);
      expect(c.sent + c.dropped, `${LOSSY[i]}: UDP datagrams towards it`).toBeGreaterThan(50);
      expect(rate, `${LOSSY[i]}: loss rate (${c.dropped} of ${c.sent + c.dropped})`).toBeGreaterThan(0.18);
      expect(rate, `${LOSSY[i]}: loss rate (${c.dropped} of ${c.sent + c.dropped})`).toBeLessThan(0.42);
    }
    // Nobody was lost along the way: every member still joined.
    for (const a of agents) expect(a.proc.running, `${a.name} still running`).toBe(true);
  });
});
