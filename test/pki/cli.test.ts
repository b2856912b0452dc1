import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from '../../src/cli/commands/pki.js';
import { IolusError, UsageError, ValidationError } from '../../src/errors.js';
import { identityFromCertificate } from '../../src/pki/identity.js';
import { tempDir } from './helpers.js';

/**
 * `iolus pki …` as src/cli/main.ts runs it (exit 2 and one line per problem for a
 * ValidationError, exit 1 for another IolusError). main.ts itself cannot be imported under
 * vitest (its shebang line), so the integration test drives the built binary.
 */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  expect(command).toBe('pki');
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof ValidationError) {
      for (const p of err.problems) process.stderr.write(`iolus pki: ${p}\n`);
      return 2;
    }
    if (err instanceof IolusError) {
      process.stderr.write(`iolus pki: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

function capture(): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((err += String(chunk)), true));
  return { out: () => out, err: () => err };
}

describe('iolus pki', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());
  afterEach(() => vi.restoreAllMocks());

  it('init makes a CA and prints the files and fingerprint', async () => {
    const io = capture();
    expect(await main(['pki', 'init', dir, '--group', 'demo', '--days', '30'])).toBe(0);
    expect(io.out()).toContain(`certificate  ${join(dir, 'ca.crt')}`);
    expect(io.out()).toContain(`key          ${join(dir, 'ca.key')} (mode 0600)`);
    expect(io.out()).toMatch(/fingerprint {2}[0-9a-f]{64}/);
  });

  it('init refuses to overwrite (exit 1) unless --force', async () => {
    await expect(run(['init', dir, '--group', 'demo'])).rejects.toThrow(UsageError);
    let io = capture();
    expect(await main(['pki', 'init', dir, '--group', 'demo'])).toBe(1);
    expect(io.err()).toMatch(/a group CA already exists/);
    vi.restoreAllMocks();
    io = capture();
    expect(await main(['pki', 'init', dir, '--group', 'demo', '--force'])).toBe(0);
  });

  it('issue writes a certificate carrying the role', async () => {
    const io = capture();
    expect(await main(['pki', 'issue', dir, '--name', 'gw1', '--role', 'intermediary', '--dns', 'gw1.example', '--ip', '10.0.0.9'])).toBe(0);
    const cert = join(dir, 'issued', 'gw1.crt');
    expect(io.out()).toContain(`certificate  ${cert}`);
    expect(io.out()).toContain('names        DNS:localhost, DNS:gw1.example, IP:127.0.0.1, IP:::1, IP:10.0.0.9');
    const id = identityFromCertificate(await readFile(cert, 'utf8'));
    expect(id).toMatchObject({ principal: 'gw1', role: 'intermediary', group: 'demo' });
    expect(io.out()).toContain(`fingerprint  ${id.fingerprint}`);
    expect((await stat(join(dir, 'issued', 'gw1.key'))).mode & 0o777).toBe(0o600);
  });

  it.each([
    [['issue', '--name', 'a', '--role', 'king'], /^iolus pki: --role: must be one of member, intermediary, originator, admin, controller, got "king"$/m],
    [['issue', '--name', 'a'], /^iolus pki: --role: required/m],
    [['issue', '--role', 'member'], /^iolus pki: --name: required/m],
    [['issue', '--name', '../a', '--role', 'member'], /^iolus pki: --name: must be 1-64 characters/m],
    [['issue', '--name', 'a', '--role', 'member', '--days', 'ten'], /^iolus pki: --days: must be a whole number/m],
    [['issue', '--name', 'a', '--role', 'member', '--days', '0'], /^iolus pki: --days: must be at least 1/m],
    [['issue', '--name', 'a', '--role', 'controller', '--ip', '300.1.1.1'], /^iolus pki: --ip: "300.1.1.1" is not an IP address/m],
    [['issue', '--name', 'a', '--role', 'member', '--dns', 'a.example'], /^iolus pki: --dns: only agent roles/m],
    [['issue', '--name', 'a', '--role', 'member', '--colour', 'red'], /Unknown option '--colour'/],
    [['init', '--group', 'g'], /^iolus pki: <dir>: required/m],
    [['init', 'x', '--group', 'a b'], /^iolus pki: --group: must be 1-64 characters/m],
  ])('pki %j exits 2 naming the flag', async (args, message) => {
    const io = capture();
    const a = [...args];
    if (a[0] === 'issue') a.splice(1, 0, dir);
    expect(await main(['pki', ...a])).toBe(2);
    expect(io.err()).toMatch(message);
  });

  it('an unknown subcommand exits 2 with usage', async () => {
    const io = capture();
    expect(await main(['pki', 'revoke'])).toBe(2);
    expect(io.err()).toMatch(/unknown subcommand 'revoke'[\s\S]*usage:/);
  });
});
