/**
 * Which of our records answer a query (RFC 6762 §6), with known-answer suppression (§7.1) and
 * the additional records DNS-SD asks for (RFC 6763 §12). Pure: no sockets, no clock.
 */
import type { MdnsQuestion } from './message.js';
import { recordKey, type MdnsRecord } from './record.js';
import { sameName } from './names.js';

export interface Reply {
  answers: MdnsRecord[];
  additionals: MdnsRecord[];
  /**
   * True when an answer belongs to a shared RRset (PTR): the responder SHOULD then delay
   * 20-120 ms so answers from several hosts do not collide (RFC 6762 §6). Unique answers go out at once.
   */
  shared: boolean;
}

/** A question matches a record on name (case-insensitive, RFC 6762 §16) and type, or type ANY. */
export function matches(q: MdnsQuestion, r: MdnsRecord): boolean {
  return (q.type === 'ANY' || q.type === r.type) && sameName(q.name, r.name);
}

/**
 * Known-answer suppression (RFC 6762 §7.1): the querier lists what it holds; we stay silent about a
 * record it lists with at least half our TTL left.
 */
export function isKnown(r: MdnsRecord, knownAnswers: readonly MdnsRecord[]): boolean {
  const key = recordKey(r);
  return knownAnswers.some((k) => k.ttl >= r.ttl / 2 && recordKey(k) === key);
}

/** Records RFC 6763 §12 / RFC 6762 §6.2 recommend sending along with an answer. */
function additionalsFor(answer: MdnsRecord, zone: readonly MdnsRecord[]): MdnsRecord[] {
  const byName = (name: string, ...types: MdnsRecord['type'][]) => zone.filter((r) => types.includes(r.type) && sameName(r.name, name));
  switch (answer.type) {
    case 'PTR': {
      // §12.1: SRV and TXT of the instance, and the addresses of the SRV target.
      const instance = byName(answer.data, 'SRV', 'TXT');
      const targets = instance.flatMap((r) => (r.type === 'SRV' ? byName(r.data.target, 'A', 'AAAA') : []));
      return [...instance, ...targets];
    }
    case 'SRV':
      return byName(answer.data.target, 'A', 'AAAA'); // §12.2
    case 'A':
      return byName(answer.name, 'AAAA'); // RFC 6762 §6.2: the other family's addresses
    case 'AAAA':
      return byName(answer.name, 'A');
    case 'TXT':
      return []; // §12.3
  }
}

/**
 * Our reply to the questions of one query, or undefined when we have nothing to say (no match, or
 * every match suppressed by a known answer). Answers appear once; additionals that are already
 * answers or known to the querier are dropped.
 */
export function answerQuestions(questions: readonly MdnsQuestion[], knownAnswers: readonly MdnsRecord[], zone: readonly MdnsRecord[]): Reply | undefined {
  const answers = new Map<string, MdnsRecord>();
  for (const q of questions) {
    for (const r of zone) {
      if (matches(q, r) && !isKnown(r, knownAnswers)) answers.set(recordKey(r), r);
    }
  }
  if (answers.size === 0) return undefined;
  const additionals = new Map<string, MdnsRecord>();
  for (const a of answers.values()) {
    for (const r of additionalsFor(a, zone)) {
      const key = recordKey(r);
      if (!answers.has(key) && !isKnown(r, knownAnswers)) additionals.set(key, r);
    }
  }
  const list = [...answers.values()];
  return { answers: list, additionals: [...additionals.values()], shared: list.some((r) => !r.flush) };
}
