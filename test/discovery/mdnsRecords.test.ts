import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import { randomBytes } from 'node:crypto';
import { hostName, instanceName, instanceOf, sameName, serviceTypeName, toHostLabel, truncateUtf8 } from '../../src/discovery/mdns/names.js';
import { announcementRecords, goodbyeRecords, serviceRecords, zoneRecords, type ServiceSpec } from '../../src/discovery/mdns/zone.js';
import { FLAG_AUTHORITATIVE, legacyResponsePacket, queryPacket, readMessage, responsePacket } from '../../src/discovery/mdns/message.js';
import { readRecord, recordKey } from '../../src/discovery/mdns/record.js';
import { formatAgentTxt } from '../../src/discovery/mdns/agentTxt.js';
import { CodecError, ValidationError } from '../../src/errors.js';

const spec: ServiceSpec = {
  instance: 'g1 intermediary box:7443',
  type: '_iolus._tcp',
  host: 'iolus-box.local',
  port: 7443,
  txt: formatAgentTxt({ group: 'g1', role: 'intermediary', level: 1, fingerprint: 'ab'.repeat(32) }),
  ttl: { host: 120, service: 4500 },
};
const addrs = { ipv4: ['10.0.0.1'], ipv6: ['fe80::1'] };

describe('DNS-SD names', () => {
  it('builds and takes apart instance names, case-insensitively', () => {
    const type = serviceTypeName('_iolus._tcp');
    expect(type).toBe('_iolus._tcp.local');
    const name = instanceName('My Agent', type);
    expect(name).toBe('My Agent._iolus._tcp.local');
    expect(instanceOf('My Agent._IOLUS._TCP.LOCAL.', type)).toBe('My Agent');
    // Other publishers' instance names may contain dots: everything before the type is the instance.
    expect(instanceOf('v1.2 box._iolus._tcp.local', type)).toBe('v1.2 box');
    expect(instanceOf('_iolus._tcp.local', type)).toBeUndefined();
    expect(instanceOf('x._other._tcp.local', type)).toBeUndefined();
    expect(sameName('A.Local.', 'a.local')).toBe(true);
  });

  it('refuses labels we cannot encode', () => {
    expect(() => serviceTypeName('iolus._tcp')).toThrow(ValidationError);
    expect(() => serviceTypeName('_iolus._sctp')).toThrow(ValidationError);
    expect(() => instanceName('a.b', '_iolus._tcp.local')).toThrow(/must not contain/);
    expect(() => instanceName('x'.repeat(64), '_iolus._tcp.local')).toThrow(/1-63 bytes/);
    expect(() => hostName('bad host.name.local')).not.toThrow();
    expect(hostName('box')).toBe('box.local');
    expect(hostName('box.local.')).toBe('box.local');
  });

  it('makes host labels and truncates UTF-8 on character boundaries', () => {
    expect(toHostLabel('My_Host.example.com')).toBe('my-host-example-com');
    expect(toHostLabel('___')).toBe('iolus');
    expect(truncateUtf8('ééé', 5)).toBe('éé');
  });
});

describe('service records (RFC 6763 §4-§9, RFC 6762 §10.2)', () => {
  it('has PTR, SRV, TXT, A/AAAA and the meta PTR with the right flush bits and TTLs', () => {
    const s = serviceRecords(spec);
    expect(s.ptr).toMatchObject({ name: '_iolus._tcp.local', data: 'g1 intermediary box:7443._iolus._tcp.local', flush: false, ttl: 4500 });
    expect(s.meta).toMatchObject({ name: '_services._dns-sd._udp.local', data: '_iolus._tcp.local', flush: false });
    expect(s.srv).toMatchObject({ flush: true, ttl: 120, data: { port: 7443, target: 'iolus-box.local', priority: 0, weight: 0 } });
    expect(s.txt).toMatchObject({ flush: true, ttl: 4500 });
    const zone = zoneRecords(spec, addrs);
    expect(zone.filter((r) => r.type === 'A' || r.type === 'AAAA').map((r) => [r.type, r.data, r.flush, r.ttl])).toEqual([
      ['A', '10.0.0.1', true, 120],
      ['AAAA', 'fe80::1', true, 120],
    ]);
  });

  it('announces everything but the meta PTR; says goodbye (TTL 0) only for the service records', () => {
    expect(announcementRecords(spec, addrs).map((r) => r.type)).toEqual(['PTR', 'SRV', 'TXT', 'A', 'AAAA']);
    const bye = goodbyeRecords(spec);
    expect(bye.map((r) => [r.type, r.ttl])).toEqual([
      ['PTR', 0],
      ['SRV', 0],
      ['TXT', 0],
    ]);
  });
});

describe('messages on the wire', () => {
  it('round-trips a response through dns-packet, with AA set and ID 0 (RFC 6762 §18)', () => {
    const records = zoneRecords(spec, addrs);
    const bytes = dnsPacket.encode(responsePacket(records.slice(0, 3), records.slice(3)));
    expect(bytes.readUInt16BE(0)).toBe(0);
    expect(bytes.readUInt16BE(2) & FLAG_AUTHORITATIVE).toBe(FLAG_AUTHORITATIVE);
    expect(bytes.readUInt16BE(2) & 0x8000).toBe(0x8000);
    const msg = readMessage(dnsPacket.decode(bytes));
    expect(msg.kind).toBe('response');
    expect(msg.answers.map(recordKey)).toEqual(records.slice(0, 3).map(recordKey));
    expect(msg.additionals.map(recordKey)).toEqual(records.slice(3).map(recordKey));
    expect(msg.answers.map((r) => r.flush)).toEqual([false, true, true]);
    expect(msg.malformed).toBe(0);
  });

  it('reads the QU bit that dns-packet leaves in the class (RFC 6762 §5.4)', () => {
    const bytes = dnsPacket.encode(queryPacket([{ name: '_iolus._tcp.local', type: 'PTR' }]));
    expect(readMessage(dnsPacket.decode(bytes)).questions[0]).toEqual({ name: '_iolus._tcp.local', type: 'PTR', unicastResponse: false });
    bytes.writeUInt16BE(0x8001, bytes.length - 2); // set QU on the only question
    expect(readMessage(dnsPacket.decode(bytes)).questions[0]?.unicastResponse).toBe(true);
  });

  it('carries known answers in a query (RFC 6762 §7.1)', () => {
    const known = [serviceRecords(spec).ptr];
    const msg = readMessage(dnsPacket.decode(dnsPacket.encode(queryPacket([{ name: '_iolus._tcp.local', type: 'PTR' }], known))));
    expect(msg.kind).toBe('query');
    expect(msg.answers.map(recordKey)).toEqual(known.map(recordKey));
  });

  it('builds legacy unicast replies with the query ID, the question, TTL ≤ 10 and no flush bit (RFC 6762 §6.7)', () => {
    const query = readMessage(dnsPacket.decode(dnsPacket.encode({ ...queryPacket([{ name: '_iolus._tcp.local', type: 'PTR' }]), id: 4242 })));
    const s = serviceRecords(spec);
    const reply = readMessage(dnsPacket.decode(dnsPacket.encode(legacyResponsePacket(query, [s.ptr], [s.srv]))));
    expect(reply.id).toBe(4242);
    expect(reply.questions).toHaveLength(1);
    expect(reply.answers[0]?.ttl).toBe(10);
    expect(reply.additionals[0]).toMatchObject({ ttl: 10, flush: false });
  });

  it('refuses non-mDNS headers and skips malformed or foreign records', () => {
    expect(() => readMessage(null)).toThrow(CodecError);
    expect(() => readMessage({ type: 'query', opcode: 'UPDATE', rcode: 'NOERROR' })).toThrow(/opcode/);
    expect(() => readMessage({ type: 'response', opcode: 'QUERY', rcode: 'SERVFAIL' })).toThrow(/rcode/);
    const msg = readMessage({
      type: 'response',
      opcode: 'QUERY',
      rcode: 'NOERROR',
      answers: [
        { name: 'x.local', type: 'A', class: 'IN', ttl: 120, data: 'not-an-ip' },
        { name: 'x.local', type: 'NSEC', class: 'IN', ttl: 120, data: {} },
        { name: 'x.local', type: 'SRV', class: 'IN', ttl: 120, data: { port: 70000, target: 'y.local' } },
        { name: 'x.local', type: 'A', class: 'IN', ttl: -5, data: '10.0.0.1' },
        'junk',
        { name: 'x.local', type: 'A', class: 'IN', ttl: 120, data: '10.0.0.9' },
      ],
    });
    expect(msg.answers).toHaveLength(1);
    expect(msg.unsupported).toBe(1);
    expect(msg.malformed).toBe(4);
  });

  it('never throws anything but CodecError on decoded garbage (fuzz)', () => {
    const good = dnsPacket.encode(responsePacket(zoneRecords(spec, addrs)));
    let decoded = 0;
    for (let i = 0; i < 1500; i++) {
      const bytes = i % 2 === 0 ? randomBytes(1 + (i % 200)) : Buffer.from(good);
      if (i % 2 === 1) {
        for (let k = 0; k < 1 + (i % 5); k++) {
          const at = (i * 7919 + k * 104729) % bytes.length;
          bytes[at] = bytes[at]! ^ (1 + ((i + k) % 255));
        }
      }
      let raw: unknown;
      try {
        raw = dnsPacket.decode(bytes);
      } catch {
        continue; // the transport counts these as malformed
      }
      decoded++;
      try {
        readMessage(raw);
      } catch (err) {
        expect(err).toBeInstanceOf(CodecError);
      }
    }
    expect(decoded).toBeGreaterThan(100);
  });

  it('readRecord canonicalizes AAAA and refuses scoped addresses', () => {
    const r = readRecord({ name: 'h.local', type: 'AAAA', class: 'IN', ttl: 1, data: 'FE80:0:0::1' });
    expect(r.ok && r.record.data).toBe('fe80::1');
    expect(readRecord({ name: 'h.local', type: 'AAAA', class: 'IN', ttl: 1, data: 'fe80::1%eth0' }).ok).toBe(false);
    expect(readRecord({ name: 'h.local', type: 'A', class: 'CH', ttl: 1, data: '1.2.3.4' })).toMatchObject({ ok: false, unsupported: true });
  });
});
