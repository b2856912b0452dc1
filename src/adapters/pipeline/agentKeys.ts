/**
 * getkey() for launchers (paper §9: vic called getkey() before each send and receive): the
 * current key of a label from the group's local agent (`iolus agent`), and the agent's
 * rollover events, over its Unix socket (src/client/localAgent).
 */
import type { DerivedKey } from '../../client/keyMaterial.js';
import { LocalAgentClient, LocalAgentError, type LocalAgentAddress } from '../../client/localAgent/agentClient.js';
import type { KeyJson } from '../../client/localAgent/keyFormat.js';
import { fromBase64, fromHex } from '../../crypto/bytes.js';

/** What getkey() found: a key, or why there is none. */
export type KeyLookup = { readonly key: DerivedKey } | { readonly key?: undefined; readonly reason: string; readonly agentGone: boolean };

export interface AgentEvent {
  readonly event: 'key' | 'activate' | 'state';
  readonly epoch?: number;
  readonly state?: string;
  readonly why?: string;
}

export interface KeyProvider {
  /** The key in force now for `label`, or why there is none. Never throws. */
  getkey(label: string): Promise<KeyLookup>;
  /** Calls `listener` on each agent event until the returned function is called. */
  watch(listener: (e: AgentEvent) => void): () => void;
  close(): void;
}

function toDerived(k: KeyJson): DerivedKey {
  return {
    label: k.label, epoch: k.epoch, notBefore: Date.parse(k.notBefore), notAfter: Date.parse(k.notAfter), graceMs: k.graceMs,
    key: fromBase64(k.key), mki: fromHex(k.mki),
  };
}

/** A KeyProvider over the local agent of `group` (its default socket, or `addr`). */
export class AgentKeys implements KeyProvider {
  readonly client: LocalAgentClient;
  /** Keys pulled from the agent (each getkey() that returned one). */
  pulls = 0;
  private readonly watchers = new Set<(e: AgentEvent) => void>();
  private abort: AbortController | undefined;

  constructor(readonly group: string, addr: LocalAgentAddress = {}) {
    this.client = new LocalAgentClient(group, addr);
  }

  async getkey(label: string): Promise<KeyLookup> {
    const q = new URLSearchParams({ label, epoch: 'current', format: 'json' });
    try {
      const k = toDerived(await this.client.json<KeyJson>(`/v1/key?${q}`));
      this.pulls++;
      return { key: k };
    } catch (err) {
      const e = err as LocalAgentError;
      const gone = e instanceof LocalAgentError && (e.code === 'agent.absent' || e.code === 'agent.unreachable');
      return { reason: e.message, agentGone: gone };
    }
  }

  watch(listener: (e: AgentEvent) => void): () => void {
    this.watchers.add(listener);
    if (!this.abort) this.follow();
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size === 0) {
        this.abort?.abort();
        this.abort = undefined;
      }
    };
  }

  close(): void {
    this.watchers.clear();
    this.abort?.abort();
    this.abort = undefined;
    this.client.close();
  }

  /** Follows /v1/events, reconnecting every 500 ms while anyone watches. */
  private follow(): void {
    const abort = new AbortController();
    this.abort = abort;
    void (async () => {
      while (!abort.signal.aborted) {
        try {
          for await (const e of this.client.events(abort.signal)) {
            if (e.event !== 'key' && e.event !== 'activate' && e.event !== 'state') continue;
            const d = (e.data ?? {}) as { epoch?: unknown; state?: unknown; why?: unknown };
            const ev: AgentEvent = {
              event: e.event,
              ...(typeof d.epoch === 'number' ? { epoch: d.epoch } : {}),
              ...(typeof d.state === 'string' ? { state: d.state } : {}),
              ...(typeof d.why === 'string' ? { why: d.why } : {}),
            };
            for (const w of this.watchers) w(ev);
          }
        } catch {
          /* the agent went away or the stream broke: retry */
        }
        if (abort.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    })();
  }
}
