/**
 * The members of one leaf subgroup for the rollover benchmark (bench/rollover.ts), in a child
 * process forked with an IPC channel (RolloverHarness below drives it). Each member joins over
 * its own mutual-TLS connection with its own certificate (bench/lib/mtlsLoad.ts) and is a real
 * Member state machine with its own MemberKeys ring; the members share one socket on the leaf's
 * multicast group, as members on one host would.
 *
 * Modes: 'idle' drops datagrams; 'warm' feeds each to every member at once (the warm-up rekey:
 * a leave-scheme part only to the members it has an entry for); 'record' only stamps them on
 * arrival, and 'held' then feeds the recording to every member in order, timing each one: a
 * member's completion as if it had its own CPU (arrival + its own processing, chained over the
 * datagrams) and as if the leaf's members took each datagram one after the other on one core.
 */
import dgram, { type Socket } from 'node:dgram';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Member } from '../../src/client/member.js';
import { MemberKeys } from '../../src/client/memberKeys.js';
import { systemClock } from '../../src/util/clock.js';
import { CatchUpResponse, JoinGrant } from '../../src/wire/control.js';
import { ContentType } from '../../src/wire/data.js';
import { MessageType } from '../../src/wire/header.js';
import { findLeaveEntry } from '../../src/wire/keyUpdate.js';
import { decodeMessage } from '../../src/wire/message.js';
import type { Pair } from './benchPki.js';
import { hangUp, loadMembers, request, type LoadMember } from './mtlsLoad.js';
import { IpcChild } from './ipcChild.js';

const HARNESS_FLAG = '--iolus-rollover-harness';

/** Wall-clock ms with sub-ms resolution (every process of this machine shares the clock). */
export const wallMs = () => performance.timeOrigin + performance.now();

export type HarnessRequest =
  | { op: 'init'; group: string; url: string; ca: string; names: string[]; pairs: Pair[] }
  /** Joins the next `count` members (all that are left by default). */
  | { op: 'join'; concurrency: number; count?: number }
  /** Members whose grant named no originator (they joined before their leaf had one) fetch the state, as a client would. */
  | { op: 'catch-up' }
  /** 'idle': drop; 'warm': every member takes every datagram at once (warm-up); 'record': stamp and keep for 'held'. */
  | { op: 'mode'; mode: Mode }
  | { op: 'subgroup-epochs' }
  /** Feeds what was recorded to every member and reports who holds `epoch`, and when. */
  | { op: 'held'; epoch: number }
  | { op: 'raw'; on: boolean }
  | { op: 'exit' };

export type Mode = 'idle' | 'warm' | 'record';

export interface HeldReport {
  /** When each member that holds `epoch` would have had it on its own CPU: arrival + its own processing (wall ms). */
  times: number[];
  /** The same, with this leaf's members taking each datagram one after the other on one core (wall ms). */
  serial: number[];
  missing: number;
  /** When the first datagram carrying it arrived at this leaf's socket (wall ms). */
  arrival: number;
  /** Members' processing of one datagram (µs), median. */
  procMedianUs: number;
  /** What members dropped or refused since the last report, by cause. */
  dropped: Record<string, number>;
}

class Harness {
  private members: { m: Member; keys: MemberKeys; held: Map<number, number> }[] = [];
  private clients: LoadMember[] = [];
  private sock: Socket | undefined;
  private mode: Mode = 'idle';
  private rawMode = false;
  private readonly rawArrivals: number[] = [];
  private recorded: { at: number; bytes: Uint8Array }[] = [];
  private dropped: Record<string, number> = {};

  constructor(private readonly init: Extract<HarnessRequest, { op: 'init' }>) {}

  private cursor = 0;
  private groupAddr: { address: string; port: number } | undefined;

  async join(concurrency: number, count = Infinity): Promise<{ joined: number; failed: string[]; wallMs: number }> {
    const { group, url, ca, pairs, names } = this.init;
    const target = new URL(url);
    const path = `/v1/groups/${encodeURIComponent(group)}/join`;
    const failed: string[] = [];
    if (this.members.length === 0) {
      this.members = pairs.map(() => {
        const m = new Member(group, systemClock);
        return { m, keys: new MemberKeys(m), held: new Map<number, number>() };
      });
      this.clients = pairs.map((p, i) => loadMembers(ca, [p], [names[i]!])[0]!);
    }
    const end = Math.min(pairs.length, this.cursor + count);
    const first = this.cursor;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (this.cursor < end) {
        const i = this.cursor++;
        try {
          const o = await request(this.clients[i]!, target, group, 'full', 'POST', path, { group, role: 'member' });
          if (o.status !== 200) throw new Error(o.error ?? `HTTP ${o.status}: ${o.body.slice(0, 200)}`);
          const grant = JoinGrant.parse(JSON.parse(o.body));
          const x = this.members[i]!;
          x.m.acceptGrant(grant);
          x.keys.onGrant(grant);
          if (grant.transport.kind === 'multicast') this.groupAddr ??= { address: grant.transport.address, port: grant.transport.port };
        } catch (err) {
          failed.push(`${names[i]}: ${(err as Error).message}`);
        } finally {
          hangUp(this.clients[i]!);
        }
      }
    }));
    if (!this.groupAddr) throw new Error('no member joined a multicast subgroup');
    if (!this.sock) await this.open(this.groupAddr);
    return { joined: end - first - failed.length, failed: failed.slice(0, 5), wallMs: performance.now() - t0 };
  }

  async catchUp(): Promise<number> {
    const { group, url } = this.init;
    const target = new URL(url);
    let n = 0;
    for (const [i, x] of this.members.entries()) {
      if (!x.m.isJoined || x.keys.ring.originatorKeys.length > 0) continue;
      const o = await request(this.clients[i]!, target, group, 'full', 'GET', `/v1/groups/${encodeURIComponent(group)}/state?memberId=${x.m.memberId}`);
      hangUp(this.clients[i]!);
      if (o.status !== 200) throw new Error(`catch-up of member ${x.m.memberId}: HTTP ${o.status} ${o.body.slice(0, 200)}`);
      const state = CatchUpResponse.parse(JSON.parse(o.body));
      x.m.applyCatchUp(state);
      x.keys.onCatchUp(state);
      n++;
    }
    return n;
  }

  private async open(g: { address: string; port: number }): Promise<void> {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(g.port, g.address, () => resolve());
    });
    s.addMembership(g.address, '127.0.0.1');
    s.setRecvBufferSize(16 * 1024 * 1024);
    s.on('message', (msg) => this.onDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length)));
    this.sock = s;
  }

  private onDatagram(bytes: Uint8Array): void {
    const arrived = wallMs();
    if (this.rawMode) this.rawArrivals.push(arrived);
    else if (this.mode === 'record') this.recorded.push({ at: arrived, bytes: new Uint8Array(bytes) });
    else if (this.mode === 'warm') this.warm(bytes);
  }

  /**
   * Warm-up, at once: a part of a leave-scheme update goes only to the members it has an entry
   * for (each would skip the others' parts anyway; 2,500 members × 3 parts of 64 KB is minutes
   * of CPU here), everything else to every member.
   */
  private warm(bytes: Uint8Array): void {
    let only: ((memberId: number) => boolean) | undefined;
    try {
      const m = decodeMessage(bytes);
      if (m.type === MessageType.LeaveKeyUpdate) only = (id) => findLeaveEntry(m.body, id) !== undefined;
    } catch {
      /* the members will drop it */
    }
    for (const x of this.members) if (!only || only(x.m.memberId)) this.take(x, bytes);
  }

  /** One member takes one datagram; true when it newly holds an epoch. */
  private take(x: Harness['members'][number], bytes: Uint8Array, at = wallMs()): number | undefined {
    let fresh: number | undefined;
    for (const e of x.m.receive(bytes)) {
      if (e.type === 'dropped' || e.type === 'catch-up' || e.type === 'removed') {
        const k = e.type === 'dropped' ? e.cause : e.type === 'catch-up' ? `catch-up:${e.why}` : 'removed';
        this.dropped[k] = (this.dropped[k] ?? 0) + 1;
      }
      if (e.type !== 'data' || e.contentType !== ContentType.GroupKey || !e.payload) continue;
      const v = x.keys.onAnnouncement(e.payload);
      if (!v.ok) this.dropped[`ring-${v.cause}`] = (this.dropped[`ring-${v.cause}`] ?? 0) + 1;
      else if (v.fresh) {
        x.held.set(v.epoch, at);
        fresh = v.epoch;
      }
    }
    return fresh;
  }

  setMode(mode: Mode): void {
    this.mode = mode;
    if (mode === 'record') this.recorded = [];
  }

  subgroupEpochs(): number[] {
    return this.members.map((x) => x.m.epoch);
  }

  /**
   * Feeds the recorded datagrams, in arrival order, to every member, timing each one's
   * processing: on its own CPU a member starts a datagram at max(arrival, its previous
   * datagram's end); in series, every member of the leaf waits for the ones before it.
   */
  held(epoch: number): HeldReport {
    const times: number[] = [];
    const serial: number[] = [];
    const procs: number[] = [];
    let missing = 0;
    const busy = new Array<number>(this.recorded.length).fill(0);
    for (const x of this.members) {
      let free = -Infinity;
      let done: number | undefined;
      let doneSerial: number | undefined;
      for (const [k, d] of this.recorded.entries()) {
        const t = performance.now();
        const fresh = this.take(x, d.bytes, d.at);
        const dt = performance.now() - t;
        procs.push(dt * 1000);
        free = Math.max(d.at, free) + dt;
        busy[k]! += dt;
        if (fresh === epoch && done === undefined) {
          done = free;
          doneSerial = d.at + busy[k]!; // after every member before it took this datagram
        }
      }
      if (done === undefined) missing++;
      else {
        times.push(done);
        serial.push(doneSerial!);
      }
    }
    procs.sort((a, b) => a - b);
    const dropped = this.dropped;
    this.dropped = {};
    const first = this.recorded.find((d) => this.members.some((x) => x.held.get(epoch) === d.at));
    this.recorded = [];
    return { times, serial, missing, arrival: first?.at ?? NaN, procMedianUs: procs[Math.floor(procs.length / 2)] ?? NaN, dropped };
  }

  raw(on: boolean): number[] {
    this.rawMode = on;
    return this.rawArrivals.splice(0);
  }

  close(): void {
    this.sock?.close();
  }
}

function harnessMain(): void {
  let h: Harness | undefined;
  process.on('message', (msg: { id: number; req: HarnessRequest }) => {
    const { id, req } = msg;
    (async () => {
      if (req.op === 'init') {
        h = new Harness(req);
        return null;
      }
      if (req.op === 'exit') {
        h?.close();
        setTimeout(() => process.exit(0), 20);
        return null;
      }
      if (!h) throw new Error('not initialized');
      switch (req.op) {
        case 'join': return h.join(req.concurrency, req.count);
        case 'catch-up': return h.catchUp();
        case 'mode': return h.setMode(req.mode);
        case 'subgroup-epochs': return h.subgroupEpochs();
        case 'held': return h.held(req.epoch);
        case 'raw': return h.raw(req.on);
      }
    })().then((result) => process.send!({ id, result }), (err: unknown) => process.send!({ id, error: (err as Error).stack ?? String(err) }));
  });
}

if (process.send && process.argv.includes(HARNESS_FLAG)) harnessMain();

/** The parent's side: one forked harness and a request/answer call over IPC. */
export class RolloverHarness extends IpcChild<HarnessRequest> {
  constructor() {
    super(fork(fileURLToPath(import.meta.url), [HARNESS_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'rollover harness');
  }
}
