/**
 * Agent transport config (zod) and the address rules: admin-scoped IPv4 only, transient and
 * scoped IPv6 groups only, unicast hosts that can be bound and reached; errors name the field.
 */
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { AgentTransportConfig, isUnreachableUnicast, multicastGroupProblem, parseTransportConfig } from '../../src/transport/config.js';
import { openAgentTransport, openMemberTransport } from '../../src/transport/factory.js';
import { MulticastAgentTransport, MulticastMemberTransport } from '../../src/transport/udpMulticast.js';
import { UnicastAgentTransport, UnicastMemberTransport } from '../../src/transport/udpUnicast.js';
import { SseHub, SseMemberTransport } from '../../src/transport/sse.js';
import { MemoryAgentTransport, MemoryMemberTransport } from '../../src/transport/memory.js';
import { silentLogger } from '../../src/util/log.js';

function problems(input: unknown): string[] {
  try {
    parseTransportConfig(AgentTransportConfig, input);
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return [...(err as ValidationError).problems];
  }
  return [];
}

describe('multicast group addresses', () => {
  it.each(['239.0.0.1', '239.255.255.255', '239.192.10.20'])('accepts admin-scoped IPv4 %s', (a) => {
    expect(multicastGroupProblem(a)).toBeUndefined();
  });
  it.each(['224.0.0.251', '238.1.1.1', '240.0.0.1', '10.0.0.1', '255.255.255.255'])('refuses IPv4 %s', (a) => {
    expect(multicastGroupProblem(a)).toMatch(/administratively scoped/);
  });
  it.each(['ff12::1234', 'ff14::1', 'ff15::abcd', 'ff18::1', 'FF15::1', 'ff35:40:fd00::1'])('accepts transient scoped IPv6 %s', (a) => {
    expect(multicastGroupProblem(a)).toBeUndefined();
  });
  it.each([
    ['ff02::fb', /transient/],
    ['ff05::1:3', /transient/],
    ['ff11::1', /scope 1/],
    ['ff1e::1', /scope e/],
    ['ff13::1', /scope 3/],
    ['fe80::1', /not an IPv6 multicast/],
    ['fd00::1', /not an IPv6 multicast/],
    ['ff12::1%eth0', /zone/],
    ['group.example', /not an IPv4 or IPv6/],
  ])('refuses %s', (a, why) => {
    expect(multicastGroupProblem(a)).toMatch(why);
  });
});

describe('unicast hosts', () => {
  it.each(['0.0.0.0', '::', '0:0::0', '239.1.1.1', '224.0.0.1', '255.255.255.255', 'ff02::1'])('%s is unreachable', (a) => {
    expect(isUnreachableUnicast(a)).toBe(true);
  });
  it.each(['127.0.0.1', '10.1.2.3', '::1', 'fe80::1%eth0', 'fd00::2'])('%s is reachable', (a) => {
    expect(isUnreachableUnicast(a)).toBe(false);
  });
});

describe('AgentTransportConfig', () => {
  it('parses each kind with defaults', () => {
    expect(parseTransportConfig(AgentTransportConfig, { kind: 'multicast', address: '239.1.2.3', port: 5000, agentHost: '10.0.0.1', agentPort: 5001 }))
      .toEqual({ kind: 'multicast', address: '239.1.2.3', port: 5000, agentHost: '10.0.0.1', agentPort: 5001, loopback: true });
    expect(parseTransportConfig(AgentTransportConfig, { kind: 'unicast', host: '127.0.0.1', port: 0 }))
      .toEqual({ kind: 'unicast', host: '127.0.0.1', port: 0, acceptUnknownSources: false });
    expect(parseTransportConfig(AgentTransportConfig, { kind: 'sse' })).toEqual({ kind: 'sse', heartbeatMs: 15_000, maxBufferedBytes: 1024 * 1024 });
    expect(parseTransportConfig(AgentTransportConfig, { kind: 'multicast', address: 'ff15::7', port: 5000, ttl: 4, interface: 'eth0', agentHost: 'fd00::1', agentPort: 5001, loopback: false })).toMatchObject({ ttl: 4, loopback: false });
  });

  it('names every bad field', () => {
    const p = problems({ kind: 'multicast', address: '224.0.0.1', port: 70_000, ttl: 300, interface: 'eth 0', agentHost: '0.0.0.0', agentPort: -1 });
    expect(p).toEqual(expect.arrayContaining([
      expect.stringMatching(/^transport\.address: 224\.0\.0\.1 is not an administratively scoped/),
      expect.stringMatching(/^transport\.port: /),
      expect.stringMatching(/^transport\.ttl: /),
      expect.stringMatching(/^transport\.interface: /),
      expect.stringMatching(/^transport\.agentHost: 0\.0\.0\.0 is not a unicast address/),
      expect.stringMatching(/^transport\.agentPort: /),
    ]));
    expect(p).toHaveLength(6);
  });

  it('wants a zone (or an interface) for a link-local agent address', () => {
    expect(problems({ kind: 'unicast', host: 'fe80::1', port: 1 })).toEqual([expect.stringMatching(/^transport\.host: fe80::1 is link-local: give it a zone/)]);
    expect(problems({ kind: 'unicast', host: 'fe80::1%eth0', port: 1 })).toEqual([]);
    const mc = { kind: 'multicast', address: 'ff12::9', port: 5000, agentHost: 'fe80::1', agentPort: 5001 };
    expect(problems(mc)).toEqual([expect.stringMatching(/^transport\.agentHost: fe80::1 is link-local/)]);
    expect(problems({ ...mc, interface: 'eth0' })).toEqual([]);
  });

  it('refuses host names, unknown fields and unknown kinds', () => {
    expect(problems({ kind: 'unicast', host: 'agent.example', port: 1 })).toEqual([expect.stringMatching(/^transport\.host: agent\.example is not an IP address/)]);
    expect(problems({ kind: 'unicast', host: '127.0.0.1', port: 1, extra: true })).toEqual([expect.stringMatching(/^transport: .*extra/)]);
    expect(problems({ kind: 'carrier-pigeon' })).toHaveLength(1);
    expect(problems({ kind: 'sse', path: 'no-slash' })).toEqual([expect.stringMatching(/^transport\.path: /)]);
  });
});

describe('factory', () => {
  const logger = silentLogger();
  it('opens the agent side by kind', () => {
    expect(openAgentTransport({ kind: 'multicast', address: '239.1.2.3', port: 5000, agentHost: '10.0.0.1', agentPort: 5001 }, { logger })).toBeInstanceOf(MulticastAgentTransport);
    expect(openAgentTransport({ kind: 'unicast', host: '127.0.0.1', port: 4000 }, { logger })).toBeInstanceOf(UnicastAgentTransport);
    const hub = openAgentTransport({ kind: 'sse' }, { logger, ssePath: '/v1/groups/g/events' });
    expect(hub).toBeInstanceOf(SseHub);
    expect(hub.descriptor).toEqual({ kind: 'sse', path: '/v1/groups/g/events' });
    expect(openAgentTransport({ kind: 'memory', channel: 'c' }, { logger })).toBeInstanceOf(MemoryAgentTransport);
  });

  it('reports descriptors; port 0 only after start', () => {
    const m = openAgentTransport({ kind: 'multicast', address: '239.1.2.3', port: 5000, ttl: 2, agentHost: '10.0.0.1', agentPort: 5001 }, { logger });
    expect(m.descriptor).toEqual({ kind: 'multicast', address: '239.1.2.3', port: 5000, ttl: 2, agentHost: '10.0.0.1', agentPort: 5001 });
    const u = openAgentTransport({ kind: 'unicast', host: '127.0.0.1', port: 0 }, { logger });
    expect(() => u.descriptor).toThrow(/after it/);
  });

  it('refuses bad config with a ValidationError naming the field', () => {
    expect(() => openAgentTransport({ kind: 'multicast', address: '8.8.8.8', port: 1, agentHost: '10.0.0.1', agentPort: 1 })).toThrow(/transport\.address/);
    expect(() => openAgentTransport({ kind: 'sse' })).toThrow(/transport\.path: required/);
  });

  it('opens the member side by descriptor kind', () => {
    expect(openMemberTransport({ kind: 'multicast', address: '239.1.2.3', port: 5000, agentHost: '10.0.0.1', agentPort: 5001 }, { logger })).toBeInstanceOf(MulticastMemberTransport);
    expect(openMemberTransport({ kind: 'unicast', agentHost: '127.0.0.1', agentPort: 5001 }, { logger })).toBeInstanceOf(UnicastMemberTransport);
    const sseClient = { stream: async function* () {}, post: async () => {} };
    expect(openMemberTransport({ kind: 'sse', path: '/e' }, { logger, sseClient })).toBeInstanceOf(SseMemberTransport);
    expect(() => openMemberTransport({ kind: 'sse', path: '/e' }, { logger })).toThrow(/sseClient/);
    expect(openMemberTransport({ kind: 'memory', channel: 'c' }, { logger })).toBeInstanceOf(MemoryMemberTransport);
    // A descriptor naming a global group is refused by the member too.
    expect(() => openMemberTransport({ kind: 'multicast', address: '224.2.2.2', port: 5000, agentHost: '10.0.0.1', agentPort: 5001 }, { logger })).toThrow(ValidationError);
  });

  it('hands a pre-bound unicast member its agent', () => {
    const pre = new UnicastMemberTransport({ localHost: '127.0.0.1' }, { logger });
    expect(openMemberTransport({ kind: 'unicast', agentHost: '127.0.0.1', agentPort: 5001 }, { logger, unicast: pre })).toBe(pre);
  });
});
