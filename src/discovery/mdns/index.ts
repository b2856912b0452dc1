/**
 * mDNS / DNS-SD discovery of Iolus agents (paper §8.3): `_iolus._tcp` advertisements and the
 * querier that maps a global group name to candidate agents. Only transport.ts knows mdns-server.
 *
 *   const link = new MdnsTransport({ interfaces: ['eth0'] });
 *   await link.start();
 *   const ad = new MdnsAdvertiser({ group, role, level, fingerprint, port }, { link });
 *   await ad.start();                       // announces, answers, re-announces
 *   const browser = new MdnsBrowser({}, { link });
 *   await browser.start();
 *   const agents = await browser.resolve(group, { timeoutMs: 2000 });
 *   await ad.stop(); await browser.stop(); await link.stop();   // goodbye, sockets closed
 */
export { MdnsTransport, MDNS_PORT, type MdnsLink, type MdnsSource, type SendScope, type TransportStats, type MessageListener } from './transport.js';
export { MdnsAdvertiser, type AdvertiserStats } from './advertiser.js';
export { MdnsBrowser, type BrowserStats } from './browser.js';
export type { AgentCandidate, ServiceInstance } from './instances.js';
export type { MdnsInterface } from './interfaces.js';
export { AgentRole, parseAgentTxt, formatAgentTxt, type AgentTxt } from './agentTxt.js';
export { IOLUS_SERVICE_TYPE } from './names.js';
export type { AdvertiserConfigInput, BrowserConfigInput, TransportConfigInput, BrowseOptions, ResolveOptions } from './config.js';
