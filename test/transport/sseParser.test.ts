/**
 * The SSE parser against the WHATWG rules, split at every possible chunk boundary, with
 * garbage, comments, CR/CRLF/LF line ends, BOM, and bounded lines and events.
 */
import { describe, expect, it } from 'vitest';
import { decodeBase64, formatComment, formatDatagramEvent, SseParser, type SseEvent, type SseProblem } from '../../src/transport/sseParser.js';

function parse(chunks: string[], options: { maxLineLength?: number; maxEventLength?: number } = {}) {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const problems: SseProblem[] = [];
  const p = new SseParser({ ...options, onEvent: (e) => events.push(e), onComment: (c) => comments.push(c), onProblem: (x) => problems.push(x) });
  for (const c of chunks) p.push(c);
  return { events, comments, problems, parser: p };
}

/** Every way of cutting `text` in two, and in single characters. */
function splits(text: string): string[][] {
  const out: string[][] = [[text], [...text]];
  for (let i = 1; i < text.length; i++) out.push([text.slice(0, i), text.slice(i)]);
  return out;
}

const STREAM = [
  '\uFEFF: iolus subgroup',
  '',
  'event: datagram',
  'data: AQID',
  '',
  ': heartbeat',
  '',
  'garbage line without colon',
  'retry: 1000',
  'unknown: field',
  'event: datagram',
  'data:BAUG',
  '',
  'data: first',
  'data:  second (one space kept)',
  'data',
  'id: 7',
  '',
  'event: datagram',
  'data: lost at the end',
].join('\n');

const EXPECTED: SseEvent[] = [
  { event: 'datagram', data: 'AQID' },
  { event: 'datagram', data: 'BAUG' },
  { event: 'message', data: 'first\n second (one space kept)\n', id: '7' },
];

describe('SseParser', () => {
  it('gives the same events however the stream is cut', () => {
    for (const chunks of splits(STREAM)) {
      const r = parse(chunks);
      expect(r.events).toEqual(EXPECTED);
      expect(r.comments).toEqual([' iolus subgroup', ' heartbeat']);
      expect(r.problems).toEqual([]);
    }
  });

  it('takes CR, LF and CRLF line ends, a CRLF split across chunks counting once', () => {
    for (const eol of ['\r\n', '\r', '\n']) {
      const text = ['event: datagram', 'data: AQID', '', 'data: x', 'data: y', '', ''].join(eol);
      for (const chunks of splits(text)) expect(parse(chunks).events).toEqual([{ event: 'datagram', data: 'AQID' }, { event: 'message', data: 'x\ny' }]);
    }
    // A lone CR then LF in the next chunk is one line end, not an empty line (which would dispatch).
    expect(parse(['data: a\r', '\ndata: b\r', '\n\r\n']).events).toEqual([{ event: 'message', data: 'a\nb' }]);
  });

  it('discards an unterminated event at the end of a stream, and starts afresh after reset', () => {
    const r = parse(['event: datagram\ndata: AQID\n']);
    r.parser.end();
    r.parser.push('data: fresh\n\n');
    expect(r.events).toEqual([{ event: 'message', data: 'fresh' }]);
  });

  it('ignores events with no data and lines of garbage', () => {
    const garbage = ['\u0000\u0001\u0002', 'data', '::::', 'event', '   data: not a field', 'dAtA: wrong case', '\uFFFD\uFFFD', ''].join('\n') + '\n';
    const r = parse([garbage, 'event: datagram\n\n', 'event: datagram\ndata: ok\n\n']);
    expect(r.events).toEqual([{ event: 'message', data: '' }, { event: 'datagram', data: 'ok' }]);
  });

  it('skips a line over the bound, spoiling its event only, wherever the chunks cut', () => {
    const long = `data: ${'A'.repeat(200)}`;
    const text = `event: datagram\n${long}\ndata: tail\n\nevent: datagram\ndata: AQID\n\n`;
    for (const chunks of [[text], [...text], [text.slice(0, 50), text.slice(50, 180), text.slice(180)]]) {
      const r = parse(chunks, { maxLineLength: 100 });
      expect(r.events).toEqual([{ event: 'datagram', data: 'AQID' }]);
      expect(r.problems).toEqual(['line-too-long']);
    }
  });

  it('discards an event whose data lines add up beyond the bound', () => {
    const lines = Array.from({ length: 20 }, () => `data: ${'B'.repeat(40)}`).join('\n');
    const r = parse([`${lines}\n\ndata: small\n\n`], { maxLineLength: 100, maxEventLength: 500 });
    expect(r.events).toEqual([{ event: 'message', data: 'small' }]);
    expect(r.problems).toEqual(['event-too-long']);
  });

  it('is linear on big chunks of many lines', () => {
    const events = Array.from({ length: 20_000 }, (_, i) => `event: datagram\ndata: ${i}\n\n`).join('');
    const t0 = performance.now();
    const r = parse([events]);
    expect(r.events).toHaveLength(20_000);
    expect(performance.now() - t0).toBeLessThan(2_000);
  });

  it('round-trips datagrams up to 65,000 bytes through format and parse', () => {
    const sizes = [1, 2, 3, 100, 65_000];
    const text = sizes.map((n) => formatDatagramEvent(new Uint8Array(n).fill(n & 0xff))).join('') + formatComment('hb\nx');
    const r = parse([text]);
    expect(r.events.map((e) => decodeBase64(e.data)?.length)).toEqual(sizes);
    expect(r.comments).toEqual([' hb x']);
  });
});

describe('decodeBase64', () => {
  it('is strict', () => {
    expect(decodeBase64('AQID')).toEqual(new Uint8Array([1, 2, 3]));
    expect(decodeBase64('AQ==')).toEqual(new Uint8Array([1]));
    expect(decodeBase64('')).toEqual(new Uint8Array(0));
    for (const bad of ['AQI', 'AQ=', 'A===', 'AQ==AQID', 'AQ-_', 'AQ ID', '====', 'AQI\n']) expect(decodeBase64(bad), bad).toBeUndefined();
  });
});
