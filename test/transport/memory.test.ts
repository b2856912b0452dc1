/**
 * The in-memory transport pair: multicast semantics (no loopback), copies, size checks and
 * counters like the network transports, async and manual delivery.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { MemoryAgentTransport, MemoryBus, MemoryMemberTransport } from '../../src/transport/memory.js';
import { openAgentTransport, openMemberTransport } from '../../src/transport/factory.js';
import type { DatagramSource } from '../../src/transport/types.js';

const logger = silentLogger();

async function channel(bus: MemoryBus, n = 3) {
  const agent = openAgentTransport({ kind: 'memory', channel: 'c1' }, { logger, memoryBus: bus });
  const heard: { bytes: Uint8Array; source: DatagramSource }[] = [];
  agent.onDatagram((bytes, source) => heard.push({ bytes, source }));
  await agent.start();
  const members = [];
  for (let i = 0; i < n; i++) {
    const t = openMemberTransport(agent.descriptor, { logger, memoryBus: bus });
    const got: Uint8Array[] = [];
    t.onDatagram((b) => got.push(b));
    await t.start();
    members.push({ t, got });
  }
  return { agent, heard, members };
}

describe('memory transport', () => {
  it('behaves like multicast, delivering copies after the current task', async () => {
    const bus = new MemoryBus();
    const { agent, heard, members } = await channel(bus);
    const bytes = Uint8Array.of(1, 2, 3);
    agent.multicast(bytes);
    bytes[0] = 9; // the sender's buffer is copied at send time
    expect(members[0]!.got).toEqual([]);
    await bus.settled();
    for (const m of members) expect(m.got).toEqual([Uint8Array.of(1, 2, 3)]);

    members[0]!.t.sendSubgroup(Uint8Array.of(4));
    members[1]!.t.sendAgent(Uint8Array.of(5));
    await bus.settled();
    expect(members.map((m) => m.got.length)).toEqual([1, 2, 2]);
    expect(heard.map((h) => h.bytes[0])).toEqual([4, 5]);
    expect(heard[0]!.source).toEqual({ address: 'memory', port: (members[0]!.t as MemoryMemberTransport).port });
    expect(agent.counters.datagramsIn).toBe(2);
    expect(agent.counters.datagramsOut).toBe(3);
  });

  it('lets a test move the network by hand, and checks sizes', async () => {
    const bus = new MemoryBus({ delivery: 'manual' });
    const { agent, members } = await channel(bus, 1);
    agent.multicast(Uint8Array.of(1));
    agent.multicast(new Uint8Array(0));
    agent.multicast(new Uint8Array(65_001));
    expect(Object.fromEntries(agent.counters.dropped)).toEqual({ empty: 1, oversized: 1 });
    await new Promise((r) => setTimeout(r, 5));
    expect(members[0]!.got).toEqual([]);
    expect(bus.flush()).toBe(1);
    expect(members[0]!.got).toEqual([Uint8Array.of(1)]);
  });

  it('has one agent per channel, stops cleanly, and catches forwarding loops', async () => {
    const bus = new MemoryBus({ delivery: 'manual', maxDeliveriesPerDrain: 1000 });
    const { agent, members } = await channel(bus, 1);
    await expect(new MemoryAgentTransport({ channel: 'c1' }, { bus, logger }).start()).rejects.toThrow(/already has an agent/);
    // An echo loop between agent and member:
    agent.onDatagram((b) => agent.multicast(b));
    members[0]!.t.onDatagram((b) => members[0]!.t.sendAgent(b));
    agent.multicast(Uint8Array.of(1));
    expect(() => bus.flush()).toThrow(/forwarding loop/);
    await agent.stop();
    await agent.stop();
    await members[0]!.t.stop();
    agent.multicast(Uint8Array.of(1));
    expect(agent.counters.dropped.get('not-running')).toBe(1);
    const again = new MemoryAgentTransport({ channel: 'c1' }, { bus, logger });
    await again.start(); // the channel is free again
    await again.stop();
  });
});
