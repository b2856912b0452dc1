/**
 * The directory service (paper §8.3): agents register the groups they serve (soft state, TTL,
 * refresh, unregister); members look a global group name up and get its agents nearest first;
 * an sd-style view lists groups; SAP announces them (../sap).
 *
 *   const trust = GroupTrust.fromFiles(config.groups);
 *   const dir = await DirectoryServer.start({ config, tls: { cert, key }, trust });
 *   const client = new DirectoryClient({ url: dir.url, ca, cert, key });
 *   await client.register('g1', { url: 'https://10.0.0.2:7443', level: 1, ttl: 30 });
 *   const { agents } = await client.lookup('g1');      // nearest first
 *   await dir.stop();
 */
export { DirectoryServer, type DirectoryInit, type DirectoryDeps } from './server.js';
export { DirectoryClient, DirectoryError, type DirectoryClientOptions } from './client.js';
export { DirectoryConfig, SapConfig, loadDirectoryConfig, parseDirectoryConfig, type DirectoryConfigInput } from './config.js';
export { GroupTrust, type Caller, type GroupCaEntry } from './trust.js';
export { Registry, type Registration, type RegistrationInput, type RegistryChange } from './registry.js';
export { rankAgents, SiteMap, tierOf, type Tier, type Asker, type Placed } from './locality.js';
export { parseIp, parseCidr, sharePrefix, formatIp } from './prefix.js';
export * from './api.js';
