/**
 * MdnsAdvertiser: one agent's `_iolus._tcp` service on the link. Announces on start (RFC 6762
 * §8.3), re-announces before the TTL runs out, answers matching questions (§6, with the
 * record logic in responder.ts), and says goodbye on stop (§10.1).
 *
 * Not done: probing for name uniqueness (§8.1) and renaming on conflict (§9). A conflicting
 * answer from another host is logged and counted.
 */
import os from 'node:os';
import type { Logger } from '../../util/log.js';
import { createLogger } from '../../util/log.js';
import { UsageError } from '../../errors.js';
import { AdvertiserConfig, parseConfig, type AdvertiserConfigInput } from './config.js';
import { formatAgentTxt } from './agentTxt.js';
import { hostName, instanceName, IOLUS_SERVICE_TYPE, sameName, serviceTypeName, toHostLabel, truncateUtf8 } from './names.js';
import { legacyResponsePacket, responsePacket, type MdnsMessage } from './message.js';
import { answerQuestions } from './responder.js';
import { rdataKey, recordKey, type MdnsRecord } from './record.js';
import { announcementRecords, goodbyeRecords, zoneRecords, type ServiceSpec } from './zone.js';
import { MDNS_PORT, type MdnsLink, type MdnsSource } from './transport.js';
import type { Family, MdnsInterface } from './interfaces.js';

export interface AdvertiserComponents {
  link: MdnsLink;
  logger?: Logger;
  /** Math.random, replaceable in tests. */
  random?: () => number;
}

export interface AdvertiserStats {
  announcements: number;
  answered: number;
  /** Queries we stayed silent on: every match was a known answer (§7.1) or sent < 1 s ago (§6). */
  suppressed: number;
  legacyAnswered: number;
  /** Answers from other hosts claiming our instance name with other data (§9). */
  conflicts: number;
}

const ONE_SECOND = 1000;

export class MdnsAdvertiser {
  readonly config: AdvertiserConfig;
  readonly spec: ServiceSpec;
  readonly stats: AdvertiserStats = { announcements: 0, answered: 0, suppressed: 0, legacyAnswered: 0, conflicts: 0 };
  private readonly link: MdnsLink;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private reannounce: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Last multicast of each record per interface/family (RFC 6762 §6: at most once a second). */
  private readonly lastSent = new Map<string, number>();
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(init: AdvertiserConfigInput, components: AdvertiserComponents) {
    this.config = parseConfig(AdvertiserConfig, init, 'mdns.advertise');
    const c = this.config;
    const host = hostName(c.hostName ?? `iolus-${toHostLabel(os.hostname())}`);
    const defaultInstance = `${c.group} ${c.role} ${host.split('.')[0]}:${c.port}`.replace(/[.\\]/g, '-');
    this.spec = {
      instance: c.instance ?? truncateUtf8(defaultInstance, 63),
      type: IOLUS_SERVICE_TYPE,
      host,
      port: c.port,
      txt: formatAgentTxt({ group: c.group, role: c.role, level: c.level, fingerprint: c.fingerprint }),
      ttl: c.ttl,
    };
    instanceName(this.spec.instance, serviceTypeName(this.spec.type)); // validates the label now
    this.link = components.link;
    this.log = components.logger ?? createLogger('mdns.advertiser', { instance: this.spec.instance });
    this.random = components.random ?? Math.random;
  }

  /** `<instance>._iolus._tcp.local`. */
  get name(): string {
    return instanceName(this.spec.instance, serviceTypeName(this.spec.type));
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('mdns.state', `advertiser cannot start from state ${this.state}`);
    this.state = 'running';
    this.unsubscribe = this.link.onMessage((m, from) => this.onMessage(m, from));
    // RFC 6762 §8.3: at least two unsolicited announcements one second apart, the interval at
    // least doubling after that.
    await this.announce();
    let at = 0;
    for (let i = 1; i < this.config.announcements; i++) {
      at += ONE_SECOND * 2 ** (i - 1);
      this.later(at, () => void this.announce());
    }
    const minTtl = Math.min(this.spec.ttl.host, this.spec.ttl.service);
    const period = (this.config.reannounceSeconds ?? minTtl * 0.8) * 1000;
    this.reannounce = setInterval(() => void this.announce(), period);
    this.log.info({ name: this.name, host: this.spec.host, port: this.spec.port }, 'advertising');
  }

  async stop(): Promise<void> {
    if (this.state !== 'running') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopped';
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    clearInterval(this.reannounce);
    this.unsubscribe?.();
    try {
      await this.link.multicast(responsePacket(goodbyeRecords(this.spec))); // RFC 6762 §10.1
    } catch (err) {
      this.log.warn({ err }, 'goodbye not sent');
    }
    this.log.info({ name: this.name }, 'advertisement withdrawn');
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (this.state === 'running') fn();
    }, ms);
    this.timers.add(t);
  }

  private async announce(): Promise<void> {
    for (const iface of this.link.interfaces) {
      for (const family of families(iface)) {
        const records = announcementRecords(this.spec, iface.publish);
        await this.send(records, [], iface.name, family);
      }
    }
    this.stats.announcements++;
  }

  private async send(answers: MdnsRecord[], additionals: MdnsRecord[], iface: string, family: Family): Promise<void> {
    const now = Date.now();
    for (const r of [...answers, ...additionals]) this.lastSent.set(`${iface}/${family}/${recordKey(r)}`, now);
    try {
      await this.link.multicast(responsePacket(answers, additionals), { interface: iface, family });
    } catch (err) {
      this.log.warn({ err, interface: iface, family }, 'mDNS response not sent');
    }
  }

  private recentlySent(r: MdnsRecord, iface: string, family: Family, now: number): boolean {
    const last = this.lastSent.get(`${iface}/${family}/${recordKey(r)}`);
    return last !== undefined && now - last < ONE_SECOND;
  }

  private onMessage(message: MdnsMessage, from: MdnsSource): void {
    if (this.state !== 'running') return;
    if (message.kind === 'response') {
      if (!from.own) this.checkConflict(message);
      return;
    }
    const iface = this.link.interfaces.find((i) => i.name === from.interface);
    if (!iface || message.questions.length === 0) return;
    const zone = zoneRecords(this.spec, iface.publish);
    const reply = answerQuestions(message.questions, message.answers, zone);
    if (!reply) {
      if (message.questions.some((q) => zone.some((r) => sameName(q.name, r.name)))) this.stats.suppressed++;
      return;
    }
    if (from.port !== MDNS_PORT) {
      // RFC 6762 §6.7: a conventional resolver asked; answer it by unicast, at once.
      this.stats.legacyAnswered++;
      this.link.unicast(legacyResponsePacket(message, reply.answers, reply.additionals), from).catch((err: unknown) => this.log.debug({ err }, 'legacy reply failed'));
      return;
    }
    // §7.2: a truncated query is followed by more known answers: wait 400-500 ms.
    // §6: shared answers wait 20-120 ms so that several responders do not collide.
    const delay = message.truncated ? 400 + this.random() * 100 : reply.shared ? 20 + this.random() * 100 : 0;
    const respond = () => {
      const now = Date.now();
      const answers = reply.answers.filter((r) => !this.recentlySent(r, iface.name, from.family, now));
      if (answers.length === 0) {
        this.stats.suppressed++;
        return;
      }
      const additionals = reply.additionals.filter((r) => !this.recentlySent(r, iface.name, from.family, now));
      this.stats.answered++;
      void this.send(answers, additionals, iface.name, from.family);
    };
    if (delay === 0) respond();
    else this.later(delay, respond);
  }

  /** RFC 6762 §9: another host answering for our unique records with other data. */
  private checkConflict(message: MdnsMessage): void {
    const ours = zoneRecords(this.spec, { ipv4: [], ipv6: [] }).filter((r) => r.flush); // SRV, TXT
    for (const r of message.answers) {
      const mine = ours.find((o) => o.type === r.type && sameName(o.name, r.name));
      if (mine && r.ttl > 0 && rdataKey(r) !== rdataKey(mine)) {
        this.stats.conflicts++;
        this.log.warn({ name: r.name, type: r.type }, 'another host answers for our service instance name (RFC 6762 §9); not renaming');
      }
    }
  }
}

function families(iface: MdnsInterface): Family[] {
  return [...(iface.ipv4 !== undefined ? (['IPv4'] as const) : []), ...(iface.ipv6 !== undefined ? (['IPv6'] as const) : [])];
}
