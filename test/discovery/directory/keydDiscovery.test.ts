/**
 * The agent side (src/keyd/discovery.ts) against a real directory on 127.0.0.1: it registers at
 * start, refreshes with its load every third of the TTL, unregisters on stop; a refusal is logged
 * with the reason and retried; a directory that is down does not stop it. Also the keyd config
 * section and the directory CLI's --check.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { AgentDiscovery, DiscoveryConfig } from '../../../src/keyd/discovery.js';
import { parseKeydConfig } from '../../../src/keyd/config.js';
import { DirectoryServer } from '../../../src/discovery/directory/server.js';
import { GroupTrust } from '../../../src/discovery/directory/trust.js';
import { run as directoryCommand } from '../../../src/cli/commands/directory.js';
import { silentLogger } from '../../../src/util/log.js';
import { ValidationError } from '../../../src/errors.js';
import { directoryConfig, testGroup, type Pair, type TestGroup } from './helpers.js';

let g1: TestGroup;
let other: TestGroup;
let dirCa: TestGroup;
let dirPair: Pair;
let dir: DirectoryServer;
let tmp: string;
const pairs: Record<string, Pair> = {};

function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk)) as Record<string, unknown>); cb(); } });
  return { logger: pino({ level: 'info' }, stream), lines };
}

beforeAll(async () => {
  [g1, other, dirCa] = await Promise.all([testGroup('g1'), testGroup('g1'), testGroup('directory')]);
  dirPair = await dirCa.issue('directory', 'controller');
  pairs['i-a'] = await g1.issue('i-a', 'intermediary');
  pairs['evil'] = await other.issue('evil', 'intermediary');
  dir = await DirectoryServer.start({ config: directoryConfig(), tls: { cert: dirPair.cert, key: dirPair.key }, trust: new GroupTrust([{ group: 'g1', caPem: g1.ca.certPem }]) }, { logger: silentLogger() });
  tmp = mkdtempSync(join(os.tmpdir(), 'iolus-keyd-discovery-'));
  writeFileSync(join(tmp, 'dir-ca.crt'), dirCa.ca.certPem);
});

afterAll(async () => {
  await dir?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const material = (p: Pair, g: TestGroup) => ({ ca: g.ca.certPem, cert: p.cert, key: p.key });

describe('AgentDiscovery', () => {
  it('registers at start, refreshes with its load, unregisters on stop', async () => {
    let members = 0;
    const { logger, lines } = capture();
    const config = DiscoveryConfig.parse({ site: 'site-x', directory: { url: dir.url, ca: join(tmp, 'dir-ca.crt'), ttl: '1500ms' } });
    const d = await AgentDiscovery.start(config, material(pairs['i-a']!, g1), { group: 'g1', name: 'i-a', role: 'intermediary', level: 1, url: 'https://127.0.0.1:7443', members: () => members, log: logger });
    expect(d).toBeDefined();
    expect(dir.registry.get('g1', 'i-a')).toMatchObject({ url: 'https://127.0.0.1:7443', level: 1, site: 'site-x', members: 0, ttlMs: 2000 });
    expect(lines.find((l) => l.event === 'directory-registered')).toMatchObject({ status: 'added', ttl: 2 });
    members = 7;
    await vi.waitFor(() => expect(dir.registry.get('g1', 'i-a')?.members).toBe(7), { timeout: 3_000 });
    await d!.stop();
    expect(dir.registry.get('g1', 'i-a')).toBeUndefined();
  });

  it('logs a refusal with the reason and keeps trying; a directory that is down stops nothing', async () => {
    const { logger, lines } = capture();
    const config = DiscoveryConfig.parse({ directory: { url: dir.url, ca: join(tmp, 'dir-ca.crt'), ttl: '1s' } });
    const d = await AgentDiscovery.start(config, material(pairs['evil']!, other), { group: 'g1', name: 'evil', role: 'intermediary', level: 1, url: 'https://127.0.0.1:7443', members: () => 0, log: logger });
    expect(lines.find((l) => l.event === 'directory-refused')).toMatchObject({ status: 403, reason: expect.stringMatching(/not issued by the CA of any group/) });
    await d!.stop();
    const down = capture();
    const gone = DiscoveryConfig.parse({ directory: { url: 'https://127.0.0.1:1', ca: join(tmp, 'dir-ca.crt'), ttl: '3s' } });
    const d2 = await AgentDiscovery.start(gone, material(pairs['i-a']!, g1), { group: 'g1', name: 'i-a', role: 'intermediary', level: 1, url: 'https://127.0.0.1:7443', members: () => 0, log: down.logger });
    expect(down.lines.find((l) => l.event === 'directory-unreachable')).toBeDefined();
    await d2!.stop();
  });

  it('does nothing without a discovery section; refuses a bad one naming the field', async () => {
    expect(await AgentDiscovery.start(undefined, material(pairs['i-a']!, g1), { group: 'g1', name: 'i-a', role: 'intermediary', level: 1, url: 'https://127.0.0.1:7443', members: () => 0, log: silentLogger() })).toBeUndefined();
    const base = { group: 'g1', agent: { name: 'i-a', role: 'controller' }, tls: { ca: 'ca.crt', cert: 'a.crt', key: 'a.key' } };
    const c = parseKeydConfig({ ...base, discovery: { directory: { url: 'https://10.0.0.9:7600', ca: 'dir.crt' }, mdns: { interfaces: ['eth0'] } } }, '/etc/iolus');
    expect(c.discovery).toMatchObject({ directory: { ca: '/etc/iolus/dir.crt', ttl: 30_000 }, mdns: { enabled: true, interfaces: ['eth0'] } });
    expect(() => parseKeydConfig({ ...base, discovery: { directory: { url: 'http://x' }, site: 'bad site', mdns: { what: 1 } } }, '/')).toThrow(ValidationError);
    try {
      parseKeydConfig({ ...base, discovery: { directory: { url: 'http://x' }, site: 'bad site' } }, '/');
    } catch (err) {
      expect((err as ValidationError).problems).toEqual([expect.stringMatching(/^discovery\.site: /), expect.stringMatching(/^discovery\.directory\.url: .*https/)]);
    }
  });
});

describe('iolus directory --check', () => {
  it('accepts a good config and names each problem of a bad one', async () => {
    writeFileSync(join(tmp, 'g1.crt'), g1.ca.certPem);
    writeFileSync(join(tmp, 'd.crt'), dirPair.cert);
    writeFileSync(join(tmp, 'd.key'), dirPair.key);
    writeFileSync(join(tmp, 'ok.yaml'), toYaml({ tls: { cert: 'd.crt', key: 'd.key' }, groups: { g1: { ca: 'g1.crt' } } }));
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      expect(await directoryCommand(['--config', join(tmp, 'ok.yaml'), '--check'])).toBe(0);
      expect(String(out.mock.calls.at(-1)?.[0])).toMatch(/ok \(1 group\(s\), lookups members\)/);
    } finally {
      out.mockRestore();
    }
    writeFileSync(join(tmp, 'bad.yaml'), toYaml({ tls: { cert: 'd.crt' }, groups: { G1: { ca: 'x' } }, sap: { enabled: true }, lookups: 'everyone' }));
    await expect(directoryCommand(['--config', join(tmp, 'bad.yaml')])).rejects.toSatisfy((e: unknown) => {
      const p = (e as ValidationError).problems.join('\n');
      return /tls\.key/.test(p) && /groups/.test(p) && /sap\.source/.test(p) && /lookups/.test(p);
    });
    writeFileSync(join(tmp, 'wrong-ca.yaml'), toYaml({ tls: { cert: 'd.crt', key: 'd.key' }, groups: { g2: { ca: 'g1.crt' } } }));
    await expect(directoryCommand(['--config', join(tmp, 'wrong-ca.yaml'), '--check'])).rejects.toThrow(/the CA is for group "g1"/);
  });
});
