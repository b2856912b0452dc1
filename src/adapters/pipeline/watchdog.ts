/**
 * The orphan guard. Every tool runs as the leader of its own process group (so a stop kills
 * the tool and whatever it forked); this module makes sure those groups die with us, however
 * we die:
 *
 * - normal exit, or an uncaught exception: an `exit` hook sends SIGKILL to every live group;
 * - SIGKILL, OOM, a crash in native code (no hook runs): a tiny `sh` watchdog, in its own
 *   process group, reads our registrations on a pipe; when the pipe closes (we are gone) it
 *   sends SIGKILL to every group still registered and removes the private directories (SDP
 *   files with keys) still registered.
 *
 * Registration protocol on the watchdog's stdin: `+<pgid>` when a tool starts, `-<pgid>` when
 * it has exited (so a recycled pid is never killed); `D<dir>` / `d<dir>` for directories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

const live = new Set<number>();
const dirs = new Set<string>();
let guard: ChildProcess | undefined;
let hooked = false;

// POSIX sh: keep the set of groups (and private directories); at EOF kill the groups left and
// remove the directories left. Directory paths come from mkdtemp (no newline in them).
const WATCHDOG = [
  'groups=" "',
  'dirs=""',
  'while IFS= read -r line; do',
  '  case "$line" in',
  '    +*) groups="$groups${line#+} " ;;',
  '    -*) groups=$(printf %s "$groups" | sed "s/ ${line#-} / /") ;;',
  '    D*) dirs="$dirs${line#D}',
  '" ;;',
  '    d*) dirs=$(printf %s "$dirs" | grep -vxF -- "${line#d}"; echo .); dirs=${dirs%.} ;;',
  '  esac',
  'done',
  'for g in $groups; do kill -KILL -"$g" 2>/dev/null; done',
  'printf %s "$dirs" | while IFS= read -r d; do [ -n "$d" ] && rm -rf -- "$d"; done',
].join('\n');

function watchdog(): ChildProcess | undefined {
  if (guard && guard.exitCode === null && guard.signalCode === null) return guard;
  try {
    const g = spawn('/bin/sh', ['-c', WATCHDOG], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    g.on('error', () => undefined); // no /bin/sh: the exit hook still covers ordinary exits
    g.stdin?.on('error', () => undefined);
    g.unref();
    (g.stdin as unknown as Socket | null)?.unref?.();
    guard = g;
    for (const pgid of live) g.stdin?.write(`+${pgid}\n`);
    for (const d of dirs) g.stdin?.write(`D${d}\n`);
    return g;
  } catch {
    return undefined;
  }
}

function killAllSync(): void {
  for (const pgid of live) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

/** Registers a process group to be killed if this process goes away first. */
export function guardGroup(pgid: number): void {
  if (!hooked) {
    hooked = true;
    process.on('exit', killAllSync);
  }
  live.add(pgid);
  watchdog()?.stdin?.write(`+${pgid}\n`);
}

/** The group's leader has exited and been reaped: forget it. */
export function releaseGroup(pgid: number): void {
  if (!live.delete(pgid)) return;
  if (guard?.stdin?.writable) guard.stdin.write(`-${pgid}\n`);
}

/** A private directory (key files) to remove if this process dies before it does. */
export function guardDir(path: string): void {
  if (path.includes('\n')) return;
  dirs.add(path);
  watchdog()?.stdin?.write(`D${path}\n`);
}

/** The directory was removed. */
export function releaseDir(path: string): void {
  if (!dirs.delete(path)) return;
  if (guard?.stdin?.writable) guard.stdin.write(`d${path}\n`);
}

/** Kills every guarded group now (SIGKILL); for a signal handler that is about to exit. */
export function killAllTools(): void {
  killAllSync();
}

/** Process groups started by tools and not yet reaped. */
export function guardedGroups(): number[] {
  return [...live];
}

/** The watchdog process, if one runs (tests end its stdin to play our death). */
export function _watchdogProcess(): ChildProcess | undefined {
  return guard;
}
