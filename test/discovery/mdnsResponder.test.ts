import { describe, expect, it } from 'vitest';
import { answerQuestions } from '../../src/discovery/mdns/responder.js';
import { zoneRecords, serviceRecords, type ServiceSpec } from '../../src/discovery/mdns/zone.js';
import { formatAgentTxt } from '../../src/discovery/mdns/agentTxt.js';
import type { MdnsQuestion } from '../../src/discovery/mdns/message.js';
import type { MdnsRecord } from '../../src/discovery/mdns/record.js';

const spec: ServiceSpec = {
  instance: 'agent A',
  type: '_iolus._tcp',
  host: 'host-a.local',
  port: 7443,
  txt: formatAgentTxt({ group: 'g1', role: 'controller', level: 0, fingerprint: 'cd'.repeat(32) }),
  ttl: { host: 120, service: 120 },
};
const zone = zoneRecords(spec, { ipv4: ['10.0.0.1'], ipv6: ['fe80::1'] });
const q = (name: string, type: string): MdnsQuestion => ({ name, type, unicastResponse: false });
const show = (rs: readonly MdnsRecord[] | undefined) => (rs ?? []).map((r) => `${r.type} ${r.name}`);

describe('answering questions (RFC 6762 §6, RFC 6763 §12)', () => {
  it('answers a browse (PTR) with the instance, and SRV, TXT, A, AAAA as additionals; delayed (shared)', () => {
    const reply = answerQuestions([q('_iolus._tcp.local', 'PTR')], [], zone);
    expect(show(reply?.answers)).toEqual(['PTR _iolus._tcp.local']);
    expect(show(reply?.additionals)).toEqual(['SRV agent A._iolus._tcp.local', 'TXT agent A._iolus._tcp.local', 'A host-a.local', 'AAAA host-a.local']);
    expect(reply?.shared).toBe(true);
  });

  it('answers service type enumeration (RFC 6763 §9)', () => {
    const reply = answerQuestions([q('_services._dns-sd._udp.local', 'PTR')], [], zone);
    expect(reply?.answers.map((r) => r.data)).toEqual(['_iolus._tcp.local']);
    expect(reply?.additionals).toEqual([]);
  });

  it('answers SRV with addresses, TXT alone, A with AAAA; unique answers are not delayed', () => {
    const srv = answerQuestions([q('AGENT A._iolus._tcp.local', 'SRV')], [], zone);
    expect(show(srv?.answers)).toEqual(['SRV agent A._iolus._tcp.local']);
    expect(show(srv?.additionals)).toEqual(['A host-a.local', 'AAAA host-a.local']);
    expect(srv?.shared).toBe(false);
    const txt = answerQuestions([q('agent A._iolus._tcp.local', 'TXT')], [], zone);
    expect(show(txt?.answers)).toEqual(['TXT agent A._iolus._tcp.local']);
    expect(txt?.additionals).toEqual([]);
    const a = answerQuestions([q('HOST-A.local.', 'A')], [], zone);
    expect(show(a?.answers)).toEqual(['A host-a.local']);
    expect(show(a?.additionals)).toEqual(['AAAA host-a.local']);
  });

  it('answers ANY with every record of the name', () => {
    const reply = answerQuestions([q('agent A._iolus._tcp.local', 'ANY')], [], zone);
    expect(show(reply?.answers)).toEqual(['SRV agent A._iolus._tcp.local', 'TXT agent A._iolus._tcp.local']);
  });

  it('stays silent on questions that are not ours', () => {
    expect(answerQuestions([q('_http._tcp.local', 'PTR')], [], zone)).toBeUndefined();
    expect(answerQuestions([q('agent B._iolus._tcp.local', 'SRV')], [], zone)).toBeUndefined();
    expect(answerQuestions([q('host-a.local', 'MX')], [], zone)).toBeUndefined();
    expect(answerQuestions([q('_iolus._tcp.local', 'SRV')], [], zone)).toBeUndefined();
    expect(answerQuestions([], [], zone)).toBeUndefined();
  });

  it('suppresses known answers with at least half our TTL left (RFC 6762 §7.1)', () => {
    const ptr = serviceRecords(spec).ptr;
    expect(answerQuestions([q('_iolus._tcp.local', 'PTR')], [{ ...ptr, ttl: 60 }], zone)).toBeUndefined();
    const stale = answerQuestions([q('_iolus._tcp.local', 'PTR')], [{ ...ptr, ttl: 59 }], zone);
    expect(show(stale?.answers)).toEqual(['PTR _iolus._tcp.local']);
    // A known answer with other data does not suppress ours.
    expect(answerQuestions([q('_iolus._tcp.local', 'PTR')], [{ ...ptr, data: 'other._iolus._tcp.local' }], zone)).toBeDefined();
  });

  it('does not repeat an answer as an additional, nor send additionals the querier knows', () => {
    const s = serviceRecords(spec);
    const reply = answerQuestions([q('_iolus._tcp.local', 'PTR'), q('agent A._iolus._tcp.local', 'SRV')], [s.txt], zone);
    expect(show(reply?.answers)).toEqual(['PTR _iolus._tcp.local', 'SRV agent A._iolus._tcp.local']);
    expect(show(reply?.additionals)).toEqual(['A host-a.local', 'AAAA host-a.local']);
  });
});
