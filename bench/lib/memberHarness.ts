/**
 * One process holding many members of one subgroup for the propagation benchmark (forked with
 * an IPC channel; HarnessProcess below drives it). Each member joins over its own mutual-TLS
 * connection with its own certificate (mtlsLoad.ts: the JOIN a ControlClient sends, without its
 * per-member material checks, which cost more CPU than the handshake here), the grant parsed
 * with the same zod schema, and is a real `Member` state machine; the members share one socket
 * on the subgroup's multicast group, as members on one host would.
 *
 * Timing model. During a trial the process only timestamps datagrams as they arrive
 * (process.hrtime: CLOCK_MONOTONIC, the same clock in every process); afterwards it feeds
 * them, in arrival order, to every member and times each `receive` call. A member's completion
 * is computed as if it ran on its own CPU: datagram i starts at max(arrival_i, end of i-1) and
 * ends after that member's own measured processing. Processing 2,500 members one after another
 * in real time would measure this harness, not the tree.
 */
import dgram, { type Socket } from 'node:dgram';
import { Member, type MemberEvent } from '../../src/client/member.js';
import { systemClock } from '../../src/util/clock.js';
import { JoinGrant } from '../../src/wire/control.js';
import type { Pair } from './benchPki.js';
import { hangUp, loadMembers, request, type LoadMember } from './mtlsLoad.js';
import { IpcChild } from './ipcChild.js';

const HARNESS_FLAG = '--iolus-member-harness';

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export type HarnessRequest =
  | { op: 'init'; group: string; url: string; ca: string; names: string[]; pairs: Pair[] }
  /** Joins every member, `concurrency` at a time; none starts after `deadline` (nowMs()). */
  | { op: 'join'; concurrency: number; deadline: number }
  | { op: 'hang-up' }
  | { op: 'arm' }
  | { op: 'disarm' }
  /** Arrival times (ms after t0) of what was buffered, without feeding the members. */
  | { op: 'arrivals'; t0: number }
  /** Feeds the buffer to the members (every `stride`-th from `offset`; default all) but `except`. */
  | { op: 'process'; want: { kind: 'key'; epoch: number } | { kind: 'data'; tag: string }; t0: number; except?: number; stride?: number; offset?: number }
  | { op: 'send'; member: number; tag: string; size: number }
  | { op: 'raw-open'; sockets: number }
  | { op: 'raw-arrivals'; t0: number }
  | { op: 'raw-close' };

export interface JoinReport {
  joined: number;
  failed: string[];
  /** Members not tried because the deadline passed. */
  skipped: number;
  wallMs: number;
  latenciesMs: number[];
  group: { address: string; port: number };
}

export interface ProcessReport {
  /** Completion times (ms after t0) of the members that got what was wanted. */
  latencies: number[];
  /** For the same members: when the datagram that completed them arrived (ms after t0). */
  arrivedAt: number[];
  missing: number;
  /** Arrival times (ms after t0) of the datagrams buffered. */
  arrivals: number[];
  sizes: number[];
  /** Median and p99 of one member's processing of one datagram (µs). */
  procMedianUs: number;
  procP99Us: number;
  dropped: Record<string, number>;
}

interface Buffered {
  at: number;
  bytes: Uint8Array;
}

class Harness {
  private members: Member[] = [];
  /** Members that joined (a member skipped at the setup deadline takes no part in trials). */
  private joined: boolean[] = [];
  private clients: LoadMember[] = [];
  private group: Socket | undefined;
  private sender: Socket | undefined;
  private groupAddr: { address: string; port: number } | undefined;
  private armed = false;
  private buffer: Buffered[] = [];
  private raw: Socket[] = [];
  private rawArrivals: number[] = [];

  constructor(private readonly init: Extract<HarnessRequest, { op: 'init' }>) {}

  async join(concurrency: number, deadline: number): Promise<JoinReport> {
    const { group, url, ca, pairs } = this.init;
    const latencies: number[] = [];
    const failed: string[] = [];
    this.members = pairs.map(() => new Member(group, systemClock));
    // Each member's TLS context (its certificate and key, the group CA) is built as it joins.
    const target = new URL(url);
    const path = `/v1/groups/${encodeURIComponent(group)}/join`;
    let next = 0;
    let skipped = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < pairs.length) {
        const i = next++;
        if (nowMs() > deadline) {
          skipped++;
          continue;
        }
        const t = performance.now();
        try {
          const client = loadMembers(ca, [pairs[i]!], [this.init.names[i]!])[0]!;
          this.clients.push(client);
          const o = await request(client, target, group, 'full', 'POST', path, { group, role: 'member' });
          if (o.status !== 200) throw new Error(o.error ?? `HTTP ${o.status}: ${o.body.slice(0, 200)}`);
          const grant = JoinGrant.parse(JSON.parse(o.body));
          latencies.push(performance.now() - t);
          this.members[i]!.acceptGrant(grant);
          this.joined[i] = true;
          if (grant.transport.kind === 'multicast') this.groupAddr ??= { address: grant.transport.address, port: grant.transport.port };
        } catch (err) {
          failed.push(`${this.init.names[i]}: ${(err as Error).message}`);
        }
      }
    }));
    const wallMs = performance.now() - t0;
    if (!this.groupAddr) throw new Error('no member joined a multicast subgroup');
    await this.openGroup(this.groupAddr);
    return { joined: this.joined.filter(Boolean).length, failed: failed.slice(0, 5), skipped, wallMs, latenciesMs: latencies, group: this.groupAddr };
  }

  private async openGroup(g: { address: string; port: number }): Promise<void> {
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(g.port, g.address, () => resolve());
    });
    s.addMembership(g.address, '127.0.0.1');
    s.setRecvBufferSize(16 * 1024 * 1024);
    s.on('message', (msg) => {
      if (this.armed) this.buffer.push({ at: nowMs(), bytes: new Uint8Array(msg.buffer, msg.byteOffset, msg.length) });
    });
    this.group = s;
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => tx.bind(0, '127.0.0.1', () => resolve()));
    tx.setMulticastInterface('127.0.0.1');
    tx.setMulticastLoopback(true);
    tx.setMulticastTTL(1);
    this.sender = tx;
  }

  hangUp(): void {
    for (const c of this.clients) hangUp(c);
  }

  arm(): void {
    this.buffer = [];
    this.armed = true;
  }

  disarm(): number {
    this.armed = false;
    return this.buffer.length;
  }

  arrivals(t0: number): number[] {
    return this.buffer.map((d) => d.at - t0);
  }

  /** Feeds the buffered datagrams to every member (see the timing model above). */
  process(req: Extract<HarnessRequest, { op: 'process' }>): ProcessReport {
    const latencies: number[] = [];
    const arrivedAt: number[] = [];
    const procs: number[] = [];
    const dropped: Record<string, number> = {};
    let missing = 0;
    const want = req.want;
    const tagBytes = want.kind === 'data' ? Buffer.from(want.tag) : undefined;
    const hit = (e: MemberEvent) => (want.kind === 'key'
      ? e.type === 'subgroup-key' && e.epoch >= want.epoch
      : e.type === 'data' && e.payload !== undefined && tagBytes !== undefined && Buffer.from(e.payload).subarray(0, tagBytes.length).equals(tagBytes));
    const stride = req.stride ?? 1;
    for (let i = req.offset ?? 0; i < this.members.length; i += stride) {
      if (i === req.except || !this.joined[i]) continue;
      const m = this.members[i]!;
      let busyUntil = -Infinity;
      let done: number | undefined;
      let arrived = NaN;
      for (const d of this.buffer) {
        const t = process.hrtime.bigint();
        const events = m.receive(d.bytes);
        const dt = Number(process.hrtime.bigint() - t) / 1e6;
        procs.push(dt * 1000);
        busyUntil = Math.max(d.at, busyUntil) + dt;
        for (const e of events) {
          if (done === undefined && hit(e)) {
            done = busyUntil;
            arrived = d.at;
          }
          if (e.type === 'dropped') dropped[e.cause] = (dropped[e.cause] ?? 0) + 1;
        }
      }
      if (done === undefined) missing++;
      else {
        latencies.push(done - req.t0);
        arrivedAt.push(arrived - req.t0);
      }
    }
    procs.sort((a, b) => a - b);
    return {
      latencies, arrivedAt, missing,
      arrivals: this.buffer.map((d) => d.at - req.t0),
      sizes: this.buffer.map((d) => d.bytes.length),
      procMedianUs: procs[Math.floor(procs.length / 2)] ?? NaN,
      procP99Us: procs[Math.floor(procs.length * 0.99)] ?? NaN,
      dropped,
    };
  }

  /** Method-1 data from a member (the first joined one from index `from`); returns when it left (ms, monotonic) and who sent. */
  send(from: number, tag: string, size: number): { t0: number; member: number } {
    let member = -1;
    for (let k = 0; k < this.members.length; k++) {
      const i = (from + k) % this.members.length;
      if (this.joined[i]) {
        member = i;
        break;
      }
    }
    const m = this.members[member];
    if (!m || !this.sender || !this.groupAddr) throw new Error('no joined member to send from');
    const payload = Buffer.alloc(Math.max(size, tag.length), 0x2e);
    payload.write(tag);
    const out = m.send(new Uint8Array(payload), 1);
    if (out.kind !== 'subgroup') throw new Error(`method 1 produced ${out.kind}`);
    const t0 = nowMs();
    this.sender.send(out.bytes, this.groupAddr.port, this.groupAddr.address);
    return { t0, member };
  }

  /** Plain UDP sockets for the raw fan-out baseline; returns their ports. */
  async rawOpen(n: number): Promise<number[]> {
    this.rawArrivals = [];
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
      s.on('message', () => this.rawArrivals.push(nowMs()));
      this.raw.push(s);
      ports.push(s.address().port);
    }
    return ports;
  }

  rawTake(t0: number): number[] {
    const out = this.rawArrivals.map((a) => a - t0);
    this.rawArrivals = [];
    return out;
  }

  rawClose(): void {
    for (const s of this.raw) s.close();
    this.raw = [];
  }

  close(): void {
    this.hangUp();
    this.group?.close();
    this.sender?.close();
    this.rawClose();
  }
}

async function main(): Promise<void> {
  let h: Harness | undefined;
  process.on('message', (msg: { id: number; req: HarnessRequest | { op: 'exit' } }) => {
    const { id, req } = msg;
    const reply = (result: unknown) => process.send!({ id, result });
    const fail = (err: unknown) => process.send!({ id, error: (err as Error).stack ?? String(err) });
    (async () => {
      switch (req.op) {
        case 'init':
          h = new Harness(req);
          return null;
        case 'exit':
          h?.close();
          setTimeout(() => process.exit(0), 20);
          return null;
      }
      if (!h) throw new Error('not initialized');
      switch (req.op) {
        case 'join': return h.join(req.concurrency, req.deadline);
        case 'hang-up': return h.hangUp();
        case 'arm': return h.arm();
        case 'disarm': return h.disarm();
        case 'arrivals': return h.arrivals(req.t0);
        case 'process': return h.process(req);
        case 'send': return h.send(req.member, req.tag, req.size);
        case 'raw-open': return h.rawOpen(req.sockets);
        case 'raw-arrivals': return h.rawTake(req.t0);
        case 'raw-close': return h.rawClose();
      }
    })().then(reply, fail);
  });
}

if (process.send && process.argv.includes(HARNESS_FLAG)) void main();

/** The parent's side: one forked harness process and a request/answer call over IPC. */
export class HarnessProcess extends IpcChild<HarnessRequest> {
  private constructor(child: import('node:child_process').ChildProcess) {
    super(child, 'member harness');
  }

  static async start(): Promise<HarnessProcess> {
    const { fork } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    return new HarnessProcess(fork(fileURLToPath(import.meta.url), [HARNESS_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  }
}
