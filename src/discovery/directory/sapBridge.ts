/**
 * The directory's sd-style announcements: each group with registered agents is one SAP session
 * whose SDP describes the group and its agents (../sap/sdp.ts). A registration that changes a
 * group's public description (an agent added, gone, moved) re-announces it under a new version,
 * after a deletion of the old one; a group whose last agent unregisters or expires is deleted.
 * A refresh that only changes an agent's load or lifetime announces nothing.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../util/log.js';
import { SapAnnouncer, type SapSender } from '../sap/announcer.js';
import { SAP_RECOMMENDED_MAX } from '../sap/packet.js';
import { formatGroupDescription, originLine } from '../sap/sdp.js';
import { openSapSender } from '../sap/socket.js';
import type { SapConfig } from './config.js';
import type { Registry } from './registry.js';
import type { z } from 'zod';

/** Room for the SAP header and payload type inside the recommended 1 kB (RFC 2974 §6). */
const SDP_BUDGET = SAP_RECOMMENDED_MAX - 4 - 16 - 'application/sdp\0'.length;

export class DirectorySap {
  private readonly versions = new Map<string, bigint>();
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly config: z.output<typeof SapConfig>,
    private readonly registry: Registry,
    readonly announcer: SapAnnouncer,
    private readonly log: Logger,
  ) {
    this.unsubscribe = registry.onChange((ch) => {
      if (ch.kind !== 'refreshed') this.update(ch.registration.group);
    });
    for (const g of registry.groupNames()) this.update(g);
  }

  static async start(config: z.output<typeof SapConfig>, registry: Registry, sender: SapSender | undefined, log: Logger): Promise<DirectorySap> {
    const source = config.source!;
    const out = sender ?? (await openSapSender({ interfaceAddress: source, address: config.address, port: config.port, ttl: config.ttl }));
    const announcer = new SapAnnouncer({ origin: source, bandwidth: config.bandwidth, minIntervalMs: config.minInterval }, { sender: out, logger: log });
    log.info({ event: 'sap', address: `${config.address}:${config.port}`, source, ttl: config.ttl }, 'announcing groups over SAP');
    return new DirectorySap(config, registry, announcer, log);
  }

  private update(group: string): void {
    const agents = this.registry.agents(group).sort((a, b) => a.level - b.level || (a.principal < b.principal ? -1 : 1));
    if (agents.length === 0) {
      this.announcer.delete(group);
      this.versions.delete(group);
      return;
    }
    // RFC 8866 §5.2: the version grows on every change; start from the NTP-style seconds now.
    const version = (this.versions.get(group) ?? BigInt(Math.floor(Date.now() / 1000))) + 1n;
    this.versions.set(group, version);
    const d = {
      group,
      sessionId: sessionIdOf(group),
      version: String(version),
      origin: this.config.source!,
      agents: agents.map((a) => ({ principal: a.principal, role: a.role, level: a.level, url: a.url, fingerprint: a.fingerprint, site: a.site })),
    };
    try {
      this.announcer.set(group, formatGroupDescription(d, SDP_BUDGET), originLine(d));
    } catch (err) {
      this.log.warn({ group, err: (err as Error).message }, 'group not announced over SAP');
    }
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    await this.announcer.stop({ withdraw: true });
  }
}

/** A stable numeric session id per group (RFC 8866 §5.2 leaves its choice to the announcer). */
export function sessionIdOf(group: string): string {
  return String(createHash('sha256').update(`iolus-group:${group}`).digest().readUInt32BE(0));
}
