/**
 * ToolProcess with stand-in executables (shell scripts): exit codes and stderr surface as a
 * diagnosis, a stop or an exit takes the whole process group along, the watchdog kills the
 * groups when their parent goes, key files are private and removed.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { ToolProcess } from '../../../src/adapters/pipeline/toolProcess.js';
import { _watchdogProcess, guardedGroups } from '../../../src/adapters/pipeline/watchdog.js';

const dir = mkdtempSync(join(tmpdir(), 'iolus-toolproc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** Running (a zombie is not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function pidFrom(file: string): Promise<number> {
  for (let i = 0; i < 200 && !existsSync(file); i++) await sleep(10);
  await sleep(20);
  return Number(readFileSync(file, 'utf8').trim());
}

async function gone(pid: number, ms = 2000): Promise<boolean> {
  for (let t = 0; t < ms; t += 20) {
    if (!alive(pid)) return true;
    await sleep(20);
  }
  return false;
}

describe('ToolProcess', () => {
  it('surfaces the exit code with a diagnosis from stderr', async () => {
    const exe = script('no-element.sh', 'echo "Setting pipeline to PAUSED ..."\necho \'WARNING: erroneous pipeline: no element "srtpdec"\' >&2\nexit 1');
    const t = ToolProcess.start({ tool: 'gst-launch-1.0', args: [] }, { executable: exe });
    const exit = await t.exited;
    expect(exit).toMatchObject({ code: 1, signal: null, stopped: false });
    expect(t.failure()?.message).toBe('gst-launch-1.0 exited 1: no element srtpdec — install gstreamer1.0-plugins-bad');
    expect(t.failure()?.code).toBe('pipeline.exit');
  });

  it('a clean exit or a requested stop is no failure', async () => {
    const ok = ToolProcess.start({ tool: 'ffmpeg', args: [] }, { executable: script('ok.sh', 'exit 0') });
    await ok.exited;
    expect(ok.failure()).toBeUndefined();
    const long = ToolProcess.start({ tool: 'ffmpeg', args: [] }, { executable: script('long.sh', 'exec sleep 30') });
    const exit = await long.stop(1000);
    expect(exit.stopped).toBe(true);
    expect(exit.signal).toBe('SIGINT');
    expect(long.failure()).toBeUndefined();
  });

  it('names the package of a tool that is not installed', async () => {
    const t = ToolProcess.start({ tool: 'gst-launch-1.0', args: [] }, { executable: join(dir, 'no-such-tool') });
    await t.exited;
    expect(t.failure()?.message).toMatch(/^gst-launch-1.0 not found — install gstreamer1.0-tools/);
  });

  it('stop() takes the whole process group: what the tool forked dies with it (SIGKILL after the grace)', async () => {
    const pidfile = join(dir, 'child1.pid');
    // A background child of a non-interactive sh ignores SIGINT: only the group SIGKILL ends it.
    const t = ToolProcess.start({ tool: 'gst-launch-1.0', args: [pidfile] }, { executable: script('forks.sh', 'sleep 30 &\necho $! > "$1"\nwait') });
    const child = await pidFrom(pidfile);
    expect(alive(child)).toBe(true);
    await t.stop(300);
    expect(await gone(child)).toBe(true);
    expect(guardedGroups()).not.toContain(t.pid);
  });

  it('a tool that exits by itself leaves nothing behind', async () => {
    const pidfile = join(dir, 'child2.pid');
    const t = ToolProcess.start({ tool: 'ffmpeg', args: [pidfile] }, { executable: script('forks-exits.sh', 'sleep 30 &\necho $! > "$1"\nsleep 0.2\nexit 3') });
    const exit = await t.exited;
    expect(exit.code).toBe(3);
    expect(await gone(await pidFrom(pidfile))).toBe(true);
  });

  it('writes key files 0600 in a private directory and removes them at exit; stdout is handed over raw', async () => {
    let out = '';
    const t = ToolProcess.start(
      { tool: 'ffmpeg', args: ['{dir}/in.sdp'], files: { 'in.sdp': 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret\n' } },
      { executable: script('reads-file.sh', 'stat -c "%a" "$1"\nstat -c "%a" "$(dirname "$1")"\ncat "$1"\necho "$1"'), onStdout: (c) => (out += c.toString()) },
    );
    await t.exited;
    const [fileMode, dirMode, content, path] = out.trim().split('\n');
    expect([fileMode, dirMode, content]).toEqual(['600', '700', 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret']);
    expect(existsSync(path!)).toBe(false);
  });

  it('the watchdog kills every live group and removes key files when their parent is gone (its pipe closes)', async () => {
    const pidfile = join(dir, 'child3.pid');
    const t = ToolProcess.start(
      { tool: 'gst-launch-1.0', args: [pidfile, '{dir}/key.sdp'], files: { 'key.sdp': 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:secret\n' } },
      { executable: script('forks2.sh', 'sleep 30 &\necho "$! $2" > "$1"\nwait') },
    );
    for (let i = 0; i < 200 && !existsSync(pidfile); i++) await sleep(10);
    await sleep(20);
    const [childText, keyFile] = readFileSync(pidfile, 'utf8').trim().split(' ');
    const child = Number(childText);
    expect(existsSync(keyFile!)).toBe(true);
    const watchdog = _watchdogProcess();
    expect(watchdog?.exitCode).toBe(null);
    watchdog!.stdin!.end(); // what our death looks like to it
    await t.exited;
    expect(t.exit?.signal).toBe('SIGKILL');
    expect(await gone(child)).toBe(true);
    expect(existsSync(keyFile!)).toBe(false);
  });
});
