/** The agent side of the subgroup plane, from the keyd config (src/transport does the work). */
import { openAgentTransport } from '../transport/factory.js';
import { SseHub } from '../transport/sse.js';
import type { AgentTransport } from '../transport/types.js';
import type { Logger } from '../util/log.js';
import type { KeydConfig } from './config.js';

export async function openSubgroupTransport(c: KeydConfig, log: Logger): Promise<{ transport: AgentTransport; sse: SseHub | undefined }> {
  const t = c.subgroup.transport;
  const host = c.listen.advertiseHost ?? c.listen.host;
  const transport = openAgentTransport(
    t.kind === 'multicast'
      ? { kind: 'multicast', address: t.address, port: t.port, ttl: t.ttl, ...(t.interface ? { interface: t.interface } : {}), agentHost: host, agentPort: c.listen.datagramPort }
      : t.kind === 'unicast'
        ? { kind: 'unicast', host, port: c.listen.datagramPort }
        : { kind: 'sse', path: `/v1/groups/${c.group}/events` },
    { logger: log },
  );
  await transport.start();
  return { transport, sse: transport instanceof SseHub ? transport : undefined };
}
