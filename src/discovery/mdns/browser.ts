/**
 * MdnsBrowser: a querier with a cache. It listens to every mDNS response on the link (RFC 6762
 * §5.2 passive caching), browses for a service type and resolves a global group name to the
 * agents that advertise it. Record logic lives in cache.ts, instances.ts and query.ts.
 */
import type { Logger } from '../../util/log.js';
import { createLogger } from '../../util/log.js';
import { UsageError } from '../../errors.js';
import { BrowseOptions, BrowserConfig, parseConfig, ResolveOptions, type BrowserConfigInput } from './config.js';
import { RecordCache } from './cache.js';
import { agentCandidates, instancesOf, type AgentCandidate, type ServiceInstance } from './instances.js';
import { queryPacket, type MdnsMessage } from './message.js';
import { browseQuestion, followUpQuestions, knownAnswersFor, type Question } from './query.js';
import { IOLUS_SERVICE_TYPE, serviceTypeName } from './names.js';
import { rrsetKey } from './record.js';
import type { MdnsLink, MdnsSource } from './transport.js';

export interface BrowserComponents {
  link: MdnsLink;
  logger?: Logger;
  /** Date.now, replaceable in tests. */
  now?: () => number;
}

export interface BrowserStats {
  queries: number;
  responses: number;
  /** Instances whose TXT was not a usable Iolus record. */
  rejected: number;
}

const FIRST_RETRY_MS = 1000; // RFC 6762 §5.2: at least one second, then at least doubling
const MAINTAIN_EVERY_MS = 2000;
const MAX_INTERESTS = 32;

export class MdnsBrowser {
  readonly config: BrowserConfig;
  readonly stats: BrowserStats = { queries: 0, responses: 0, rejected: 0 };
  private readonly cache: RecordCache;
  private readonly link: MdnsLink;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly waiters = new Set<() => void>();
  /** Counts responses, so a loop notices one that arrived while it was busy sending. */
  private generation = 0;
  /** Service types browsed lately, whose records we keep fresh (§5.2). */
  private readonly interests = new Set<string>();
  /** Last time we asked each question, to ask at most once a second. */
  private readonly asked = new Map<string, number>();
  private unsubscribe: (() => void) | undefined;
  private maintenance: NodeJS.Timeout | undefined;
  private state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(init: BrowserConfigInput, components: BrowserComponents) {
    this.config = parseConfig(BrowserConfig, init, 'mdns.browser');
    this.cache = new RecordCache({ maxEntries: this.config.maxEntries });
    this.link = components.link;
    this.log = components.logger ?? createLogger('mdns.browser');
    this.now = components.now ?? Date.now;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') throw new UsageError('mdns.state', `browser cannot start from state ${this.state}`);
    this.state = 'running';
    this.unsubscribe = this.link.onMessage((m, from) => this.onMessage(m, from));
    if (this.config.maintain) this.maintenance = setInterval(() => this.maintain(), MAINTAIN_EVERY_MS);
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.unsubscribe?.();
    clearInterval(this.maintenance);
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Forgets every cached record (benchmarks: measure a cold resolution). */
  flush(): void {
    this.cache.clear();
    this.asked.clear();
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  /** Instances of a type in the cache, without asking the network. */
  instances(type: string = IOLUS_SERVICE_TYPE): ServiceInstance[] {
    return instancesOf(this.cache, type, this.now()).complete;
  }

  /** Agents for a group in the cache, without asking the network. */
  cachedCandidates(group: string): AgentCandidate[] {
    return this.candidates(group);
  }

  /** Asks the link for instances of `type` for `timeoutMs`, then returns every complete one. */
  async browse(type: string = IOLUS_SERVICE_TYPE, options: BrowseOptions = {}): Promise<ServiceInstance[]> {
    const o = parseConfig(BrowseOptions, options, 'browse');
    await this.lookFor(type, o.timeoutMs, o.signal, () => false);
    return this.instances(type);
  }

  /**
   * The agents advertising `group` (TXT `group`), as soon as one is known plus `settleMs` for
   * others; [] if none answered within `timeoutMs`. Candidates are hints: check the certificate.
   */
  async resolve(group: string, options: ResolveOptions = {}): Promise<AgentCandidate[]> {
    const o = parseConfig(ResolveOptions, options, 'resolve');
    if (o.useCache) {
      const cached = this.candidates(group);
      if (cached.length > 0) return cached;
    }
    let firstAt: number | undefined;
    await this.lookFor(IOLUS_SERVICE_TYPE, o.timeoutMs, o.signal, () => {
      if (firstAt === undefined && this.candidates(group).length > 0) firstAt = this.now();
      return firstAt !== undefined && this.now() - firstAt >= o.settleMs;
    }, () => (firstAt === undefined ? undefined : firstAt + o.settleMs));
    return this.candidates(group);
  }

  private candidates(group: string): AgentCandidate[] {
    const { candidates, rejected } = agentCandidates(this.instances(IOLUS_SERVICE_TYPE), group);
    for (const r of rejected) this.log.debug({ instance: r.instance, reason: r.reason }, 'ignoring _iolus._tcp instance');
    this.stats.rejected += rejected.length;
    return candidates;
  }

  /**
   * The query loop: ask at once, re-ask after 1 s, 2 s, 4 s… (§5.2) until `done()` or the
   * deadline, following up on instances that lack records after every response.
   * `wakeAt()` lets the caller ask to be woken at a time of its own (the settle window).
   */
  private async lookFor(type: string, timeoutMs: number, signal: AbortSignal | undefined, done: () => boolean, wakeAt?: () => number | undefined): Promise<void> {
    if (this.state !== 'running') throw new UsageError('mdns.state', 'browser is not running');
    signal?.throwIfAborted();
    this.interest(type);
    const deadline = this.now() + timeoutMs;
    let retryAt = this.now();
    let retryEvery = FIRST_RETRY_MS;
    for (;;) {
      const seen = this.generation;
      const now = this.now();
      if (now >= retryAt) {
        await this.ask([browseQuestion(type)], true);
        retryAt = now + retryEvery;
        retryEvery *= 2;
      }
      const followUps = followUpQuestions(instancesOf(this.cache, type, this.now()).incomplete);
      if (followUps.length > 0) await this.ask(followUps, false);
      if (done() || this.state !== 'running') return;
      const until = Math.min(deadline, retryAt, wakeAt?.() ?? Infinity);
      if (this.now() >= deadline) return;
      if (this.generation === seen) await this.wait(until - this.now(), signal);
      signal?.throwIfAborted();
      if (done()) return;
    }
  }

  /** Sleeps until `ms` passes, a response arrives, or the signal aborts. */
  private wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(finish);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, ms));
      this.waiters.add(finish);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }

  /** Sends the questions not asked within the last second (always, when `force`), with known answers. */
  private async ask(questions: Question[], force: boolean): Promise<void> {
    const now = this.now();
    const fresh = force ? questions : questions.filter((q) => now - (this.asked.get(rrsetKey(q.name, q.type)) ?? -Infinity) >= 1000);
    if (fresh.length === 0) return;
    for (const q of fresh) this.asked.set(rrsetKey(q.name, q.type), now);
    this.stats.queries++;
    try {
      await this.link.multicast(queryPacket(fresh, knownAnswersFor(fresh, this.cache, now)));
    } catch (err) {
      this.log.warn({ err }, 'mDNS query not sent');
    }
  }

  private onMessage(message: MdnsMessage, from: MdnsSource): void {
    if (message.kind !== 'response') return;
    this.stats.responses++;
    const now = this.now();
    // §5.2 / §10: cache everything in a response, answers and additionals alike.
    this.cache.addAll([...message.answers, ...message.additionals], now, from.interface);
    this.generation++;
    for (const wake of [...this.waiters]) wake();
  }

  private interest(type: string): void {
    this.interests.delete(type);
    this.interests.add(type);
    if (this.interests.size > MAX_INTERESTS) this.interests.delete(this.interests.values().next().value!);
  }

  /**
   * Prunes the cache and re-asks for records of interest once they pass 80% of their lifetime,
   * then every further 5% (RFC 6762 §5.2), until an answer refreshes them or they expire.
   */
  private maintain(): void {
    const now = this.now();
    this.cache.prune(now);
    const relevant = new Set<string>();
    for (const type of this.interests) {
      relevant.add(rrsetKey(serviceTypeName(type), 'PTR'));
      for (const i of instancesOf(this.cache, type, now).complete) {
        for (const [name, t] of [[i.name, 'SRV'], [i.name, 'TXT'], [i.host, 'A'], [i.host, 'AAAA']] as const) relevant.add(rrsetKey(name, t));
      }
    }
    const questions = new Map<string, Question>();
    for (const e of this.cache.ageing(now, 0.8)) {
      const key = rrsetKey(e.record.name, e.record.type);
      if (!relevant.has(key) || questions.has(key)) continue;
      const life = e.expiresAt - e.receivedAt;
      if (now - (this.asked.get(key) ?? -Infinity) >= life * 0.05) questions.set(key, { name: e.record.name, type: e.record.type });
    }
    if (questions.size > 0) void this.ask([...questions.values()], true);
  }
}
