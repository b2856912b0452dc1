/**
 * The directory's soft state (paper §8.3: agents "notify some well-known, local directory
 * service whenever they start or stop handling a secure multicast group"): one registration per
 * (group, agent principal), kept alive by refreshes and dropped when its TTL runs out, as the
 * paper's soft-state memberships are (§6.3). Pure: time comes from an injected clock; the server
 * sweeps, serves and announces.
 */
import { PolicyError } from '../../errors.js';
import type { Clock } from '../../util/clock.js';
import type { AgentRole } from '../../pki/roles.js';
import { parseIp, type IpAddress } from './prefix.js';

export interface RegistrationInput {
  group: string;
  /** From the agent's certificate (CN). */
  principal: string;
  /** From the agent's certificate (OU). */
  role: AgentRole;
  /** SHA-256 of the agent's certificate (what the TLS connection presented). */
  fingerprint: string;
  /** The agent's control-plane origin, `https://host:port`. */
  url: string;
  level: number;
  members: number;
  /** Declared by the agent; otherwise the directory places it by address. */
  site: string | undefined;
  /** Address the registration came from. */
  source: string;
  ttlMs: number;
}

export interface Registration extends RegistrationInput {
  registeredAt: number;
  refreshedAt: number;
  expiresAt: number;
  /** Where the agent is, for the locality order: its URL's address, else `source`. */
  address: IpAddress | undefined;
}

/**
 * `added`: a new agent; `updated`: its public description changed (URL, level, site, role or
 * certificate); `refreshed`: only its load or lifetime; `removed`: unregistered or expired.
 */
export type RegistryChange =
  | { kind: 'added' | 'updated' | 'refreshed'; registration: Registration }
  | { kind: 'removed'; registration: Registration; cause: 'unregistered' | 'expired' };

export interface RegistryLimits {
  /** Agents one group may have registered. */
  maxAgentsPerGroup: number;
  /** Registrations in all. */
  maxRegistrations: number;
}

export class Registry {
  private readonly groups = new Map<string, Map<string, Registration>>();
  private count = 0;
  private listeners = new Set<(c: RegistryChange) => void>();

  constructor(
    private readonly limits: RegistryLimits,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.count;
  }

  onChange(listener: (c: RegistryChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Registers or refreshes. Throws PolicyError `directory.capacity` past the limits. */
  upsert(input: RegistrationInput): RegistryChange & { kind: 'added' | 'updated' | 'refreshed' } {
    const now = this.clock.now();
    let agents = this.groups.get(input.group);
    const old = agents?.get(input.principal);
    if (old && old.expiresAt <= now) {
      // Expired but not swept yet: it is gone; this is a new registration.
      this.remove(input.group, input.principal, 'expired');
      return this.upsert(input);
    }
    if (!old) {
      if (this.count >= this.limits.maxRegistrations) throw new PolicyError('directory.capacity', `the directory holds ${this.count} registrations, its limit`);
      if ((agents?.size ?? 0) >= this.limits.maxAgentsPerGroup) {
        throw new PolicyError('directory.capacity', `group ${input.group} has ${this.limits.maxAgentsPerGroup} agents registered, the limit`);
      }
    }
    const host = new URL(input.url).hostname;
    const registration: Registration = {
      ...input,
      registeredAt: old?.registeredAt ?? now,
      refreshedAt: now,
      expiresAt: now + input.ttlMs,
      address: parseIp(host) ?? parseIp(input.source),
    };
    if (!agents) {
      agents = new Map();
      this.groups.set(input.group, agents);
    }
    agents.set(input.principal, registration);
    if (!old) this.count++;
    const kind = !old ? 'added' : describes(old) !== describes(registration) ? 'updated' : 'refreshed';
    const change = { kind, registration } as const;
    this.emit(change);
    return change;
  }

  /** Unregisters; returns what was removed, if anything. */
  unregister(group: string, principal: string): Registration | undefined {
    return this.remove(group, principal, 'unregistered');
  }

  /** Live registrations of a group (unordered). */
  agents(group: string): Registration[] {
    const agents = this.groups.get(group);
    if (!agents) return [];
    const now = this.clock.now();
    const out: Registration[] = [];
    for (const r of agents.values()) if (r.expiresAt > now) out.push(r);
    return out;
  }

  get(group: string, principal: string): Registration | undefined {
    const r = this.groups.get(group)?.get(principal);
    return r && r.expiresAt > this.clock.now() ? r : undefined;
  }

  /** Groups with at least one live registration, sorted. */
  groupNames(): string[] {
    return [...this.groups.keys()].filter((g) => this.agents(g).length > 0).sort();
  }

  /** Drops every expired registration (announcing each); returns them. */
  sweep(): Registration[] {
    const now = this.clock.now();
    const gone: Registration[] = [];
    for (const [group, agents] of this.groups) {
      for (const r of [...agents.values()]) {
        if (r.expiresAt <= now) {
          this.remove(group, r.principal, 'expired');
          gone.push(r);
        }
      }
    }
    return gone;
  }

  private remove(group: string, principal: string, cause: 'unregistered' | 'expired'): Registration | undefined {
    const agents = this.groups.get(group);
    const r = agents?.get(principal);
    if (!agents || !r) return undefined;
    agents.delete(principal);
    this.count--;
    if (agents.size === 0) this.groups.delete(group);
    this.emit({ kind: 'removed', registration: r, cause });
    return r;
  }

  private emit(change: RegistryChange): void {
    for (const l of this.listeners) l(change);
  }
}

/** The part of a registration that public descriptions (lookups' order aside, SAP) carry. */
function describes(r: Registration): string {
  return JSON.stringify([r.url, r.level, r.site ?? null, r.role, r.fingerprint]);
}
