#!/usr/bin/env node
/**
 * `iolus <command> …`: one binary, one module per command under ./commands.
 * Each command module exports `run(args: string[]): Promise<number>` (the exit code).
 */
import { ValidationError, IolusError } from '../errors.js';

const COMMANDS: Record<string, string> = {
  demo: 'a complete local deployment on embedded defaults (npm start)',
  keyd: 'run one agent (controller or intermediary) of one group',
  member: 'join a group as a member and print what arrives',
  pki: 'group CA: init, issue certificates',
  agent: 'long-running local member serving keys to pipelines',
  getkey: 'print the current key from the local agent',
  watch: 'print each key rollover as it happens',
  roll: 'force an immediate KGRP2 roll',
  usage: 'member-minutes from the usage ledger',
  relay: 'hitless SRTP relay: plain RTP in, SRTP out (and back)',
  pipeline: 'run a GStreamer or ffmpeg sender/receiver keyed from the local agent',
  directory: 'run or query the directory service',
  resolve: 'resolve a global group name to the local agent',
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([c, d]) => `  ${c.padEnd(width)}  ${d}`);
  return `usage: iolus <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(usage());
    return command ? 0 : 2;
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    process.stderr.write(`iolus: unknown command '${command}'\n\n${usage()}`);
    return 2;
  }
  let mod: { run(args: string[]): Promise<number> };
  try {
    mod = (await import(`./commands/${command}.js`)) as typeof mod;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String(err).includes(`commands/${command}.js`)) {
      process.stderr.write(`iolus: command '${command}' is not built in this version\n`);
      return 2;
    }
    throw err;
  }
  try {
    return await mod.run(rest);
  } catch (err) {
    if (err instanceof ValidationError) {
      for (const p of err.problems) process.stderr.write(`iolus ${command}: ${p}\n`);
      return 2;
    }
    if (err instanceof IolusError) {
      process.stderr.write(`iolus ${command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry || process.argv[1]?.endsWith('/cli/main.js')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`iolus: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 70;
    },
  );
}
