/**
 * Global group name → the member's local agent (paper §8.3): explicit URL, then mDNS, then the
 * directory; every hint proves itself by its certificate before it is used; the client follows
 * its agent's departure to the next best one.
 *
 *   const resolver = new AgentResolver({ group: 'g1', mdns: { interfaces: ['eth0'] }, directory: { url } }, { tls });
 *   await resolver.start();
 *   const r = await resolver.resolve();          // { url, source: 'mdns', refused: [...] }
 *   const { client } = await connectByName({ group: 'g1', tls }, resolver);
 */
export { AgentResolver, NoAgentError, type Resolution, type Refusal, type ResolverOptions, type ResolverComponents, type BrowserLike, type DirectoryLike } from './resolver.js';
export { connectByName, type Joined } from './connect.js';
export { tlsVerifier, type Verifier, type Verdict, type VerifyTarget } from './verify.js';
export { fromMdns, fromDirectory, type Candidate, type Source } from './candidates.js';
export { RESOLVE_FLAG_OPTIONS, ResolveFlagsShape, resolverFromFlags, RESOLVE_USAGE, type ResolveFlags } from './flags.js';
