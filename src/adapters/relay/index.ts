/** The hitless SRTP relay: plain RTP on localhost in, SRTP out, and back. */
export { SrtpRelay, type RelayInit, type RelayComponents, type RelayMode } from './relay.js';
export { RELAY_DROP_CAUSES, type RelayCounters, type RelayDropCause } from './counters.js';
export { parseHostPort, hostPortSchema, isLoopback, formatHostPort, type HostPort } from './address.js';
export { relayFlagsSchema, relayInitFromFlags, RELAY_PARSE_OPTIONS, type RelayFlags } from './options.js';
