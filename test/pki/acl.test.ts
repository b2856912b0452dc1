import { describe, expect, it } from 'vitest';
import { aclSchema, decide, globMatches, isPrincipalPattern, type Acl } from '../../src/pki/acl.js';

const NOW = new Date('2026-06-01T12:00:00Z');
const member = (principal: string) => ({ principal, role: 'member' as const });

describe('ACL principal patterns', () => {
  it.each([
    ['alice', 'alice', true],
    ['alice', 'alice2', false],
    ['alice', 'Alice', false],
    ['site-a.*', 'site-a.bob', true],
    ['site-a.*', 'site-a.x.y', true],
    ['site-a.*', 'site-ab.bob', false],
    ['site-a.*', 'xsite-a.bob', false],
    ['*', 'anyone', true],
    ['*.cam', 'lobby.cam', true],
    ['*.cam', 'lobby.mic', false],
    ['a*z', 'az', true],
    ['a*z', 'abcz', true],
    ['a.b', 'axb', false], // the dot is literal
  ])('%s matches %s: %s', (pattern, name, expected) => {
    expect(globMatches(pattern, name)).toBe(expected);
  });

  it('validates patterns', () => {
    for (const ok of ['alice', 'site-a.*', '*', '*.cam', 'a*b*c']) expect(isPrincipalPattern(ok)).toBe(true);
    for (const bad of ['', 'a/b', 'a b', '.x', '(.*)', 'a?', '[ab]']) expect(isPrincipalPattern(bad)).toBe(false);
  });
});

describe('ACL schema', () => {
  it('parses a config ACL', () => {
    const acl = aclSchema.parse([
      { principal: 'site-a.*', roles: ['member'] },
      { principal: 'bob', roles: ['member', 'originator'], until: '2026-12-31T23:59:00Z', minutes: 90 },
    ]);
    expect(acl).toHaveLength(2);
  });

  it('says which field is wrong and why', () => {
    const r = aclSchema.safeParse([
      { principal: 'a b', roles: [] },
      { principal: 'x', roles: ['controller'], until: 'tomorrow', minutes: 0, extra: 1 },
    ]);
    expect(r.success).toBe(false);
    const lines = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(lines).toContainEqual(expect.stringMatching(/^0\.principal: must be a principal name or a glob/));
    expect(lines).toContainEqual(expect.stringMatching(/^0\.roles: must grant at least one role/));
    expect(lines).toContainEqual(expect.stringMatching(/^1\.roles\.0: /));
    expect(lines).toContainEqual(expect.stringMatching(/^1\.until: must be an ISO 8601 time/));
    expect(lines).toContainEqual(expect.stringMatching(/^1\.minutes: must be a positive whole number/));
    expect(lines).toContainEqual(expect.stringMatching(/extra/));
  });
});

describe('decide', () => {
  const acl: Acl = aclSchema.parse([
    { principal: '*', roles: ['member'] },
    { principal: 'site-a.*', roles: ['member', 'intermediary'] },
    { principal: 'site-a.gw', roles: ['intermediary'], until: '2026-07-01T00:00:00Z' },
    { principal: 'paid.*', roles: ['member'], minutes: 60 },
    { principal: 'carol', roles: ['member'], until: '2026-05-31T00:00:00Z' },
    { principal: 'ops', roles: ['admin'] },
  ]);

  it('allows a matching principal and role, returning the entry', () => {
    const d = decide(acl, member('alice'), 'member', NOW);
    expect(d).toMatchObject({ allow: true, index: 0, entry: { principal: '*' } });
  });

  it('lets the most specific entry decide', () => {
    expect(decide(acl, member('site-a.bob'), 'member', NOW)).toMatchObject({ allow: true, index: 1 });
    const gw = decide(acl, { principal: 'site-a.gw', role: 'intermediary' }, 'intermediary', NOW);
    expect(gw).toMatchObject({ allow: true, index: 2, until: new Date('2026-07-01T00:00:00Z') });
    // Same specificity: the earlier entry wins.
    const tie = aclSchema.parse([{ principal: 'a*', roles: ['member'] }, { principal: '*a', roles: ['member'] }]);
    expect(decide(tie, member('aa'), 'member', NOW)).toMatchObject({ allow: true, index: 0 });
  });

  it('denies a principal no entry matches', () => {
    const only = aclSchema.parse([{ principal: 'site-a.*', roles: ['member'] }]);
    const d = decide(only, member('mallory'), 'member', NOW);
    expect(d).toEqual({ allow: false, code: 'acl.no-match', reason: 'no ACL entry matches principal mallory' });
    expect(decide([], member('mallory'), 'member', NOW)).toMatchObject({ allow: false, code: 'acl.no-match' });
  });

  it('denies a role no matching entry grants, naming what is granted', () => {
    const d = decide(acl, { principal: 'alice', role: 'intermediary' }, 'intermediary', NOW);
    expect(d).toMatchObject({ allow: false, code: 'acl.role' });
    expect(d.allow ? '' : d.reason).toBe('role intermediary is not permitted for alice (its ACL entries grant member)');
    expect(decide(acl, { principal: 'ops', role: 'controller' }, 'controller', NOW)).toMatchObject({ allow: false, code: 'acl.role' });
  });

  it('denies when the certificate carries another role than the one requested', () => {
    const d = decide(acl, member('site-a.bob'), 'intermediary', NOW);
    expect(d).toMatchObject({ allow: false, code: 'acl.role-mismatch' });
    expect(d.allow ? '' : d.reason).toMatch(/certificate role mismatch: site-a.bob's certificate carries role member, the request is for intermediary/);
  });

  it('ends an entitlement at its until time, even if a broader entry would allow', () => {
    const before = decide(acl, member('carol'), 'member', new Date('2026-05-30T23:59:59Z'));
    expect(before).toMatchObject({ allow: true, index: 4 });
    const at = decide(acl, member('carol'), 'member', new Date('2026-05-31T00:00:00Z'));
    expect(at).toMatchObject({ allow: false, code: 'acl.ended', entry: { principal: 'carol' } });
    expect(at.allow ? '' : at.reason).toBe('entitlement of carol (ACL entry "carol") ended at 2026-05-31T00:00:00.000Z');
    const gwLater = decide(acl, { principal: 'site-a.gw', role: 'intermediary' }, 'intermediary', new Date('2026-08-01T00:00:00Z'));
    expect(gwLater).toMatchObject({ allow: false, code: 'acl.ended' });
  });

  it('asks for the minutes used only when the deciding entry has a budget', () => {
    let asked = 0;
    const used = () => {
      asked++;
      return 60;
    };
    expect(decide(acl, member('alice'), 'member', NOW, used)).toMatchObject({ allow: true });
    expect(asked).toBe(0);
    const spent = decide(acl, member('paid.tv'), 'member', NOW, used);
    expect(asked).toBe(1);
    expect(spent.allow ? '' : spent.reason).toMatch(/budget of 60 minutes is used up/);
  });

  it('ends a minutes budget once used up', () => {
    expect(decide(acl, member('paid.tv'), 'member', NOW)).toMatchObject({ allow: true, minutesLeft: 60 });
    expect(decide(acl, member('paid.tv'), 'member', NOW, 59)).toMatchObject({ allow: true, minutesLeft: 1 });
    const spent = decide(acl, member('paid.tv'), 'member', NOW, 60);
    expect(spent).toMatchObject({ allow: false, code: 'acl.ended' });
    expect(spent.allow ? '' : spent.reason).toMatch(/budget of 60 minutes is used up/);
  });

  it('applies both windows when an entry has both', () => {
    const both = aclSchema.parse([{ principal: 'x', roles: ['member'], until: '2026-06-02T00:00:00Z', minutes: 10 }]);
    expect(decide(both, member('x'), 'member', NOW, 5)).toMatchObject({ allow: true, minutesLeft: 5, until: new Date('2026-06-02T00:00:00Z') });
    expect(decide(both, member('x'), 'member', NOW, 10)).toMatchObject({ allow: false, code: 'acl.ended' });
    expect(decide(both, member('x'), 'member', new Date('2026-06-02T00:00:00Z'), 0)).toMatchObject({ allow: false, code: 'acl.ended' });
  });
});
