/**
 * What a querier asks (RFC 6762 §5, RFC 6763 §4-§6): browse for a service type, then fill in what
 * the instances still lack; each question with the answers we already hold (§7.1). Pure.
 */
import type { RecordCache } from './cache.js';
import type { Incomplete } from './instances.js';
import type { MdnsRecord, RecordType } from './record.js';
import { serviceTypeName } from './names.js';
import { rrsetKey } from './record.js';

export interface Question {
  name: string;
  type: RecordType;
}

/** Known answers that fit comfortably in one packet (§7.2 allows more packets; we do not need them). */
const MAX_KNOWN_ANSWERS = 24;

export function browseQuestion(type: string): Question {
  return { name: serviceTypeName(type), type: 'PTR' };
}

/** Questions for the records incomplete instances lack, each asked once. */
export function followUpQuestions(incomplete: readonly Incomplete[]): Question[] {
  const out = new Map<string, Question>();
  for (const i of incomplete) for (const m of i.missing) out.set(rrsetKey(m.name, m.type), { name: m.name, type: m.type });
  return [...out.values()];
}

/** Known answers for the questions, from the cache (only those with more than half their TTL left). */
export function knownAnswersFor(questions: readonly Question[], cache: RecordCache, now: number): MdnsRecord[] {
  return questions.flatMap((q) => cache.knownAnswers(q.name, q.type, now)).slice(0, MAX_KNOWN_ANSWERS);
}
