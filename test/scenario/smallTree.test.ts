import { describe, expect, it } from 'vitest';
import { Tree, text } from '../support/tree.js';

describe('a small tree', () => {
  function build() {
    const t = new Tree();
    t.addIntermediary('a', 'controller');
    t.addIntermediary('a1', 'a');
    t.join('c1', 'controller');
    t.join('c2', 'controller');
    t.join('x1', 'a');
    t.join('y1', 'a1');
    t.join('y2', 'a1');
    t.settle();
    return t;
  }

  it('joins intermediaries to their parents on the first member', () => {
    const t = build();
    expect(t.intermediary('a').parentState).toBe('attached');
    expect(t.intermediary('a1').parentState).toBe('attached');
    expect(t.controller.agent.members.size).toBe(3); // c1, c2, a
    for (const tm of t.members.values()) expect(tm.member.epoch).toBe(t.node(tm.agent).agent.epoch);
  });

  it.each([1, 2] as const)('delivers method-%i data from any member to every member exactly once', (method) => {
    const t = build();
    for (const sender of ['c1', 'x1', 'y2']) {
      t.send(sender, `hello from ${sender}`, method);
      t.settle();
    }
    for (const tm of t.members.values()) {
      const got = tm.received.map((r) => text(r.payload)).sort();
      const expected = ['c1', 'x1', 'y2'].filter((s) => s !== tm.name).map((s) => `hello from ${s}`).sort();
      expect(got, tm.name).toEqual(expected);
    }
  });

  it('a leave rekeys only its own subgroup', () => {
    const t = build();
    const before = new Map([...t.nodes].map(([n, { node }]) => [n, node.agent.epoch]));
    t.leave('y1');
    t.settle();
    expect(t.node('a1').agent.epoch).toBe(before.get('a1')! + 1);
    expect(t.node('a').agent.epoch).toBe(before.get('a'));
    expect(t.controller.agent.epoch).toBe(before.get('controller'));
    expect(t.mustMember('y2').member.epoch).toBe(t.node('a1').agent.epoch);
  });

  it('an intermediary leaves its parent when its last member leaves, and rejoins when one arrives', () => {
    const t = build();
    t.leave('y1');
    t.leave('y2');
    t.settle();
    expect(t.intermediary('a1').parentState).toBe('detached');
    expect(t.node('a').agent.members.size).toBe(1); // only x1
    t.join('y3', 'a1');
    t.settle();
    expect(t.intermediary('a1').parentState).toBe('attached');
    t.send('c1', 'after rejoin');
    t.settle();
    expect(t.mustMember('y3').received.map((r) => text(r.payload))).toEqual(['after rejoin']);
  });

  it('GRP_END flows down the tree to every member', () => {
    const t = build();
    t.route('controller', { ...t.controller.agent.end(), received: [] });
    t.settle();
    for (const tm of t.members.values()) expect(tm.ended, tm.name).toBe(true);
  });
});
