/** Control-plane bodies (zod): valid bodies parse; anything else is refused, naming the field. */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { randomBytes, toBase64 } from '../../src/crypto/bytes.js';
import {
  CatchUpResponse, GroupName, JoinGrant, JoinRequest, Key32, LeaveRequest, RefreshRequest, RefreshResponse, TransportDescriptor,
} from '../../src/wire/control.js';
import { KGRP2_ANNOUNCEMENT_LENGTH } from '../../src/wire/kgrp2Announcement.js';

const b64 = (n: number) => toBase64(randomBytes(n));

/** The problems as a caller would print them: `path: message`, one per issue. */
function problems(schema: z.ZodType, value: unknown): string[] {
  const r = schema.safeParse(value);
  if (r.success) return [];
  return r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}${i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : ''}`);
}

function expectRefused(schema: z.ZodType, value: unknown, field: RegExp): void {
  const p = problems(schema, value);
  expect(p.length, JSON.stringify(value)).toBeGreaterThan(0);
  expect(p.join('\n')).toMatch(field);
}

function grant(): Record<string, unknown> {
  return {
    version: 'v1',
    group: 'conf.example',
    memberId: 17,
    memberKey: b64(32),
    subgroup: { id: 0xdead_beef, epoch: 4, key: b64(32) },
    agent: { name: 'agent-a', publicKey: b64(32) },
    originators: [b64(32)],
    expiresAt: 1_700_000_060_000,
    refreshMs: 20_000,
    heartbeatMs: 5_000,
    transport: { kind: 'multicast', address: '239.1.2.3', port: 5004, ttl: 1, agentHost: '10.0.0.1', agentPort: 7000 },
    groupKeys: [b64(KGRP2_ANNOUNCEMENT_LENGTH), b64(KGRP2_ANNOUNCEMENT_LENGTH)],
  };
}

describe('valid bodies parse', () => {
  it('JoinRequest, with the default role', () => {
    expect(JoinRequest.parse({ group: 'conf.example' })).toEqual({ group: 'conf.example', role: 'member' });
    expect(JoinRequest.parse({ group: 'a', role: 'intermediary', endpoint: { host: '10.0.0.1', port: 1 } }).endpoint?.port).toBe(1);
    expect(JoinRequest.parse({ group: 'a', role: 'originator', endpoint: { host: 'fe80::1%eth0', port: 65_535 } }).role).toBe('originator');
  });

  it('JoinGrant, with and without K\' and delegation', () => {
    const g = grant();
    expect(JoinGrant.parse(g)).toEqual(g);
    const batch = { ...g, subgroup: { id: 1, epoch: 1 }, delegation: { until: null, acl: [{ allow: '*' }] } };
    expect(JoinGrant.parse(batch).subgroup.key).toBeUndefined();
    expect(JoinGrant.safeParse({ ...g, delegation: { until: 1_700_000_000_000, acl: [] } }).success).toBe(true);
  });

  it('RefreshRequest, RefreshResponse, LeaveRequest, CatchUpResponse', () => {
    expect(RefreshRequest.parse({ memberId: 1 })).toEqual({ memberId: 1 });
    expect(RefreshResponse.parse({ expiresAt: 0 })).toEqual({ expiresAt: 0 });
    expect(LeaveRequest.parse({ memberId: 0xffff_ffff })).toEqual({ memberId: 0xffff_ffff });
    const c = { subgroup: { id: 9, epoch: 2 ** 53 - 1, key: b64(32) }, groupKeys: [], expiresAt: 5 };
    expect(CatchUpResponse.parse(c)).toEqual(c);
  });

  it('every TransportDescriptor kind', () => {
    for (const t of [
      { kind: 'multicast', address: 'ff15::1', port: 5004, agentHost: 'fe80::2%eth0', agentPort: 7000 },
      { kind: 'multicast', address: '239.0.0.1', port: 1, ttl: 255, interface: 'eth0', agentHost: 'agent.example', agentPort: 65_535 },
      { kind: 'unicast', agentHost: 'agent.example', agentPort: 9000 },
      { kind: 'sse', path: '/v1/groups/a/events' },
      { kind: 'memory', channel: 'sg:a' },
    ]) expect(TransportDescriptor.parse(t)).toEqual(t);
  });

  it('GroupName: dot-separated lower-case labels up to 128 characters', () => {
    for (const n of ['a', '0', 'conf', 'conf.example', 'a-b.c-d.e', 'x1.y2', 'a'.repeat(128), `${'a'.repeat(63)}.${'b'.repeat(64)}`]) {
      expect(GroupName.safeParse(n).success, n).toBe(true);
    }
  });
});

describe('refusals name the field', () => {
  it('unknown fields, at every level', () => {
    expectRefused(JoinRequest, { group: 'a', admin: true }, /admin/);
    expectRefused(JoinRequest, { group: 'a', endpoint: { host: 'h', port: 1, tls: true } }, /endpoint.*tls/);
    expectRefused(JoinGrant, { ...grant(), extra: 1 }, /extra/);
    expectRefused(JoinGrant, { ...grant(), subgroup: { id: 1, epoch: 1, key: b64(32), secret: 'x' } }, /subgroup.*secret/);
    expectRefused(JoinGrant, { ...grant(), agent: { name: 'a', publicKey: b64(32), role: 'root' } }, /agent.*role/);
    expectRefused(RefreshRequest, { memberId: 1, epoch: 3 }, /epoch/);
    expectRefused(LeaveRequest, { memberId: 1, reason: 'bye' }, /reason/);
    expectRefused(CatchUpResponse, { subgroup: { id: 1, epoch: 1, key: b64(32) }, groupKeys: [], expiresAt: 1, more: 1 }, /more/);
    expectRefused(TransportDescriptor, { kind: 'sse', path: '/e', port: 1 }, /port/);
  });

  it('wrong base64 lengths and non-base64', () => {
    for (const bad of [b64(31), b64(33), b64(16), '', `${b64(32).slice(0, 43)}`, `${b64(32).slice(0, 42)}==`, 'A'.repeat(44), `${'_'.repeat(43)}=`, ` ${b64(32).slice(1)}`]) {
      expect(Key32.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
      expectRefused(JoinGrant, { ...grant(), memberKey: bad }, /^memberKey: /m);
    }
    expectRefused(JoinGrant, { ...grant(), subgroup: { id: 1, epoch: 1, key: b64(24) } }, /^subgroup\.key: key: /m);
    expectRefused(JoinGrant, { ...grant(), agent: { name: 'a', publicKey: b64(64) } }, /^agent\.publicKey: public key: /m);
    expectRefused(JoinGrant, { ...grant(), originators: [b64(32), b64(31)] }, /^originators\.1: /m);
    expectRefused(JoinGrant, { ...grant(), groupKeys: [b64(KGRP2_ANNOUNCEMENT_LENGTH - 1)] }, /^groupKeys\.0: KGRP2 announcement/m);
    expectRefused(CatchUpResponse, { subgroup: { id: 1, epoch: 1, key: 'not base64 at all, really!!!!!!!!!!!!!!!!!!' }, groupKeys: [], expiresAt: 1 }, /^subgroup\.key: /m);
  });

  it('bad group names', () => {
    for (const bad of ['', 'Conf', 'conf..example', '.conf', 'conf.', '-a', 'a-', 'a_b', 'a b', 'a/b', 'ä', 'a'.repeat(129), 7, null]) {
      expect(GroupName.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
      expectRefused(JoinRequest, { group: bad }, /^group: /m);
      expectRefused(JoinGrant, { ...grant(), group: bad }, /^group: /m);
    }
  });

  it('out-of-range and non-integer ports', () => {
    for (const port of [0, -1, 65_536, 1.5, '5004', Number.NaN, null]) {
      expectRefused(JoinRequest, { group: 'a', endpoint: { host: 'h', port } }, /^endpoint\.port: /m);
      expectRefused(TransportDescriptor, { kind: 'multicast', address: '239.1.1.1', port, agentHost: 'h', agentPort: 7000 }, /^port: /m);
      expectRefused(TransportDescriptor, { kind: 'multicast', address: '239.1.1.1', port: 5004, agentHost: 'h', agentPort: port }, /^agentPort: /m);
      expectRefused(TransportDescriptor, { kind: 'unicast', agentHost: 'h', agentPort: port }, /^agentPort: /m);
      expectRefused(JoinGrant, { ...grant(), transport: { kind: 'unicast', agentHost: 'h', agentPort: port } }, /^transport\.agentPort: /m);
    }
  });

  it('ids, epochs, times and counts out of range', () => {
    for (const memberId of [0, -1, 2 ** 32, 1.5, '1']) {
      expectRefused(RefreshRequest, { memberId }, /^memberId: /m);
      expectRefused(LeaveRequest, { memberId }, /^memberId: /m);
      expectRefused(JoinGrant, { ...grant(), memberId }, /^memberId: /m);
    }
    expectRefused(JoinGrant, { ...grant(), subgroup: { id: 0, epoch: 1 } }, /^subgroup\.id: /m);
    expectRefused(JoinGrant, { ...grant(), subgroup: { id: 1, epoch: 0 } }, /^subgroup\.epoch: /m);
    expectRefused(CatchUpResponse, { subgroup: { id: 1, epoch: 2 ** 53, key: b64(32) }, groupKeys: [], expiresAt: 1 }, /^subgroup\.epoch: /m);
    expectRefused(JoinGrant, { ...grant(), refreshMs: 0 }, /^refreshMs: /m);
    expectRefused(JoinGrant, { ...grant(), expiresAt: -1 }, /^expiresAt: /m);
    expectRefused(JoinGrant, { ...grant(), version: 'v2' }, /^version: /m);
    expectRefused(JoinGrant, { ...grant(), originators: Array.from({ length: 17 }, () => b64(32)) }, /^originators: /m);
    expectRefused(JoinGrant, { ...grant(), groupKeys: Array.from({ length: 9 }, () => b64(KGRP2_ANNOUNCEMENT_LENGTH)) }, /^groupKeys: /m);
    expectRefused(JoinGrant, { ...grant(), transport: { kind: 'multicast', address: '239.1.1.1', port: 1, ttl: 256, agentHost: 'h', agentPort: 7000 } }, /^transport\.ttl: /m);
    expectRefused(TransportDescriptor, { kind: 'multicast', address: '239.1.1.1', port: 1 }, /^agentHost: [\s\S]*^agentPort: /m);
    expectRefused(JoinRequest, { group: 'a', role: 'controller' }, /^role: /m);
    expectRefused(JoinRequest, { group: 'a', endpoint: { host: 'bad host', port: 1 } }, /^endpoint\.host: host: /m);
    expectRefused(TransportDescriptor, { kind: 'carrier-pigeon' }, /^kind: /m);
    for (const missing of ['memberKey', 'transport', 'agent', 'subgroup']) {
      const g = grant();
      delete g[missing];
      expectRefused(JoinGrant, g, new RegExp(`^${missing}: `, 'm'));
    }
  });

  it('non-objects are refused, not thrown on', () => {
    for (const v of [null, undefined, 1, 'x', [], true]) {
      for (const s of [JoinRequest, JoinGrant, RefreshRequest, LeaveRequest, CatchUpResponse, TransportDescriptor] as z.ZodType[]) {
        expect(s.safeParse(v).success).toBe(false);
      }
    }
  });
});
