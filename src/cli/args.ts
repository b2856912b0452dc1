/**
 * CLI flag parsing: node:util parseArgs for the syntax, zod for the meaning. A bad flag is a
 * ValidationError with one line per problem naming the flag (main.ts prints them, exit 2).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { z } from 'zod';
import { ValidationError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<T> {
  values: T;
  positionals: string[];
}

export function parseFlags<S extends z.ZodType>(
  command: string,
  args: string[],
  options: Options,
  schema: S,
  allowPositionals = false,
): Parsed<z.infer<S>> {
  let raw: { values: Record<string, unknown>; positionals: string[] };
  try {
    raw = parseArgs({ args, options, allowPositionals, strict: true }) as typeof raw;
  } catch (err) {
    throw new ValidationError('cli.syntax', `${command}: ${(err as Error).message}`);
  }
  const result = schema.safeParse(raw.values);
  if (!result.success) {
    throw new ValidationError(
      'cli.invalid',
      result.error.issues.map((i) => `--${i.path.join('.') || '?'}: ${i.message}`),
    );
  }
  return { values: result.data as z.infer<S>, positionals: raw.positionals };
}
