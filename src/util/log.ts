/**
 * Structured logs (pino), one logger per component. Key bytes never reach a log: the redact
 * list covers every field name we use for secrets, and code logs epochs and fingerprints only.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'key', '*.key', 'memberKey', '*.memberKey', 'subgroupKey', '*.subgroupKey', 'kgrp2', '*.kgrp2',
  'secret', '*.secret', 'token', '*.token', 'privateKey', '*.privateKey', 'masterKey', '*.masterKey',
];

let root: Logger | undefined;
let toStderr = process.env.IOLUS_LOG_STDERR === '1';

/** Commands whose stdout is their output (member, getkey, watch) send logs to stderr. */
export function logToStderr(): void {
  toStderr = true;
  root = undefined;
}

export function rootLogger(): Logger {
  if (!root) {
    root = pino({
      level: process.env.IOLUS_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    }, pino.destination({ fd: toStderr ? 2 : 1, sync: true }));
  }
  return root;
}

export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...bindings });
}

/** A logger that drops everything (unit tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
