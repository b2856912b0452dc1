import { describe, expect, it } from 'vitest';
import { decodeTxt, encodeTxt, formatTxt } from '../../src/discovery/mdns/txt.js';
import { formatAgentTxt, parseAgentTxt } from '../../src/discovery/mdns/agentTxt.js';
import { ValidationError } from '../../src/errors.js';

const FP = 'a1'.repeat(32);
const b = (s: string) => Buffer.from(s, 'utf8');

describe('TXT key/value strings (RFC 6763 §6)', () => {
  it('round-trips values, booleans and UTF-8', () => {
    const strings = encodeTxt([
      ['txtvers', '1'],
      ['flag', true],
      ['empty', ''],
      ['name', 'Grüße=ok'],
    ]);
    expect(strings.map((s) => s.toString())).toEqual(['txtvers=1', 'flag', 'empty=', 'name=Grüße=ok']);
    const back = decodeTxt(strings);
    expect([...back]).toEqual([
      ['txtvers', '1'],
      ['flag', true],
      ['empty', ''],
      ['name', 'Grüße=ok'],
    ]);
    expect(formatTxt(back)).toBe('txtvers=1 flag empty= name=Grüße=ok');
  });

  it('encodes an empty set as one empty string (§6.1)', () => {
    expect(encodeTxt([])).toEqual([Buffer.alloc(0)]);
  });

  it('refuses strings over 255 bytes, bad keys and duplicate keys', () => {
    expect(() => encodeTxt([['k', 'x'.repeat(254)]])).toThrow(ValidationError);
    expect(() => encodeTxt([['k', 'x'.repeat(253)]])).not.toThrow();
    expect(() => encodeTxt([['a=b', '1']])).toThrow(/without '='/);
    expect(() => encodeTxt([['', '1']])).toThrow(ValidationError);
    expect(() => encodeTxt([['Key', '1'], ['key', '2']])).toThrow(/twice/);
  });

  it('decodes keys case-insensitively, first occurrence wins, "=value" and empty strings ignored (§6.4)', () => {
    const m = decodeTxt([b(''), b('=orphan'), b('Group=g1'), b('GROUP=g2'), b('role=controller')]);
    expect([...m]).toEqual([
      ['group', 'g1'],
      ['role', 'controller'],
    ]);
  });

  it('skips keys with non-printable bytes instead of throwing', () => {
    const m = decodeTxt([Buffer.from([0x01, 0x3d, 0x41]), Buffer.from([0xff, 0xfe]), b('ok=1')]);
    expect([...m]).toEqual([['ok', '1']]);
  });
});

describe('Iolus agent TXT', () => {
  const agent = { group: 'media/news', role: 'intermediary' as const, level: 2, fingerprint: FP };

  it('puts txtvers first and carries group, role, level, fp', () => {
    const strings = formatAgentTxt(agent).map((s) => s.toString());
    expect(strings).toEqual(['txtvers=1', 'group=media/news', 'role=intermediary', 'level=2', `fp=${FP}`]);
  });

  it('parses what it formats', () => {
    const r = parseAgentTxt(decodeTxt(formatAgentTxt(agent)));
    expect(r).toEqual({ ok: true, value: agent });
  });

  it('normalizes an openssl-style fingerprint', () => {
    const colons = FP.toUpperCase().match(/../g)!.join(':');
    const r = parseAgentTxt(decodeTxt([b('txtvers=1'), b('group=g'), b('role=controller'), b('level=0'), b(`fp=${colons}`)]));
    expect(r.ok && r.value.fingerprint).toBe(FP);
  });

  it.each([
    ['unknown txtvers', ['txtvers=2', 'group=g', 'role=controller', 'level=0', `fp=${FP}`], 'txtvers'],
    ['missing group', ['txtvers=1', 'role=controller', 'level=0', `fp=${FP}`], 'group'],
    ['bad role', ['txtvers=1', 'group=g', 'role=member', 'level=0', `fp=${FP}`], 'role'],
    ['bad level', ['txtvers=1', 'group=g', 'role=controller', 'level=-1', `fp=${FP}`], 'level'],
    ['short fp', ['txtvers=1', 'group=g', 'role=controller', 'level=0', 'fp=abcd'], 'fp'],
    ['boolean group', ['txtvers=1', 'group', 'role=controller', 'level=0', `fp=${FP}`], 'group'],
  ])('refuses %s with a reason naming the key', (_name, strings, key) => {
    const r = parseAgentTxt(decodeTxt(strings.map(b)));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(key);
  });

  it('refuses our own bad config with ValidationError', () => {
    expect(() => formatAgentTxt({ ...agent, fingerprint: 'nope' })).toThrow(ValidationError);
    expect(() => formatAgentTxt({ ...agent, group: 'g'.repeat(201) })).toThrow(/200 bytes/);
  });
});
