/**
 * A member designated as originator (paper §7): it makes KGRP2 on the group's schedule (from
 * its grant) and sends each announcement to its agent with method 2, so every agent on the way
 * down can leave out the unentitled before passing it on. It continues from the newest epoch
 * it holds, so epochs keep increasing whoever made the last one.
 */
import { generateSigningKey, type SigningKey } from '../crypto/sign.js';
import { Originator } from '../keyd/groupKey/originator.js';
import { ContentType } from '../wire/data.js';
import { GroupClient, type ConnectOptions } from './client.js';

export class OriginatorClient {
  private timer: NodeJS.Timeout | undefined;
  private originator: Originator | undefined;

  private constructor(readonly client: GroupClient, private readonly signing: SigningKey) {}

  static async connect(opts: Omit<ConnectOptions, 'role' | 'originatorKey'>, signing = generateSigningKey()): Promise<OriginatorClient> {
    const client = await GroupClient.connect({ ...opts, role: 'originator', originatorKey: signing.publicKey });
    const o = new OriginatorClient(client, signing);
    o.start();
    return o;
  }

  private start(): void {
    this.timer = setInterval(() => this.tick(), 100);
    this.timer.unref();
    this.client.on('grant', () => {
      this.originator = undefined; // a rejoin: start over from what the new grant holds
    });
  }

  private tick(): void {
    if (this.client.status !== 'joined') return;
    const policy = this.client.grant?.groupKeyPolicy;
    if (!policy) return;
    const now = Date.now();
    const ring = this.client.keys.ring;
    if (!this.originator) {
      this.originator = new Originator(this.client.opts.group, this.signing, { periodMs: policy.periodMs, leadMs: policy.leadMs, graceMs: policy.graceMs, repeats: 3 }, ring.epoch);
      const cur = ring.current(now);
      if (cur) this.originator.resumeAfter(ring.epoch, (ring.next(now) ?? cur).notAfter);
    }
    for (const bytes of this.originator.tick(now)) {
      try {
        this.client.send(bytes, 2, ContentType.GroupKey);
      } catch {
        /* not joined right now: the repeats and the controller's catch-up cover it */
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.client.leave();
  }
}
