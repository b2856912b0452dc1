/** Shared fixtures for key ring tests: a fake clock, a three-epoch schedule, quiet logs. */
import { SrtpKeyRing, type SrtpKeyRingOptions } from '../../../src/adapters/srtp/keyRing.js';
import type { KeySource } from '../../../src/client/keyMaterial.js';
import { silentLogger } from '../../../src/util/log.js';
import { groupKeyEpoch, SettableKeySource } from './keys.js';
import type { GroupKeyEpoch } from '../../../src/client/keyMaterial.js';

export class FakeClock {
  constructor(public t = 0) {}
  readonly now = (): number => this.t;
}

/** Epoch n (1..3) active on [(n-1)·1000, n·1000) ms, grace 200 ms. */
export function threeEpochs(): GroupKeyEpoch[] {
  return [1, 2, 3].map((n) => groupKeyEpoch(n, { notBefore: (n - 1) * 1000, notAfter: n * 1000, graceMs: 200 }));
}

export function makeRing(source: KeySource, clock: FakeClock, opts: Partial<SrtpKeyRingOptions> = {}): SrtpKeyRing {
  return new SrtpKeyRing(source, { profile: 'AES_CM_128_HMAC_SHA1_80', clock: clock.now, logger: silentLogger(), ...opts });
}

export function sourceOf(epochs: GroupKeyEpoch[]): SettableKeySource {
  return new SettableKeySource(epochs);
}
