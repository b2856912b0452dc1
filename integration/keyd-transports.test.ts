/**
 * The same tree as keyd-tree.test.ts, smaller, on the subgroup transports for networks without
 * multicast (issue 3): UDP unicast fan-out on loopback, and server-sent events over the control
 * plane. One namespace (its own loopback, so no port can collide with anything else on the
 * machine); every agent and member a real process:
 *
 *   ctl  127.0.0.1   members m-c1 (method 1), m-c2 (method 2)
 *   i-a  127.0.0.1   member  m-a1 (method 2)        both intermediaries members of ctl's subgroup
 *   i-b  127.0.0.1   member  m-b1 (method 1)        over the same transport
 *
 * For each transport: joins, data from every member to every other one (up, down and across
 * the tree, both methods), an intermediary's SIGTERM (it leaves its parent and exits within
 * 2 s), and GRP_END on the controller's SIGTERM reaching the members still under it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSite, type NetnsHost, type Site } from './lib/netns.js';
import { exitWithin, keydConfig, KeydTestbed, type DaemonProc, type MemberProc, type Probe, type TransportSpec } from './lib/keyd.js';

const GROUP = 'fanout';
const LOOPBACK = '127.0.0.1';
let site: Site;
let bed: KeydTestbed;
let hL: NetnsHost;
let probe: Probe;

beforeAll(async () => {
  site = await createSite({ hosts: ['hL'], prefix: 'iolkdtr', ipv6: false });
  hL = site.host('hL');
  bed = await KeydTestbed.create(site, {
    group: GROUP,
    principals: [
      { name: 'ctl', role: 'controller' },
      { name: 'i-a', role: 'intermediary' },
      { name: 'i-b', role: 'intermediary' },
      { name: 'admin', role: 'admin' },
      ...['m-c1', 'm-c2', 'm-a1', 'm-b1'].map((name) => ({ name, role: 'member' as const })),
    ],
  });
  probe = await bed.probe(hL);
});

afterAll(async () => {
  await bed?.teardown();
  await site?.teardown();
  expect(bed?.live.map((p) => p.command) ?? []).toEqual([]);
});

function treeOn(kind: 'unicast' | 'sse', basePort: number) {
  const transport: TransportSpec = { kind };
  let ctl: DaemonProc;
  let ia: DaemonProc;
  let ib: DaemonProc;
  const m: Record<string, MemberProc> = {};

  return describe(`keyd tree on ${kind} subgroups`, () => {
    it('joins members at every agent; the intermediaries attach over the same transport', async () => {
      const members = [{ principal: 'm-*', roles: ['member'] }];
      ctl = await bed.daemon(hL, keydConfig(bed.pki, {
        name: 'ctl', role: 'controller', host: LOOPBACK, port: basePort, transport,
        acl: [...members, { principal: 'i-*', roles: ['intermediary'] }],
      }));
      const intermediary = (name: string, port: number) =>
        bed.daemon(hL, keydConfig(bed.pki, { name, role: 'intermediary', host: LOOPBACK, port, parentUrl: ctl.url, transport, acl: members }));
      [ia, ib] = await Promise.all([intermediary('i-a', basePort + 1), intermediary('i-b', basePort + 2)]);
      const started = await Promise.all([
        bed.member(hL, 'm-c1', ctl.url), bed.member(hL, 'm-c2', ctl.url, { method: 2 }),
        bed.member(hL, 'm-a1', ia.url, { method: 2 }), bed.member(hL, 'm-b1', ib.url),
      ]);
      for (const x of started) {
        m[x.name] = x;
        expect(x.events()[0], x.name).toMatchObject({ event: 'joined', transport: kind });
      }
      await Promise.all([ia.waitLog({ event: 'parent-join' }), ib.waitLog({ event: 'parent-join' })]);
      const tree = await probe.json<{ children: { principal: string }[]; transport: { kind: string } }>(`${ctl.url}/v1/admin/tree`, bed.pki.tls('admin'));
      expect(tree.transport.kind).toBe(kind);
      expect(tree.children.map((c) => c.principal).sort()).toEqual(['i-a', 'i-b']);
    });

    it('carries data from every member to every other one, by both methods', async () => {
      for (const name of ['m-a1', 'm-b1', 'm-c1', 'm-c2']) {
        const sender = m[name]!;
        const method = name === 'm-a1' || name === 'm-c2' ? 2 : 1;
        const text = `${kind}: ${name} by method ${method}`;
        const receivers = Object.values(m).filter((x) => x !== sender);
        await sender.send(text);
        await Promise.all(receivers.map((r) => r.waitData(text)));
        await new Promise((r) => setTimeout(r, 150));
        for (const r of receivers) {
          expect(r.received().filter((d) => d.text === text).map((d) => d.method), `${r.name} gets ${text} once`).toEqual([method]);
        }
        expect(sender.received().map((d) => d.text)).not.toContain(text);
      }
    });

    it('an intermediary on SIGTERM leaves its parent and exits within 2 s', async () => {
      const from = ctl.lineCount;
      const t0 = Date.now();
      ib.proc.signal('SIGTERM');
      expect(await exitWithin(ib.proc, 2_000)).toMatchObject({ exitCode: 0 });
      expect(Date.now() - t0).toBeLessThan(2_000);
      await ctl.waitLog({ event: 'remove', principal: 'i-b', cause: 'leave' }, { from, timeoutMs: 2_000 });
      // Its member is on its own now (it keeps trying its agent); stop it.
      await m['m-b1']!.proc.stop();
      delete m['m-b1'];
      // The rest of the tree is unaffected.
      await m['m-a1']!.send(`${kind}: still here`);
      await Promise.all(['m-c1', 'm-c2'].map((n) => m[n]!.waitData(`${kind}: still here`)));
    });

    it('GRP_END on the controller\'s SIGTERM reaches every member', async () => {
      const t0 = Date.now();
      ctl.proc.signal('SIGTERM');
      expect(await exitWithin(ctl.proc, 2_000)).toMatchObject({ exitCode: 0 });
      expect(Date.now() - t0).toBeLessThan(2_000);
      for (const x of Object.values(m)) {
        expect(await exitWithin(x.proc, 5_000), x.name).toMatchObject({ exitCode: 4 });
        expect(x.events().filter((e) => e.event === 'state').pop(), x.name).toMatchObject({ state: 'ended' });
      }
      await ia.waitLog({ event: 'end' });
      ia.proc.signal('SIGTERM');
      expect(await exitWithin(ia.proc, 2_000)).toMatchObject({ exitCode: 0 });
    });
  });
}

treeOn('unicast', 7443);
treeOn('sse', 8443);
