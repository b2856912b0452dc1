/**
 * An agent's side of data (paper §6.5). It listens to its own subgroup (method 1 data from
 * members, including child intermediaries forwarding up) and to unicasts from its members
 * (method 2's first hop), and sends data down into the subgroup: method 1 rewrapped under the
 * subgroup key, method 2 rewrapped and signed. What it accepts it hands to its owner, who
 * forwards it up the tree if there is an up.
 */
import { CryptoVerificationError } from '../errors.js';
import { verifyBytes } from '../crypto/sign.js';
import { ReplayWindows } from '../client/replayWindow.js';
import type { DataMethod } from '../client/member.js';
import { encodeDataUnit, hopWindowKey, openDataUnit, originKey, unwrapDataUnit, type DataUnit } from '../protocol/dataUnit.js';
import { RecentSet } from '../client/recentSet.js';
import type { Outbound } from '../protocol/outbound.js';
import { AGENT_SENDER, MessageType } from '../wire/header.js';
import { decodeMessage, type Message } from '../wire/message.js';
import { ContentType, type DataMessage } from '../wire/data.js';
import type { Agent } from './agent.js';

export type Received =
  | { ok: true; unit: DataUnit; method: DataMethod; out: Outbound[] }
  | { ok: false; cause: string };

export class AgentDataPlane {
  private readonly windows = new ReplayWindows<string>();
  private readonly origins = new RecentSet();

  constructor(private readonly agent: Agent) {}

  /** A datagram heard on the agent's own subgroup. */
  receive(bytes: Uint8Array): Received {
    const m = this.decode(bytes);
    if ('cause' in m) return this.drop(m.cause);
    const h = m.frame.header;
    if (h.sender === AGENT_SENDER) {
      // Our own multicast, heard back; a signed one must carry our signature, or it is a forgery to count.
      // One we just made is recognised by its hash (ownSignatures.ts); anything else is verified.
      const s = m.frame.signed;
      if (s && !this.agent.signedByUs(s.covered, s.signature) && !verifyBytes(this.agent.publicKey, s.covered, s.signature)) return this.drop('bad-signature');
      return { ok: false, cause: 'own' };
    }
    if (m.type !== MessageType.DataMethod1) return this.drop(m.type === MessageType.DataUp ? 'misrouted' : 'unexpected-type');
    const kek = this.agent.keyForEpoch(h.epoch);
    if (!kek) return this.drop(h.epoch > this.agent.epoch ? 'future-epoch' : 'stale');
    // Group keys go down through agents only (method 2 up), so each agent can leave out the unentitled first.
    if (m.body.contentType === ContentType.GroupKey) return this.drop('group-key-method-1');
    return this.accept(m, kek, 1);
  }

  /** A method-2 unicast from one of our members: unwrap under its member key. The owner multicasts it (send, signed). */
  receiveUp(bytes: Uint8Array): Received {
    const m = this.decode(bytes);
    if ('cause' in m) return this.drop(m.cause);
    if (m.type !== MessageType.DataUp) return this.drop('unexpected-type');
    const member = this.agent.members.get(m.frame.header.sender);
    if (!member || member.pending) return this.drop('unknown-sender');
    const o = m.body.origin;
    // A member originates only as itself; an intermediary also carries its subtree's data up.
    if (member.role !== 'intermediary' && (o.subgroup !== this.agent.subgroupId || o.member !== member.id)) return this.drop('forged-origin');
    if (m.body.contentType === ContentType.GroupKey && member.role !== 'originator' && member.role !== 'intermediary') return this.drop('not-originator');
    return this.accept(m, member.memberKey, 2);
  }

  /** The payload of an accepted unit (group keys are opened, application data need not be). */
  open(unit: DataUnit): Uint8Array {
    return openDataUnit(this.agent.groupId, unit);
  }

  /** Sends a unit down into our subgroup. */
  send(unit: DataUnit, method: DataMethod): Outbound {
    const a = this.agent;
    this.origins.add(originKey(unit.origin), a.now());
    const type = method === 2 ? MessageType.DataMethod2 : MessageType.DataMethod1;
    const bytes = encodeDataUnit(
      { ...a.header(type), type },
      unit,
      a.subgroupKey.key,
      () => {
        a.stats.wraps++;
      },
      method === 2 ? (c) => a.sign(c) : undefined,
    );
    a.stats.messagesOut++;
    a.stats.bytesOut += bytes.length;
    return { kind: 'subgroup', bytes };
  }

  private accept(m: Extract<Message, { body: DataMessage }>, kek: Uint8Array, method: DataMethod): Received {
    const h = m.frame.header;
    const wkey = hopWindowKey(false, h.sender, h.epoch);
    if (this.windows.check(wkey, h.sequence) !== 'new') return this.drop('replay');
    let unit: DataUnit;
    try {
      unit = unwrapDataUnit(m.frame, m.body, kek);
      // Method 1 is relayed on the strength of the data key's tag alone (the payload is never
      // touched, §6.5); before it signs (method 2) the agent authenticates the payload too.
      if (method === 2 || unit.contentType !== ContentType.Application) openDataUnit(this.agent.groupId, unit);
    } catch (err) {
      if (err instanceof CryptoVerificationError) return this.drop('bad-auth');
      throw err;
    }
    this.windows.accept(wkey, h.sequence);
    if (!this.origins.add(originKey(unit.origin), this.agent.now())) return this.drop('duplicate');
    return { ok: true, unit, method, out: [] };
  }

  private decode(bytes: Uint8Array): Message | { cause: string } {
    let m: Message;
    try {
      m = decodeMessage(bytes);
    } catch {
      return { cause: 'malformed' };
    }
    const h = m.frame.header;
    if (h.subgroup !== this.agent.subgroupId || Buffer.compare(h.group, this.agent.groupId) !== 0) return { cause: 'wrong-subgroup' };
    return m;
  }

  private drop(cause: string): Received {
    this.agent.stats.drop(cause);
    return { ok: false, cause };
  }
}
