/** Secrets never reach a log line: the redaction that replaced pino's `redact` paths. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, redactSecrets } from '../../src/util/log.js';

function capture(): { log: pino.Logger; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } });
  const log = pino({ ...loggerOptions(), level: 'debug' }, sink);
  return { log, lines: () => chunks.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('log redaction', () => {
  it('censors secret fields at the top level and one level down, and leaves the rest', () => {
    const { log, lines } = capture();
    const input = { key: 'k', memberKey: 'mk', epoch: 3, nested: { subgroupKey: 'sk', kgrp2: 'g', keep: 1 }, other: { token: 't', secret: 's', privateKey: 'p', masterKey: 'm' }, list: [1, 2] };
    log.info(input, 'hello');
    const [l] = lines();
    expect(l).toMatchObject({
      key: '[redacted]', memberKey: '[redacted]', epoch: 3, msg: 'hello', list: [1, 2],
      nested: { subgroupKey: '[redacted]', kgrp2: '[redacted]', keep: 1 },
      other: { token: '[redacted]', secret: '[redacted]', privateKey: '[redacted]', masterKey: '[redacted]' },
    });
    // The caller's object is untouched.
    expect(input.key).toBe('k');
    expect(input.nested.subgroupKey).toBe('sk');
  });

  it('censors a secret property of a logged error', () => {
    const { log, lines } = capture();
    const err = Object.assign(new Error('boom'), { key: 'k' });
    log.error({ err }, 'failed');
    const [l] = lines();
    expect((l!.err as Record<string, unknown>).key).toBe('[redacted]');
    expect((l!.err as Record<string, unknown>).message).toBe('boom');
  });

  it('returns the same object when there is nothing to censor', () => {
    const o = { event: 'join', memberId: 4, principal: 'alice', nested: { a: 1 } };
    expect(redactSecrets(o)).toBe(o);
  });
});
