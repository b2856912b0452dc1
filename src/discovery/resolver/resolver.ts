/**
 * AgentResolver: global group name → the member's local agent (paper §8.3). An explicit URL
 * always wins; otherwise mDNS on the member's link, then the directory. Every hint is only a
 * hint: a candidate becomes the answer once it has proved itself by its certificate (verify.ts);
 * one that cannot (another CA, a fingerprint other than advertised, nothing listening) is
 * logged with the reason and the next is tried.
 *
 * `watch()` keeps an eye on the source of the answer, so that a member hears of its agent
 * leaving (an mDNS goodbye or expiry, the directory dropping it) before heartbeats go quiet.
 */
import { IolusError } from '../../errors.js';
import type { TlsMaterial } from '../../pki/tlsOptions.js';
import { createLogger, type Logger } from '../../util/log.js';
import { MdnsTransport } from '../mdns/transport.js';
import { MdnsBrowser } from '../mdns/browser.js';
import type { AgentCandidate } from '../mdns/instances.js';
import { DirectoryClient } from '../directory/client.js';
import type { LookupResponse } from '../directory/api.js';
import { dedupe, fromDirectory, fromMdns, type Candidate, type Source } from './candidates.js';
import { tlsVerifier, type Verifier } from './verify.js';

export interface ResolverOptions {
  group: string;
  /** An agent URL given by the user: wins, unchecked here (the control client checks it). */
  agent?: string;
  /**
   * Ask the link (mDNS). `settleMs`: after the first answer, how long to wait for the others
   * (responders delay shared answers by 20-120 ms, RFC 6762 §6; the deepest agent may answer last).
   */
  mdns?: { interfaces?: string[]; timeoutMs?: number; settleMs?: number; ipv6?: boolean };
  /** Ask the directory. `ca`: PEM of the directory certificate's CA (default: the group CA). */
  directory?: { url: string; ca?: string; site?: string; timeoutMs?: number };
  /** Time allowed for one candidate's TLS handshake (ms). */
  verifyTimeoutMs?: number;
  /** How often watch() looks at the mDNS cache / asks the directory (ms). */
  watchMdnsEveryMs?: number;
  watchDirectoryEveryMs?: number;
}

/** What the resolver needs of an mDNS browser and of a directory client (fakes in tests). */
export type BrowserLike = Pick<MdnsBrowser, 'resolve' | 'cachedCandidates'>;
export type DirectoryLike = Pick<DirectoryClient, 'lookup'>;

export interface ResolverComponents {
  /** The member's certificate, key and group CA. */
  tls: TlsMaterial;
  logger?: Logger;
  browser?: BrowserLike;
  directory?: DirectoryLike;
  verify?: Verifier;
  /** Our interfaces' CIDRs (mDNS order: agents on our subnet first). */
  ownCidrs?: () => string[];
}

export interface Refusal {
  source: Source;
  url: string;
  name?: string;
  reason: string;
}

export interface Resolution {
  url: string;
  source: Source;
  /** mDNS instance or directory principal of the hint. */
  name?: string;
  role?: 'controller' | 'intermediary';
  level?: number;
  /** The certificate the agent presented (undefined for an explicit URL). */
  fingerprint?: string;
  /** Principal (CN) of that certificate. */
  principal?: string;
  /** The directory registration's remaining TTL at resolution (ms): watch() asks well within it. */
  expiresInMs?: number;
  /** Candidates tried first and refused, with why. */
  refused: Refusal[];
  /** Sources asked, with what each said. */
  asked: { source: Source; candidates: number; error?: string }[];
  elapsedMs: number;
}

export class NoAgentError extends IolusError {
  constructor(readonly group: string, readonly refused: Refusal[], readonly asked: Resolution['asked']) {
    const tried = refused.map((r) => `${r.source} ${r.url}: ${r.reason}`);
    const sources = asked.map((a) => `${a.source}: ${a.error ?? `${a.candidates} candidate(s)`}`);
    super('resolver.none', `no agent of ${group} found (${[...sources, ...tried].join('; ') || 'no source to ask: give --agent, --mdns or --directory'})`);
  }
}

export class AgentResolver {
  readonly group: string;
  private readonly log: Logger;
  private readonly verify: Verifier;
  private browser: BrowserLike | undefined;
  private directory: DirectoryLike | undefined;
  private link: MdnsTransport | undefined;
  private ownedBrowser: MdnsBrowser | undefined;
  private ownedDirectory: DirectoryClient | undefined;
  private readonly watches = new Set<() => void>();

  constructor(readonly options: ResolverOptions, private readonly components: ResolverComponents) {
    this.group = options.group;
    this.log = components.logger ?? createLogger('resolver', { group: options.group });
    this.verify = components.verify ?? tlsVerifier(components.tls, options.verifyTimeoutMs ?? 3_000);
    this.browser = components.browser;
    this.directory = components.directory;
  }

  /** Opens what the options ask for and the components did not supply (mDNS sockets, directory client). */
  async start(): Promise<void> {
    const o = this.options;
    if (o.mdns && !this.browser) {
      this.link = new MdnsTransport({ ...(o.mdns.interfaces ? { interfaces: o.mdns.interfaces } : {}), ipv6: o.mdns.ipv6 ?? true }, { logger: this.log.child({ component: 'mdns.transport' }) });
      await this.link.start();
      this.ownedBrowser = new MdnsBrowser({}, { link: this.link, logger: this.log.child({ component: 'mdns.browser' }) });
      await this.ownedBrowser.start();
      this.browser = this.ownedBrowser;
    }
    if (o.directory && !this.directory) {
      this.ownedDirectory = new DirectoryClient({ url: o.directory.url, ca: o.directory.ca ?? this.components.tls.ca, cert: this.components.tls.cert, key: this.components.tls.key, ...(o.directory.timeoutMs ? { timeoutMs: o.directory.timeoutMs } : {}) });
      this.directory = this.ownedDirectory;
    }
  }

  async stop(): Promise<void> {
    for (const stop of [...this.watches]) stop();
    await this.ownedBrowser?.stop();
    await this.link?.stop();
    this.ownedDirectory?.close();
  }

  /** The agent to join: explicit URL, else the first verified mDNS candidate, else directory candidate. */
  async resolve(): Promise<Resolution> {
    const t0 = performance.now();
    const refused: Refusal[] = [];
    const asked: Resolution['asked'] = [];
    const done = (c: Candidate, proof?: { fingerprint: string; principal: string }): Resolution => {
      const r: Resolution = {
        url: c.url, source: c.source, refused, asked, elapsedMs: performance.now() - t0,
        ...(c.name !== undefined ? { name: c.name } : {}), ...(c.role ? { role: c.role } : {}), ...(c.level !== undefined ? { level: c.level } : {}),
        ...(c.expiresInMs !== undefined ? { expiresInMs: c.expiresInMs } : {}),
        ...(proof ? { fingerprint: proof.fingerprint, principal: proof.principal } : {}),
      };
      this.log.info({ event: 'resolved', url: r.url, source: r.source, name: r.name, principal: r.principal, refused: refused.length, ms: Math.round(r.elapsedMs) }, `agent of ${this.group} found by ${r.source}`);
      return r;
    };
    if (this.options.agent) return done({ source: 'explicit', url: this.options.agent });

    const tried = new Set<string>();
    for (const source of ['mdns', 'directory'] as const) {
      const candidates = await this.candidates(source, asked);
      for (const c of dedupe(candidates)) {
        if (tried.has(c.url)) continue;
        tried.add(c.url);
        const v = await this.verify({ url: c.url, ...(c.fingerprint ? { fingerprint: c.fingerprint } : {}) }, this.group);
        if (v.ok) return done(c, v);
        refused.push({ source: c.source, url: c.url, ...(c.name !== undefined ? { name: c.name } : {}), reason: v.reason });
        this.log.warn({ event: 'refused', source: c.source, url: c.url, name: c.name, reason: v.reason }, `ignoring ${c.source} candidate for ${this.group}: ${v.reason}`);
      }
    }
    throw new NoAgentError(this.group, refused, asked);
  }

  private async candidates(source: 'mdns' | 'directory', asked: Resolution['asked']): Promise<Candidate[]> {
    try {
      if (source === 'mdns') {
        if (!this.browser) return [];
        const found = await this.browser.resolve(this.group, { timeoutMs: this.options.mdns?.timeoutMs ?? 1_500, settleMs: this.options.mdns?.settleMs ?? 300 });
        asked.push({ source, candidates: found.length });
        return fromMdns(found, this.ownCidrs());
      }
      if (!this.directory) return [];
      const site = this.options.directory?.site;
      const r = await this.directory.lookup(this.group, site ? { site } : {});
      asked.push({ source, candidates: r.agents.length });
      return fromDirectory(r.agents);
    } catch (err) {
      asked.push({ source, candidates: 0, error: (err as Error).message });
      this.log.warn({ source, err: (err as Error).message }, `${source} lookup failed`);
      return [];
    }
  }

  private ownCidrs(): string[] {
    if (this.components.ownCidrs) return this.components.ownCidrs();
    return this.link?.interfaces.flatMap((i) => i.cidrs) ?? [];
  }

  /**
   * Calls `onGone` once when the source of `r` stops listing that agent: an mDNS goodbye or
   * expiry (looked for in the cache), or the directory no longer returning it (asked a few times
   * per registration TTL; an unreachable directory proves nothing and is ignored). Returns a function that stops
   * watching. An explicit URL is not watched.
   */
  watch(r: Resolution, onGone: (why: string) => void): () => void {
    if (r.source === 'explicit') return () => undefined;
    let stopped = false;
    let busy = false;
    const still = async (): Promise<boolean | undefined> => {
      if (r.source === 'mdns') {
        const list: AgentCandidate[] = this.browser?.cachedCandidates(this.group) ?? [];
        return fromMdns(list).some((c) => c.url === r.url);
      }
      try {
        const found: LookupResponse | undefined = await this.directory?.lookup(this.group);
        return found ? found.agents.some((a) => a.url === r.url) : undefined;
      } catch {
        return undefined;
      }
    };
    // The directory is asked at least three times per registration lifetime, so a departure is
    // seen well within the TTL (and at most every 250 ms, at least every 5 s by default).
    const every = r.source === 'mdns'
      ? (this.options.watchMdnsEveryMs ?? 500)
      : (this.options.watchDirectoryEveryMs ?? Math.max(250, Math.min(5_000, (r.expiresInMs ?? 15_000) / 3)));
    const timer = setInterval(() => {
      if (busy || stopped) return;
      busy = true;
      void still().then((present) => {
        busy = false;
        if (stopped || present !== false) return;
        stop();
        const why = r.source === 'mdns' ? `mDNS: ${r.name ?? r.url} said goodbye or expired` : `directory no longer lists ${r.name ?? r.url}`;
        this.log.info({ event: 'agent-gone', url: r.url, source: r.source, why }, why);
        onGone(why);
      });
    }, every);
    timer.unref();
    const stop = () => {
      stopped = true;
      clearInterval(timer);
      this.watches.delete(stop);
    };
    this.watches.add(stop);
    return stop;
  }
}
