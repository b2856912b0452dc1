/**
 * Unicast fan-out with real sockets on 127.0.0.1: an agent and three members. A member's
 * method-1 datagram reaches the other two and the agent once (never back to the sender);
 * multicast() reaches all three; method 2 stays with the agent; empty, oversized and stranger
 * datagrams are dropped and counted by cause.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { silentLogger } from '../../src/util/log.js';
import { MessageType } from '../../src/wire/header.js';
import { UnicastAgentTransport, UnicastMemberTransport } from '../../src/transport/udpUnicast.js';
import { totalDropped } from '../../src/transport/datagram.js';
import type { DatagramSource } from '../../src/transport/types.js';

const logger = silentLogger();
const HOST = '127.0.0.1';
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0)) await s();
});

function frame(type: number, tag: number, length = 64): Uint8Array {
  const b = new Uint8Array(length).fill(tag);
  b[0] = 1;
  b[1] = 1;
  b[2] = type;
  return b;
}

async function until(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets stray datagrams arrive before counting what did. */
const settle = () => new Promise((r) => setTimeout(r, 100));

async function subgroup(n = 3) {
  const agent = new UnicastAgentTransport({ kind: 'unicast', host: HOST, port: 0 }, { logger });
  stops.push(() => agent.stop());
  const heard: { bytes: Uint8Array; source: DatagramSource }[] = [];
  agent.onDatagram((bytes, source) => heard.push({ bytes, source }));
  await agent.start();
  const d = agent.descriptor;
  if (d.kind !== 'unicast') throw new Error('kind');
  const members: { t: UnicastMemberTransport; got: Uint8Array[]; id: number }[] = [];
  for (let i = 1; i <= n; i++) {
    const t = new UnicastMemberTransport({ agentHost: d.agentHost, agentPort: d.agentPort }, { logger });
    stops.push(() => t.stop());
    await t.start();
    const got: Uint8Array[] = [];
    t.onDatagram((b) => got.push(b));
    agent.addMember(i, t.endpoint());
    members.push({ t, got, id: i });
  }
  return { agent, heard, members };
}

describe('UnicastAgentTransport and UnicastMemberTransport on 127.0.0.1', () => {
  it('reflects a member datagram to the other members and hands it to the agent once', async () => {
    const { agent, heard, members } = await subgroup();
    const [a, b, c] = members as [typeof members[0], typeof members[0], typeof members[0]];
    expect(a.t.endpoint()).toEqual({ host: HOST, port: expect.any(Number) });
    const m1 = frame(MessageType.DataMethod1, 0xa1);
    a.t.sendSubgroup(m1);
    await until(() => b.got.length === 1 && c.got.length === 1 && heard.length === 1, 'reflection');
    await settle();
    expect(a.got).toEqual([]);
    expect(b.got).toEqual([m1]);
    expect(c.got).toEqual([m1]);
    expect(heard).toHaveLength(1);
    expect(heard[0]!.bytes).toEqual(m1);
    expect(heard[0]!.source).toEqual({ address: HOST, port: a.t.endpoint()!.port, memberId: 1 });
    expect(agent.reflected).toBe(1);
    expect(agent.counters.datagramsIn).toBe(1);
    expect(agent.counters.datagramsOut).toBe(2);
    expect(a.t.counters.datagramsOut).toBe(1);
  });

  it('multicast() reaches every member', async () => {
    const { agent, members } = await subgroup();
    const m = frame(MessageType.LeaveKeyUpdate, 0xb2, 1200);
    agent.multicast(m);
    await until(() => members.every((x) => x.got.length === 1), 'multicast');
    for (const x of members) expect(x.got[0]).toEqual(m);
    expect(agent.counters.datagramsOut).toBe(3);
    expect(agent.counters.bytesOut).toBe(3600);
  });

  it('keeps method-2 data (DataUp) with the agent', async () => {
    const { heard, members } = await subgroup();
    members[1]!.t.sendAgent(frame(MessageType.DataUp, 0xc3));
    await until(() => heard.length === 1, 'method 2');
    await settle();
    expect(members.map((x) => x.got.length)).toEqual([0, 0, 0]);
    expect(heard[0]!.source.memberId).toBe(2);
  });

  it('drops empty and oversized datagrams and strangers, counting each by cause', async () => {
    const { agent, heard, members } = await subgroup();
    const d = agent.descriptor as { agentHost: string; agentPort: number };
    const stranger = dgram.createSocket('udp4');
    stops.push(() => new Promise((r) => stranger.close(() => r())));
    const send = (bytes: Uint8Array) => new Promise<void>((r, j) => stranger.send(bytes, d.agentPort, d.agentHost, (e) => (e ? j(e) : r())));
    await send(frame(MessageType.DataMethod1, 1));
    await send(new Uint8Array(0));
    await send(new Uint8Array(65_001));
    await send(new Uint8Array(65_507));
    await send(new Uint8Array(65_000).fill(1)); // the largest allowed: from a stranger, still dropped
    await until(() => agent.counters.datagramsIn === 5, 'strangers');
    expect(Object.fromEntries(agent.counters.dropped)).toEqual({ 'unknown-source': 2, empty: 1, oversized: 2 });
    expect(agent.counters.bytesIn).toBe(64 + 65_001 + 65_507 + 65_000);

    // From a member: oversized and empty still dropped, the rest reflected.
    const a = members[0]!;
    a.t.sendSubgroup(new Uint8Array(65_001)); // refused before sending
    a.t.sendSubgroup(new Uint8Array(0));
    expect(Object.fromEntries(a.t.counters.dropped)).toEqual({ oversized: 1, empty: 1 });
    a.t.sendSubgroup(new Uint8Array(65_000).fill(7));
    await until(() => members[1]!.got.length === 1 && members[2]!.got.length === 1 && heard.length === 1, 'largest datagram');
    expect(members[1]!.got[0]!.length).toBe(65_000);

    // Members drop what the agent should never send.
    const raw = dgram.createSocket('udp4');
    stops.push(() => new Promise((r) => raw.close(() => r())));
    await new Promise<void>((r) => raw.bind(0, HOST, () => r()));
    raw.send(new Uint8Array(65_100), a.t.endpoint()!.port, HOST); // not from the agent: the connected socket filters it
    await settle();
    expect(a.t.counters.datagramsIn).toBe(0);
    expect(totalDropped(agent.counters)).toBe(5);
  });

  it('delivers strangers but never reflects them with acceptUnknownSources', async () => {
    const agent = new UnicastAgentTransport({ kind: 'unicast', host: HOST, port: 0, acceptUnknownSources: true }, { logger });
    stops.push(() => agent.stop());
    await agent.start();
    const heard: DatagramSource[] = [];
    agent.onDatagram((_, s) => heard.push(s));
    const m = new UnicastMemberTransport({ agentHost: HOST, agentPort: (agent.descriptor as { agentPort: number }).agentPort }, { logger });
    stops.push(() => m.stop());
    await m.start();
    const got: Uint8Array[] = [];
    m.onDatagram((b) => got.push(b));
    agent.addMember(1, m.endpoint());
    agent.receive(frame(MessageType.DataMethod1, 9), { address: '127.0.0.9', port: 999 });
    expect(heard).toEqual([{ address: '127.0.0.9', port: 999 }]);
    expect(agent.reflected).toBe(0);
    await settle();
    expect(got).toEqual([]);
  });

  it('stops forwarding to removed members, refuses bad endpoints, survives throwing handlers', async () => {
    const { agent, heard, members } = await subgroup();
    agent.removeMember(3);
    agent.onDatagram(() => {
      throw new Error('a bug upstream');
    });
    members[0]!.t.sendSubgroup(frame(MessageType.DataMethod1, 5));
    await until(() => members[1]!.got.length === 1 && heard.length === 1, 'reflection');
    await settle();
    expect(members[2]!.got).toEqual([]);
    expect(agent.counters.dropped.get('handler-error')).toBe(1);
    expect(() => agent.addMember(4)).toThrow(ValidationError);
    expect(() => agent.addMember(4, { host: '::1', port: 9 })).toThrow(/IPv6/);
    // A removed member's datagrams are a stranger's now.
    members[2]!.t.sendSubgroup(frame(MessageType.DataMethod1, 6));
    await until(() => agent.counters.dropped.get('unknown-source') === 1, 'stranger');
  });

  it('binds before the join (endpoint for the JoinRequest), then connects to the agent from the grant', async () => {
    const agent = new UnicastAgentTransport({ kind: 'unicast', host: HOST, port: 0 }, { logger });
    stops.push(() => agent.stop());
    await agent.start();
    // The agent's control-plane host: the route toward it picks the member's address.
    const early = new UnicastMemberTransport({ towards: HOST }, { logger });
    stops.push(() => early.stop());
    const endpoint = await early.bind();
    expect(endpoint).toEqual({ host: HOST, port: expect.any(Number) });
    expect(await early.bind()).toEqual(endpoint); // once
    agent.addMember(1, endpoint);
    const d = agent.descriptor as { agentHost: string; agentPort: number };
    early.setAgent(d.agentHost, d.agentPort);
    await early.start();
    expect(early.endpoint()).toEqual(endpoint);
    const got: Uint8Array[] = [];
    early.onDatagram((b) => got.push(b));
    agent.multicast(frame(MessageType.Heartbeat, 1));
    await until(() => got.length === 1, 'multicast to the early-bound member');
  });

  it('stop() is idempotent, and nothing is sent once stopped', async () => {
    const { agent, members } = await subgroup(1);
    await Promise.all([agent.stop(), agent.stop()]);
    await agent.stop();
    agent.multicast(frame(MessageType.Heartbeat, 1));
    expect(agent.counters.dropped.get('not-running')).toBe(1);
    await members[0]!.t.stop();
    await members[0]!.t.stop();
    members[0]!.t.sendSubgroup(frame(MessageType.DataMethod1, 1));
    expect(members[0]!.t.counters.dropped.get('not-running')).toBe(1);
    await expect(agent.start()).rejects.toThrow(/cannot start/);
  });
});
