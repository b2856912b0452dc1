/**
 * Security claims as properties (paper §2: a member may use the group only while authorized).
 * The adversary is an Eavesdropper that hears every subgroup and keeps every key it ever held.
 */
import { describe, expect, it } from 'vitest';
import { generateSigningKey, signBytes } from '../../src/crypto/sign.js';
import { randomKey, fromBase64 } from '../../src/crypto/bytes.js';
import { wrapKey } from '../../src/crypto/aead.js';
import { MessageType, SUITE_AES256GCM_ED25519, WIRE_VERSION, type Header } from '../../src/wire/header.js';
import { encodeJoinKeyUpdate, encodeLeaveKeyUpdate, RekeyReason } from '../../src/wire/keyUpdate.js';
import { encodeHeartbeat } from '../../src/wire/heartbeat.js';
import { encodeGroupEnd, EndReason } from '../../src/wire/groupEnd.js';
import { ContentType } from '../../src/wire/data.js';
import { encodeDataUnit, sealDataUnit } from '../../src/protocol/dataUnit.js';
import { Eavesdropper } from '../support/eavesdropper.js';
import { Tree, text } from '../support/tree.js';

function build(seed = 7) {
  const t = new Tree({ seed });
  t.addIntermediary('a', 'controller');
  t.addIntermediary('b', 'controller');
  t.addIntermediary('a1', 'a');
  for (const [m, agent] of [['c1', 'controller'], ['c2', 'controller'], ['x1', 'a'], ['x2', 'a'], ['z1', 'b'], ['y1', 'a1'], ['y2', 'a1'], ['y3', 'a1']] as const) {
    t.join(m, agent);
  }
  t.settle();
  return t;
}

/** Everything a member holds right now, as an adversary would keep it. */
function stealKeys(t: Tree, name: string, eve: Eavesdropper): void {
  const m = t.mustMember(name).member;
  eve.learn(m.subgroupKey);
  eve.learn(fromBase64(m.grant!.memberKey));
}

function sendFromEverywhere(t: Tree, tag: string): string[] {
  const sent: string[] = [];
  for (const tm of t.members.values()) {
    if (!tm.member.isJoined) continue;
    for (const method of [1, 2] as const) {
      const msg = `${tag}:${tm.name}:m${method}`;
      t.send(tm.name, msg, method);
      sent.push(msg);
    }
  }
  t.settle();
  return sent;
}

describe('forward secrecy: a member that left cannot decrypt what is sent after', () => {
  it.each(['leave', 'expel'] as const)('after %s, anywhere in the tree', (how) => {
    const t = build();
    const eve = new Eavesdropper(t.controller.agent.groupId);
    stealKeys(t, 'y2', eve);
    const before = sendFromEverywhere(t, 'before');
    eve.tap(t);
    if (how === 'leave') t.leave('y2');
    else t.expel('y2');
    t.settle();
    // The tree keeps changing after the departure: joins, leaves, periodic rekeys.
    t.join('y4', 'a1');
    t.leave('x2');
    t.settle();
    t.route('a1', { ...t.node('a1').agent.rekeyNow(), received: [] });
    t.settle();
    const after = sendFromEverywhere(t, 'after');
    eve.closure();
    expect(after.length).toBeGreaterThan(10);
    expect(eve.opened.filter((m) => m.startsWith('after'))).toEqual([]);
    // Sanity: the adversary's machinery works; it read traffic while it was a member.
    const eve2 = new Eavesdropper(t.controller.agent.groupId);
    stealKeys(t, 'y1', eve2);
    for (const b of eve.heard) eve2.hear(b);
    eve2.closure();
    expect(eve2.opened.filter((m) => m.startsWith('after')).length).toBeGreaterThan(0);
    expect(before.length).toBeGreaterThan(0);
  });

  it('an expelled member that keeps listening receives nothing after the expulsion', () => {
    const t = build();
    const y2 = t.mustMember('y2');
    t.expel('y2');
    t.settle();
    expect(y2.removed).toBe(true);
    y2.received.length = 0;
    sendFromEverywhere(t, 'after');
    expect(y2.received).toEqual([]);
  });
});

describe('backward secrecy: a joiner cannot decrypt what was sent before it joined', () => {
  it('in its own subgroup and elsewhere in the tree', () => {
    const t = build();
    const eve = new Eavesdropper(t.controller.agent.groupId);
    eve.tap(t);
    const before = sendFromEverywhere(t, 'before');
    t.join('new', 'a1');
    t.settle();
    stealKeys(t, 'new', eve);
    const after = sendFromEverywhere(t, 'after');
    eve.closure();
    expect(before.length).toBeGreaterThan(10);
    expect(eve.opened.filter((m) => m.startsWith('before'))).toEqual([]);
    expect(eve.opened.filter((m) => m.startsWith('after')).length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
  });
});

describe('a member holding the subgroup key cannot forge agent messages', () => {
  function forgeHeader(t: Tree, type: MessageType, epoch: number): Header {
    const a = t.node('a1').agent;
    return {
      version: WIRE_VERSION, suite: SUITE_AES256GCM_ED25519, type, group: a.groupId, subgroup: a.subgroupId,
      sender: 0, epoch, sequence: Date.now() * 1000 + 999_999, timestamp: t.clock.now(),
    };
  }

  it('rekey, heartbeat and GRP_END signed with any other key are dropped, state unchanged', () => {
    const t = build();
    const mallory = t.mustMember('y1').member;
    const victim = t.mustMember('y2').member;
    const epoch = victim.epoch;
    const sgKey = mallory.subgroupKey!;
    const evil = generateSigningKey();
    const sign = (c: Uint8Array) => signBytes(evil, c);
    const newKey = randomKey();
    const forged = [
      encodeJoinKeyUpdate(forgeHeader(t, MessageType.JoinKeyUpdate, epoch + 1), epoch, (aad) => wrapKey(sgKey, newKey, aad), sign),
      encodeLeaveKeyUpdate(forgeHeader(t, MessageType.LeaveKeyUpdate, epoch + 5), { reason: RekeyReason.Expel, partial: false, part: 0, parts: 1, memberIds: [mallory.memberId] }, (_id, aad) => wrapKey(sgKey, newKey, aad), sign),
      encodeHeartbeat(forgeHeader(t, MessageType.Heartbeat, epoch + 9), { groupEpoch: 99, intervalMs: 1000 }, sign),
      encodeGroupEnd(forgeHeader(t, MessageType.GroupEnd, epoch), { reason: EndReason.Shutdown }, sign),
    ];
    for (const f of forged) {
      const events = victim.receive(f);
      expect(events).toEqual([{ type: 'dropped', cause: 'bad-signature' }]);
    }
    // A member id as sender cannot carry an agent's message either.
    const asMember = encodeGroupEnd({ ...forgeHeader(t, MessageType.GroupEnd, epoch), sender: mallory.memberId }, { reason: EndReason.Shutdown }, sign);
    expect(victim.receive(asMember)).toEqual([{ type: 'dropped', cause: 'bad-signature' }]);
    expect(victim.epoch).toBe(epoch);
    expect(victim.isEnded).toBe(false);
    // And the agent's real messages still go through.
    t.send('y3', 'still fine');
    t.settle();
    expect(t.mustMember('y2').received.map((r) => text(r.payload))).toContain('still fine');
  });
});

describe('replays and older messages are refused', () => {
  it('a replayed key update, heartbeat or data message, and an older key update', () => {
    const t = build();
    const captured: Uint8Array[] = [];
    t.net.subscribe('sg:a1', 'recorder', (b) => captured.push(b));
    t.send('y1', 'once');
    t.join('y9', 'a1');
    t.settle();
    t.route('a1', { ...t.node('a1').agent.tick(), received: [] }); // heartbeat
    t.leave('y9');
    t.settle();
    const y2 = t.mustMember('y2');
    const epoch = y2.member.epoch;
    const got = y2.received.length;
    const causes = captured.flatMap((b) => y2.member.receive(b)).map((e) => (e.type === 'dropped' ? e.cause : e.type));
    expect(causes.length).toBe(captured.length);
    for (const c of causes) expect(['replay', 'stale']).toContain(c);
    expect(y2.member.epoch).toBe(epoch);
    expect(y2.received.length).toBe(got);
  });
});

describe('an insider cannot silence the agent or other senders', () => {
  it('unsigned data claiming the agent\'s id and a huge sequence does not block rekeys, heartbeats or GRP_END', () => {
    const t = build();
    const mallory = t.mustMember('y1').member;
    const a1 = t.node('a1').agent;
    const sg = mallory.subgroupKey!;
    const forge = (sender: number, origin: { subgroup: number; member: number; seq: number }, text: string) => {
      const unit = sealDataUnit(a1.groupId, ContentType.Application, origin, new TextEncoder().encode(text));
      const h: Header & { type: MessageType.DataMethod1 } = {
        version: WIRE_VERSION, suite: SUITE_AES256GCM_ED25519, type: MessageType.DataMethod1, group: a1.groupId, subgroup: a1.subgroupId,
        sender, epoch: a1.epoch, sequence: 2 ** 53 - 1, timestamp: t.clock.now(),
      };
      return encodeDataUnit(h, unit, sg, () => {});
    };
    const y3 = t.mustMember('y3').member;
    // Claims to be the agent, and pre-empts y3's future messages with an origin sequence far ahead.
    t.net.multicast('sg:a1', forge(0, { subgroup: a1.subgroupId, member: 999, seq: 2 ** 53 - 1 }, 'evil-1'));
    t.net.multicast('sg:a1', forge(y3.memberId, { subgroup: a1.subgroupId, member: y3.memberId, seq: 2 ** 53 - 1 }, 'evil-2'));
    t.settle();
    t.expel('y1');
    t.settle();
    const y2 = t.mustMember('y2');
    expect(y2.member.epoch).toBe(a1.epoch); // the rekey that expels Mallory still got through
    t.route('a1', { ...a1.tick(), received: [] });
    t.send('y3', 'y3 is not silenced');
    t.send('y3', 'nor its method 2', 2);
    t.settle();
    const got = y2.received.map((r) => text(r.payload));
    expect(got).toContain('y3 is not silenced');
    expect(got).toContain('nor its method 2');
    t.route('controller', { ...t.controller.agent.end(), received: [] });
    t.settle();
    expect(y2.ended).toBe(true);
  });
});
