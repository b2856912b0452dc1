/** Where a group's local agent listens: a Unix socket per group, in a directory only its user can enter. */
import { join } from 'node:path';
import { GroupName } from '../../wire/control.js';
import { ValidationError } from '../../errors.js';

export function runDir(): string {
  if (process.env.IOLUS_RUN_DIR) return process.env.IOLUS_RUN_DIR;
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/iolus' : `/tmp/iolus-${uid}`;
}

export function defaultSocketPath(group: string): string {
  if (!GroupName.safeParse(group).success) throw new ValidationError('agent.group', `--group: ${JSON.stringify(group)} is not a group name`);
  return join(runDir(), `${group}.sock`);
}
