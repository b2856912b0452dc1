/**
 * The paper's getkey() (§9: "we modified vic to call our getkey() function prior to each send
 * and receive"). vic read the key from the Iolus client through shared memory; here the
 * participant's local agent (`iolus agent`) holds the group key and a KeySource over its
 * socket keeps this process's copy fresh (pulled again on every `key`/`activate` event), so
 * getkey() is a cheap synchronous call that returns the SRTP key ring as it stands now.
 */
import { SrtpKeyRing } from '../../src/adapters/srtp/keyRing.js';
import { openKeySource } from '../../src/client/localAgent/agentClient.js';
import { AgentKeys } from '../../src/adapters/pipeline/agentKeys.js';
import type { KeySource } from '../../src/client/keyMaterial.js';
import { silentLogger } from '../../src/util/log.js';

export type AgentState = 'joined' | 'removed' | 'gone';

export class VicKeys {
  /** getkey() calls so far. */
  calls = 0;
  agentState: AgentState = 'joined';
  private readonly stopWatch: () => void;
  private readonly poll: NodeJS.Timeout;

  private constructor(
    private readonly ring: SrtpKeyRing,
    private readonly source: KeySource & { close(): void },
    private readonly agent: AgentKeys,
    onAgentState: (s: AgentState, why: string) => void,
  ) {
    const set = (s: AgentState, why: string) => {
      if (this.agentState === s || this.agentState === 'removed') return;
      this.agentState = s;
      onAgentState(s, why);
    };
    this.stopWatch = agent.watch((e) => {
      if (e.event === 'state' && (e.state === 'removed' || e.state === 'ended')) set('removed', e.why ?? e.state);
    });
    // An agent whose member was removed exits: its socket goes away.
    this.poll = setInterval(() => {
      agent.client.get('/v1/status').then(() => set('joined', 'answers'), (err: Error) => set('gone', err.message));
    }, 1000);
    this.poll.unref();
  }

  /** Connects to the local agent at `socketPath` and fetches the label's keys before returning. */
  static async open(group: string, socketPath: string, profile: 'AES_CM_128_HMAC_SHA1_80' | 'AEAD_AES_128_GCM', onAgentState: (s: AgentState, why: string) => void): Promise<VicKeys> {
    const source = await openKeySource(group, { socketPath });
    await source.prime(`srtp/${profile}`);
    // MKI on: every packet names its epoch, so a refusal says whether the key was unknown.
    const ring = new SrtpKeyRing(source, { profile, mki: true, logger: silentLogger() });
    return new VicKeys(ring, source, new AgentKeys(group, { socketPath }), onAgentState);
  }

  /** The key ring to protect or unprotect the next packet with. */
  getkey(): SrtpKeyRing {
    this.calls++;
    return this.ring;
  }

  close(): void {
    clearInterval(this.poll);
    this.stopWatch();
    this.agent.close();
    this.ring.close();
    this.source.close();
  }
}
