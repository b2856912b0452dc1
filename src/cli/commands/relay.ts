/**
 * `iolus relay --group <g> --listen <host:port> --to <host:port> [--rtcp-to <host:port>]
 *  [--decrypt] [--profile AES_CM_128_HMAC_SHA1_80|AEAD_AES_128_GCM] [--mki]
 *  [--replay-window N] [--stats-interval S]`
 *
 * Runs the hitless SRTP relay (src/adapters/relay) until SIGINT/SIGTERM, keyed by the local
 * agent of the group, then prints its counters as JSON. Without --decrypt: plain RTP/RTCP in
 * on --listen (a loopback address), SRTP out to --to. With --decrypt: SRTP in on --listen,
 * plain RTP out to --to (a loopback address).
 */
import type { KeySource } from '../../client/keyMaterial.js';
import { openKeySource } from '../../client/localAgent/agentClient.js';
import { SRTP_PROFILE_NAMES } from '../../adapters/srtp/profile.js';
import { IolusError, UsageError } from '../../errors.js';
import { SrtpRelay } from '../../adapters/relay/relay.js';
import { formatHostPort } from '../../adapters/relay/address.js';
import { RELAY_PARSE_OPTIONS, relayFlagsSchema, relayInitFromFlags } from '../../adapters/relay/options.js';
import { createLogger } from '../../util/log.js';
import { parseFlags } from '../args.js';

/** Where the relay's keys come from: the local agent serving the group. */
export type OpenKeySource = (group: string) => Promise<KeySource>;

/** Refuses to open keys (tests of the command's error path). */
export const noLocalAgent: OpenKeySource = async (group) => {
  throw new UsageError('relay.noAgent', `no local agent for group ${group}`);
};

/** Keys from the group's local agent (`iolus agent`), SRTP labels fetched before the relay starts. */
export const fromLocalAgent: OpenKeySource = async (group) => {
  const ks = await openKeySource(group, process.env.IOLUS_AGENT_SOCKET ? { socketPath: process.env.IOLUS_AGENT_SOCKET } : {});
  await Promise.all(SRTP_PROFILE_NAMES.map((p) => ks.prime(`srtp/${p}`).catch(() => undefined)));
  return ks;
};

export interface RelayCommandDeps {
  readonly openKeySource?: OpenKeySource;
  /** Stops the relay when aborted (tests); otherwise SIGINT/SIGTERM do. */
  readonly signal?: AbortSignal;
  /** Called once the relay listens (tests learn the bound port). */
  readonly onListening?: (relay: SrtpRelay) => void;
  readonly stdout?: { write(s: string): unknown };
}

export async function run(args: string[], deps: RelayCommandDeps = {}): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    (deps.stdout ?? process.stdout).write(USAGE);
    return 0;
  }
  const { values } = parseFlags('relay', args, RELAY_PARSE_OPTIONS, relayFlagsSchema);
  const open = deps.openKeySource ?? fromLocalAgent;
  let keySource: KeySource;
  try {
    keySource = await open(values.group);
  } catch (err) {
    if (err instanceof IolusError) throw err;
    throw new UsageError('relay.noAgent', `no local agent for group ${values.group}: ${(err as Error).message}`, { cause: err });
  }
  const log = createLogger('relay', { group: values.group, mode: values.decrypt ? 'decrypt' : 'encrypt' });
  const relay = new SrtpRelay(relayInitFromFlags(values), { keySource, logger: log });
  const bound = await relay.start();
  const out = deps.stdout ?? process.stdout;
  out.write(
    `iolus relay: ${values.decrypt ? 'SRTP' : 'plain RTP'} in on ${formatHostPort(bound)}, ` +
      `${values.decrypt ? 'plain RTP' : 'SRTP'} out to ${formatHostPort(values.to)}` +
      `${values['rtcp-to'] ? ` (RTCP to ${formatHostPort(values['rtcp-to'])})` : ''}, ${values.profile}${values.mki ? ' with MKI' : ''}, group ${values.group}\n`,
  );
  deps.onListening?.(relay);
  const stats = values['stats-interval'] > 0 ? setInterval(() => log.info(relay.summary(), 'relay counters'), values['stats-interval'] * 1000) : undefined;
  await stopped(deps.signal);
  if (stats) clearInterval(stats);
  await relay.stop();
  out.write(`${JSON.stringify(relay.counters())}\n`);
  return 0;
}

/** Resolves on SIGINT/SIGTERM or when `signal` aborts. */
function stopped(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    if (signal?.aborted) return resolve();
    signal?.addEventListener('abort', done);
    if (!signal) {
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    }
  });
}

const USAGE = `usage: iolus relay --group <g> --listen <host:port> --to <host:port> [options]

  plain RTP/RTCP in on --listen (loopback), SRTP out to --to, following key rollovers
  --decrypt             the reverse: SRTP in on --listen, plain RTP out to --to (loopback)
  --rtcp-to host:port   send RTCP here instead of --to
  --profile P           AES_CM_128_HMAC_SHA1_80 (default) or AEAD_AES_128_GCM
  --mki                 4-byte MKI (the epoch) in every packet
  --replay-window N     replay window per SSRC per key (default 128)
  --stats-interval S    log counters every S seconds (default 0: only at exit)

example: iolus relay --group media --listen 127.0.0.1:5004 --to 203.0.113.7:5004 --mki
`;
