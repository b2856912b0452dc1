/**
 * An intermediary's link to its parent (paper §6.2–§6.4): the control-plane client (join as
 * role `intermediary`, refresh, leave, catch-up) and the member side of the parent's subgroup
 * transport. Requests from the Intermediary state machine run one at a time; a failed join is
 * retried with exponential backoff and jitter while the intermediary still has members, and a
 * refused refresh (the parent restarted or expired us) makes it rejoin. Its own members are
 * never touched by any of this.
 */
import { ControlClient, ControlError } from '../client/controlClient.js';
import type { Outbound, ParentControl } from '../protocol/outbound.js';
import type { TlsMaterial } from '../pki/tlsOptions.js';
import type { MemberTransport } from '../transport/types.js';
import type { Logger } from '../util/log.js';
import type { KeydConfig } from './config.js';
import type { NodeStep } from './controller.js';
import type { Intermediary } from './intermediary.js';
import { openUplinkTransport, prepareUplink } from '../client/uplink.js';

export class ParentLink {
  private readonly client: ControlClient;
  private transport: MemberTransport | undefined;
  /** What the parent-subgroup transports closed so far refused (counters of the open one are added on read). */
  private readonly closedDrops = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();
  private closing = false;
  private backoff: number;
  private lastRefreshOk = Date.now();
  private wake: (() => void) | undefined;

  constructor(
    private readonly config: KeydConfig,
    tls: TlsMaterial,
    private readonly node: Intermediary,
    private readonly dispatch: (s: NodeStep) => void,
    private readonly log: Logger,
    private readonly onDelegation: (until: number | null) => void,
    _ownUrl: () => string,
  ) {
    this.client = new ControlClient({ url: config.parent!.url, group: config.group, tls, timeoutMs: 5_000 });
    this.backoff = config.parent!.rejoinMin;
  }

  carry(o: Outbound): void {
    if (o.kind === 'parent-subgroup') this.transport?.sendSubgroup(o.bytes);
    else if (o.kind === 'parent-agent') this.transport?.sendAgent(o.bytes);
    else if (o.kind === 'parent-control') this.enqueue(o.request);
  }

  private enqueue(req: ParentControl): void {
    this.queue = this.queue.then(() => this.run(req)).catch((err: unknown) => {
      this.log.warn({ op: req.op, err: (err as Error).message }, 'parent request failed');
    });
  }

  private async run(req: ParentControl): Promise<void> {
    if (this.closing && req.op !== 'leave') return;
    switch (req.op) {
      case 'join':
        return this.joinWithBackoff();
      case 'refresh':
        try {
          await this.client.call('POST', `/v1/groups/${encodeURIComponent(this.config.group)}/refresh`, { memberId: req.memberId, subtree: this.node.agent.subtreeSize() });
          this.lastRefreshOk = Date.now();
        } catch (err) {
          if (err instanceof ControlError && err.status >= 400 && err.status < 500) return this.lost(`refresh refused: ${err.message}`);
          // Unreachable parent: keep trying at each refresh; past the TTL it has dropped us anyway.
          if (Date.now() - this.lastRefreshOk > (this.node.uplink.grant ? this.node.uplink.grant.expiresAt - this.lastRefreshOk : 0)) return this.lost(`parent unreachable: ${(err as Error).message}`);
          this.log.warn({ err: (err as Error).message }, 'parent refresh failed; will retry');
        }
        return;
      case 'catch-up':
        try {
          this.dispatch(this.node.onParentCatchUp(await this.client.state(req.memberId)));
        } catch (err) {
          if (err instanceof ControlError && (err.status === 404 || err.status === 403)) return this.lost(`catch-up refused: ${err.message}`);
          if (!(err instanceof ControlError && err.status === 409)) throw err;
        }
        return;
      case 'void':
        await this.client.call('POST', `/v1/groups/${encodeURIComponent(this.config.group)}/void`, { memberId: this.node.uplink.memberId, epoch: req.epoch });
        return;
      case 'leave':
        await this.closeTransport();
        await this.client.leave(req.memberId).catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'parent leave failed'));
        return;
    }
  }

  private async joinWithBackoff(): Promise<void> {
    while (!this.closing && this.node.parentState === 'joining') {
      try {
        await this.closeTransport();
        const pre = await prepareUplink(this.client.url.hostname.replace(/^\[|\]$/g, ''), undefined, this.log);
        const grant = await this.client.join({ role: 'intermediary', endpoint: pre.endpoint }).catch(async (err: unknown) => {
          await pre.unicast.stop();
          throw err;
        });
        this.transport = await openUplinkTransport(grant, pre, this.client, this.log);
        this.transport.onDatagram((b) => this.dispatch(this.node.onParent(b)));
        this.lastRefreshOk = Date.now();
        this.onDelegation(grant.delegation?.until ?? null);
        this.dispatch(this.node.onParentGrant(grant));
        this.backoff = this.config.parent!.rejoinMin;
        this.log.info({ event: 'parent-join', memberId: grant.memberId, epoch: grant.subgroup.epoch, parent: grant.agent.name }, 'joined parent subgroup');
        return;
      } catch (err) {
        const wait = Math.min(this.config.parent!.rejoinMax, this.backoff) * (0.5 + Math.random() / 2);
        this.log.warn({ err: (err as Error).message, retryMs: Math.round(wait) }, 'parent join failed');
        this.backoff = Math.min(this.config.parent!.rejoinMax, this.backoff * 2);
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          this.wake = () => {
            clearTimeout(t);
            r();
          };
        });
      }
    }
  }

  private async lost(why: string): Promise<void> {
    this.log.warn({ event: 'parent-lost', why }, 'lost the parent; rejoining');
    await this.closeTransport();
    this.dispatch(this.node.onParentLost());
  }

  /** Datagrams the parent-subgroup transport refused itself (empty, oversized, …), by cause, over every one this link opened. */
  droppedByTransport(): Map<string, number> {
    const out = new Map(this.closedDrops);
    for (const [k, v] of this.transport?.counters.dropped ?? []) out.set(k, (out.get(k) ?? 0) + v);
    return out;
  }

  private async closeTransport(): Promise<void> {
    const t = this.transport;
    this.transport = undefined;
    for (const [k, v] of t?.counters.dropped ?? []) this.closedDrops.set(k, (this.closedDrops.get(k) ?? 0) + v);
    await t?.stop();
  }

  /** SIGTERM: leave the parent (bounded), close everything. */
  async shutdown(): Promise<void> {
    this.closing = true;
    this.wake?.();
    const s = this.node.shutdown();
    for (const o of s.out) {
      if (o.kind === 'parent-control' && o.request.op === 'leave') {
        await Promise.race([this.client.leave(o.request.memberId).catch(() => undefined), new Promise((r) => setTimeout(r, 800))]);
      }
    }
    await this.closeTransport();
    this.client.close();
  }
}
