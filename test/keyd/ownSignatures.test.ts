/**
 * An agent hears its own multicast back: what it signed itself is recognised without an
 * Ed25519 verification; anything else claiming to come from the agent is still verified, and
 * a forgery still counts as one.
 */
import { describe, expect, it, vi } from 'vitest';
import { generateSigningKey, signBytes, verifyBytes } from '../../src/crypto/sign.js';
import { admitAll } from '../../src/keyd/admission.js';
import { Controller } from '../../src/keyd/controller.js';
import { OwnSignatures } from '../../src/keyd/ownSignatures.js';
import { FakeClock } from '../../src/util/clock.js';
import { encodeHeartbeat } from '../../src/wire/heartbeat.js';
import { AGENT_SENDER, MessageType } from '../../src/wire/header.js';

function controller() {
  const c = new Controller({ group: 'g-own', name: 'ctl', signing: generateSigningKey(), transport: { kind: 'memory', channel: 'own' }, admit: admitAll }, new FakeClock());
  c.agent.join('alice', 'member');
  c.agent.join('bob', 'member');
  return c;
}

function subgroupBytes(out: { kind: string; bytes?: Uint8Array }[]): Uint8Array[] {
  return out.filter((o) => o.kind === 'subgroup').map((o) => o.bytes!);
}

describe('an agent hearing its own multicast', () => {
  it('takes what it signed as its own, and still counts a forgery under its sender id', () => {
    const c = controller();
    const [rekey] = subgroupBytes(c.agent.rekeyNow().out);
    expect(rekey).toBeDefined();
    expect(c.onSubgroup(rekey!).out).toEqual([]);
    expect(c.agent.stats.dropped.get('bad-signature')).toBeUndefined();

    // The same frame with one signature byte changed: not ours, so verified, and refused.
    const bad = new Uint8Array(rekey!);
    bad[bad.length - 1]! ^= 1;
    c.onSubgroup(bad);
    expect(c.agent.stats.dropped.get('bad-signature')).toBe(1);

    // A heartbeat under the agent's sender id signed by someone else.
    const evil = generateSigningKey();
    const a = c.agent;
    const forged = encodeHeartbeat(a.header(MessageType.Heartbeat), { groupEpoch: 0, intervalMs: 1000 }, (x) => signBytes(evil, x));
    c.onSubgroup(forged);
    expect(c.agent.stats.dropped.get('bad-signature')).toBe(2);
    expect(a.header(MessageType.Heartbeat).sender).toBe(AGENT_SENDER);
  });

  it('verifies an own frame it no longer remembers (and accepts it when genuine)', () => {
    const signing = generateSigningKey();
    const covered = new Uint8Array([1, 2, 3]);
    const s = signBytes(signing, covered);
    const own = new OwnSignatures(2);
    own.record(covered, s);
    expect(own.produced(covered, s)).toBe(true);
    expect(own.produced(new Uint8Array([1, 2, 4]), s)).toBe(false);
    own.record(new Uint8Array([9]), signBytes(signing, new Uint8Array([9])));
    own.record(new Uint8Array([8]), signBytes(signing, new Uint8Array([8])));
    expect(own.produced(covered, s)).toBe(false);
    expect(verifyBytes(signing.publicKey, covered, s)).toBe(true);
  });

  it('does not verify what it just sent', () => {
    const c = controller();
    const [rekey] = subgroupBytes(c.agent.rekeyNow().out);
    // The data plane reads the agent's public key only to verify.
    const spy = vi.spyOn(c.agent, 'publicKey', 'get');
    c.onSubgroup(rekey!);
    expect(spy).not.toHaveBeenCalled();
    const bad = new Uint8Array(rekey!);
    bad[bad.length - 1]! ^= 1;
    c.onSubgroup(bad);
    expect(spy).toHaveBeenCalled();
  });
});
