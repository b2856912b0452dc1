/**
 * In-memory PKIs for the directory and resolver tests: group CAs, agent and member
 * certificates, and a directory CA for the directory's own server certificate.
 */
import { createCa, issueCertificate, type GroupCa, type Role } from '../../../src/pki/index.js';
import { DirectoryConfig, type DirectoryConfigInput } from '../../../src/discovery/directory/config.js';

export interface Pair {
  cert: string;
  key: string;
  fingerprint: string;
}

export interface TestGroup {
  group: string;
  ca: GroupCa;
  issue(name: string, role: Role, ip?: string[]): Promise<Pair>;
}

export async function testGroup(group: string): Promise<TestGroup> {
  const ca = await createCa({ group, validityDays: 5 });
  return {
    group,
    ca,
    async issue(name, role, ip) {
      const c = await issueCertificate(ca, { name, role, validityDays: 5, ...(ip ? { ip } : {}) });
      return { cert: c.certPem, key: c.keyPem, fingerprint: c.fingerprint };
    },
  };
}

/** A directory config for tests: paths are placeholders (the tests pass PEM and trust directly). */
export function directoryConfig(over: Partial<DirectoryConfigInput> = {}): DirectoryConfig {
  return DirectoryConfig.parse({
    listen: { host: '127.0.0.1', port: 0 },
    tls: { cert: 'unused', key: 'unused' },
    groups: { unused: { ca: 'unused' } },
    registrations: { minTtl: '1s' },
    ...over,
  });
}
