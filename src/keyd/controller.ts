/**
 * Controller (GSC, paper §5): the agent of the top-level subgroup. It owns the group's policy
 * and has no parent, so data it hears goes nowhere further up; it keeps what it receives for
 * its owner (the KGRP2 originator logic consumes announcements from an originator member).
 */
import type { DataMethod } from '../client/member.js';
import type { DataUnit } from '../protocol/dataUnit.js';
import type { Clock } from '../util/clock.js';
import { Agent, type AgentInit, type Step } from './agent.js';
import { AgentDataPlane } from './agentDataPlane.js';

export interface NodeStep extends Step {
  /** Data this node accepted (from its subgroup, its members, or its parent). */
  received: { unit: DataUnit; method: DataMethod }[];
}

export function emptyStep(): NodeStep {
  return { out: [], events: [], received: [] };
}

export function withStep(step: Step): NodeStep {
  return { ...step, received: [] };
}

export class Controller {
  readonly agent: Agent;
  readonly data: AgentDataPlane;

  constructor(init: AgentInit, clock: Clock) {
    this.agent = new Agent(init, clock);
    this.data = new AgentDataPlane(this.agent);
  }

  onSubgroup(bytes: Uint8Array): NodeStep {
    const r = this.data.receive(bytes);
    return r.ok ? { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] } : emptyStep();
  }

  onUnicast(bytes: Uint8Array): NodeStep {
    const r = this.data.receiveUp(bytes);
    return r.ok ? { out: r.out, events: [], received: [{ unit: r.unit, method: r.method }] } : emptyStep();
  }

  /** Data the controller itself originates (a KGRP2 announcement, say). */
  send(unit: DataUnit, method: DataMethod): NodeStep {
    return { out: [this.data.send(unit, method)], events: [], received: [] };
  }

  tick(): NodeStep {
    return withStep(this.agent.tick());
  }
}
