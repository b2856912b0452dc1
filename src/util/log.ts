/**
 * Structured logs (pino), one logger per component. Key bytes never reach a log: the redact
 * list covers every field name we use for secrets, and code logs epochs and fingerprints only.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Field names that hold secrets: redacted at the top level of a log object and one level down. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['key', 'memberKey', 'subgroupKey', 'kgrp2', 'secret', 'token', 'privateKey', 'masterKey']);
const CENSOR = '[redacted]';

/**
 * What pino's `redact` with paths `key`, `*.key`, … (for every name above) did, in one pass
 * over the object: pino's redaction runs a path matcher on every field of every line once any
 * path starts with `*`, about 30 µs a line, a fifth of a keyd join's own CPU in the joins
 * benchmark. Copy on write: the caller's objects are never changed. Pure; exported for tests.
 */
export function redactSecrets(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    let redacted: unknown = v;
    if (SECRET_FIELDS.has(k)) {
      redacted = CENSOR;
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v)) {
      const inner = v as Record<string, unknown>;
      let hit = false;
      for (const ik of Object.keys(inner)) if (SECRET_FIELDS.has(ik)) hit = true;
      if (hit) {
        const copy: Record<string, unknown> = v instanceof Error ? { ...pino.stdSerializers.err(v) } : { ...inner };
        for (const ik of Object.keys(copy)) if (SECRET_FIELDS.has(ik)) copy[ik] = CENSOR;
        redacted = copy;
      }
    }
    if (redacted !== v) {
      out ??= { ...obj };
      out[k] = redacted;
    }
  }
  return out ?? obj;
}

/** The options of every keyd/CLI logger (also for tests). */
export function loggerOptions(): LoggerOptions {
  return {
    level: process.env.IOLUS_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    formatters: { log: redactSecrets },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}

let root: Logger | undefined;
let toStderr = process.env.IOLUS_LOG_STDERR === '1';

/** Commands whose stdout is their output (member, getkey, watch) send logs to stderr. */
export function logToStderr(): void {
  toStderr = true;
  root = undefined;
}

export function rootLogger(): Logger {
  if (!root) {
    root = pino(loggerOptions(), pino.destination({ fd: toStderr ? 2 : 1, sync: true }));
  }
  return root;
}

export function createLogger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return rootLogger().child(redactSecrets({ component, ...bindings }));
}

/** A logger that drops everything (unit tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
