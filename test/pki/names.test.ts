import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/errors.js';
import { checkHostname, checkIp, checkName, isValidName } from '../../src/pki/names.js';
import { isAgentRole, isRole } from '../../src/pki/roles.js';

describe('principal and group names', () => {
  it.each(['alice', 'site-a.bob', 'm0', 'A_1', 'x', 'a'.repeat(64)])('accepts %s', (n) => {
    expect(isValidName(n)).toBe(true);
    expect(checkName('name', n)).toBe(n);
  });

  it.each(['', '.', '..', '../etc/passwd', 'a/b', 'a\\b', '.hidden', 'trailing.', '-x', 'sp ace', 'a*', 'é', 'a\n', 'a'.repeat(65), 'CN=x,O=y'])(
    'refuses %j',
    (n) => {
      expect(isValidName(n)).toBe(false);
      expect(() => checkName('name', n)).toThrow(ValidationError);
    },
  );

  it('names the field in the error', () => {
    try {
      checkName('group', '../x');
      expect.unreachable();
    } catch (err) {
      expect((err as ValidationError).problems[0]).toMatch(/^group: "..\/x" is not a valid name/);
    }
  });

  it('checks host names and IPs', () => {
    expect(checkHostname('dns', 'agent-1.example.org')).toBe('agent-1.example.org');
    expect(() => checkHostname('dns', 'a_b')).toThrow(/dns: "a_b" is not a DNS host name/);
    expect(() => checkHostname('dns', '-a')).toThrow(ValidationError);
    expect(checkIp('ip', '10.1.2.3')).toBe('10.1.2.3');
    expect(checkIp('ip', 'fe80::1')).toBe('fe80::1');
    expect(() => checkIp('ip', '10.1.2')).toThrow(/not an IP address/);
  });
});

describe('roles', () => {
  it('knows the five roles and which are agents', () => {
    for (const r of ['member', 'intermediary', 'originator', 'admin', 'controller']) expect(isRole(r)).toBe(true);
    expect(isRole('root')).toBe(false);
    expect(isAgentRole('controller')).toBe(true);
    expect(isAgentRole('intermediary')).toBe(true);
    expect(isAgentRole('member')).toBe(false);
    expect(isAgentRole('originator')).toBe(false);
  });
});
