/**
 * An in-memory subgroup plane for tests: multicast channels and unicast endpoints, with
 * seeded faults (drop, duplicate, reorder). Deliveries queue up and run() drains them, so a
 * test controls exactly when the network moves.
 */
export interface Faults {
  drop?: number;
  duplicate?: number;
  /** Probability that a delivery is taken out of order (from up to 8 places further down the queue). */
  reorder?: number;
}

type Handler = (bytes: Uint8Array) => void;

/** Small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class MemoryNetwork {
  private readonly channels = new Map<string, Map<string, Handler>>();
  private readonly endpoints = new Map<string, Handler>();
  private queue: { handler: Handler; bytes: Uint8Array }[] = [];
  private readonly random: () => number;
  delivered = 0;
  droppedByFault = 0;

  constructor(seed = 1, public faults: Faults = {}) {
    this.random = rng(seed);
  }

  subscribe(channel: string, id: string, handler: Handler): void {
    let subs = this.channels.get(channel);
    if (!subs) this.channels.set(channel, (subs = new Map()));
    subs.set(id, handler);
  }

  unsubscribe(channel: string, id: string): void {
    this.channels.get(channel)?.delete(id);
  }

  listen(id: string, handler: Handler): void {
    this.endpoints.set(id, handler);
  }

  /** Every subscriber gets a copy, the sender included (multicast loopback). */
  multicast(channel: string, bytes: Uint8Array): void {
    for (const h of this.channels.get(channel)?.values() ?? []) this.enqueue(h, bytes);
  }

  unicast(id: string, bytes: Uint8Array): void {
    const h = this.endpoints.get(id);
    if (h) this.enqueue(h, bytes);
  }

  private enqueue(handler: Handler, bytes: Uint8Array): void {
    if (this.faults.drop && this.random() < this.faults.drop) {
      this.droppedByFault++;
      return;
    }
    this.queue.push({ handler, bytes });
    if (this.faults.duplicate && this.random() < this.faults.duplicate) this.queue.push({ handler, bytes });
  }

  /** Forgets everything in flight (bulk setup: the members catch up afterwards). */
  discard(): number {
    const n = this.queue.length;
    this.queue = [];
    return n;
  }

  /** Delivers until the queue is empty; bounded, so a forwarding loop fails the test instead of hanging. */
  run(maxDeliveries = 50_000_000): number {
    let n = 0;
    let head = 0;
    while (head < this.queue.length) {
      if (++n > maxDeliveries) throw new Error(`network did not settle after ${maxDeliveries} deliveries: a loop?`);
      let i = head;
      if (this.faults.reorder && this.random() < this.faults.reorder) {
        i = head + Math.floor(this.random() * Math.min(8, this.queue.length - head));
        const t = this.queue[i]!;
        this.queue[i] = this.queue[head]!;
        this.queue[head] = t;
      }
      const d = this.queue[head++]!;
      this.delivered++;
      d.handler(d.bytes);
      if (head > 65_536) {
        this.queue = this.queue.slice(head);
        head = 0;
      }
    }
    this.queue = [];
    return n;
  }
}
