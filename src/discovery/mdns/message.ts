/**
 * mDNS messages: reading what dns-packet decoded from the network (defensively: it is attacker
 * controlled) and building the packets we send (RFC 6762 §18 header rules).
 */
import type { Packet } from 'dns-packet';
import { CodecError } from '../../errors.js';
import { readRecord, toWire, type MdnsRecord } from './record.js';

export interface MdnsQuestion {
  name: string;
  /** Record type asked for, as dns-packet names it ('PTR', 'ANY', …); unknown types stay as text. */
  type: string;
  /** The QU bit: the querier would accept a unicast answer (RFC 6762 §5.4). */
  unicastResponse: boolean;
}

export interface MdnsMessage {
  kind: 'query' | 'response';
  id: number;
  /** TC bit: more known answers follow in another packet (RFC 6762 §7.2). */
  truncated: boolean;
  questions: MdnsQuestion[];
  answers: MdnsRecord[];
  authorities: MdnsRecord[];
  additionals: MdnsRecord[];
  /** Records of types/classes we do not use (NSEC, HINFO…): skipped, not an error. */
  unsupported: number;
  /** Records that are malformed: skipped and counted. */
  malformed: number;
}

/** Flags (RFC 1035 §4.1.1 bit positions in the second 16-bit word): AA and TC. */
export const FLAG_AUTHORITATIVE = 0x0400; // RFC 6762 §18.4: responses MUST set AA
const FLAG_TRUNCATED = 0x0200;
const MAX_QUESTIONS = 64; // a sanity bound: real queries carry a handful
const MAX_RECORDS = 512;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/**
 * The question class with the QU bit split off (RFC 6762 §5.4: the top bit of qclass).
 * dns-packet 5.6 does not split it: IN|QU decodes as 'UNKNOWN_32769', ANY|QU as 'UNKNOWN_33023'.
 */
function questionClass(c: unknown): { qu: boolean } | undefined {
  if (c === 'IN' || c === 'ANY') return { qu: false };
  if (c === 'UNKNOWN_32769' || c === 'UNKNOWN_33023') return { qu: true };
  return undefined;
}

/**
 * Reads one decoded packet. Throws CodecError only for a packet that is not mDNS at all
 * (RFC 6762 §18.3/§18.11: non-zero opcode or rcode MUST be silently ignored; the caller counts it).
 * Bad records inside an otherwise good packet are skipped and counted in `malformed`.
 */
export function readMessage(decoded: unknown): MdnsMessage {
  if (!isObject(decoded)) throw new CodecError('mdns.packet', 'not a DNS message');
  const kind = decoded.type;
  if (kind !== 'query' && kind !== 'response') throw new CodecError('mdns.packet', 'no QR bit');
  if (decoded.opcode !== 'QUERY') throw new CodecError('mdns.opcode', `opcode ${String(decoded.opcode)} (RFC 6762 §18.3)`);
  if (decoded.rcode !== 'NOERROR') throw new CodecError('mdns.rcode', `rcode ${String(decoded.rcode)} (RFC 6762 §18.11)`);
  const flags = typeof decoded.flags === 'number' ? decoded.flags : 0;
  const msg: MdnsMessage = {
    kind,
    id: typeof decoded.id === 'number' ? decoded.id : 0,
    truncated: (flags & FLAG_TRUNCATED) !== 0,
    questions: [],
    answers: [],
    authorities: [],
    additionals: [],
    unsupported: 0,
    malformed: 0,
  };
  const questions = Array.isArray(decoded.questions) ? decoded.questions : [];
  if (questions.length > MAX_QUESTIONS) throw new CodecError('mdns.oversized', `${questions.length} questions`);
  for (const q of questions) {
    if (!isObject(q) || typeof q.name !== 'string' || typeof q.type !== 'string' || q.name.length > 255) {
      msg.malformed++;
      continue;
    }
    const qclass = questionClass(q.class);
    if (!qclass) {
      msg.unsupported++;
      continue;
    }
    msg.questions.push({ name: q.name, type: q.type, unicastResponse: qclass.qu });
  }
  for (const [section, target] of [
    ['answers', msg.answers],
    ['authorities', msg.authorities],
    ['additionals', msg.additionals],
  ] as const) {
    const list = decoded[section];
    if (!Array.isArray(list)) continue;
    if (list.length > MAX_RECORDS) throw new CodecError('mdns.oversized', `${list.length} ${section}`);
    for (const raw of list) {
      const r = readRecord(raw);
      if (r.ok) target.push(r.record);
      else if (r.unsupported) msg.unsupported++;
      else msg.malformed++;
    }
  }
  return msg;
}

/** A multicast response: ID 0 and AA set, no questions (RFC 6762 §18.1, §18.4, §6). */
export function responsePacket(answers: readonly MdnsRecord[], additionals: readonly MdnsRecord[] = []): Packet {
  return {
    type: 'response',
    id: 0,
    flags: FLAG_AUTHORITATIVE,
    questions: [],
    answers: answers.map(toWire),
    additionals: additionals.map(toWire),
  };
}

/**
 * A legacy unicast response (RFC 6762 §6.7): echo the query ID and questions, TTL at most 10 s,
 * and no cache-flush bit, since a conventional resolver would read it as part of the class.
 */
export function legacyResponsePacket(query: MdnsMessage, answers: readonly MdnsRecord[], additionals: readonly MdnsRecord[]): Packet {
  const clip = (r: MdnsRecord): MdnsRecord => ({ ...r, ttl: Math.min(r.ttl, 10), flush: false });
  return {
    type: 'response',
    id: query.id,
    flags: FLAG_AUTHORITATIVE,
    questions: query.questions.map((q) => ({ name: q.name, type: q.type as never, class: 'IN' as const })),
    answers: answers.map(clip).map(toWire),
    additionals: additionals.map(clip).map(toWire),
  };
}

/**
 * A query (ID 0, RFC 6762 §18.1) with known answers (§7.1). Always QM: dns-packet cannot encode
 * the QU bit, and our queriers listen on 5353 for multicast answers anyway.
 */
export function queryPacket(questions: readonly { name: string; type: string }[], knownAnswers: readonly MdnsRecord[] = []): Packet {
  return {
    type: 'query',
    id: 0,
    flags: 0,
    questions: questions.map((q) => ({ name: q.name, type: q.type as never, class: 'IN' as const })),
    answers: knownAnswers.map(toWire),
  };
}
