/**
 * A member's way onto its subgroup plane, whatever the transport (src/transport): a unicast
 * socket is bound before the JOIN (its endpoint goes in the request, for fan-out), and once the
 * grant names the transport, the member side for it is opened and started. SSE members read and
 * post through the control-plane client, with their member id added to every path.
 */
import { openMemberTransport } from '../transport/factory.js';
import type { SseHttpClient } from '../transport/sse.js';
import type { MemberTransport } from '../transport/types.js';
import { UnicastMemberTransport } from '../transport/udpUnicast.js';
import type { Logger } from '../util/log.js';
import type { JoinGrant } from '../wire/control.js';
import type { ControlClient } from './controlClient.js';

export interface PreparedUplink {
  unicast: UnicastMemberTransport;
  endpoint: { host: string; port: number };
}

/** Binds the socket a unicast fan-out agent will send to; `localHost` fixes the address. */
export async function prepareUplink(towards: string, localHost: string | undefined, log: Logger): Promise<PreparedUplink> {
  const unicast = new UnicastMemberTransport({ towards, ...(localHost ? { localHost } : {}) }, { logger: log });
  const endpoint = await unicast.bind();
  if (!endpoint) {
    await unicast.stop();
    throw new Error(`could not bind a datagram socket towards ${towards}`);
  }
  return { unicast, endpoint };
}

function withMember(path: string, memberId: number): string {
  return `${path}${path.includes('?') ? '&' : '?'}memberId=${memberId}`;
}

/** Opens and starts the member side of the transport the grant names. */
export async function openUplinkTransport(grant: JoinGrant, pre: PreparedUplink, control: ControlClient, log: Logger): Promise<MemberTransport> {
  const sseClient: SseHttpClient = {
    stream: (path, signal) => ({
      async *[Symbol.asyncIterator]() {
        yield* await control.rawStream(withMember(path, grant.memberId), signal);
      },
    }),
    post: (path, body) => control.postBytes(withMember(path, grant.memberId), body),
  };
  const t = openMemberTransport(grant.transport, { unicast: pre.unicast, sseClient, logger: log });
  if (t !== pre.unicast) await pre.unicast.stop();
  try {
    await t.start();
  } catch (err) {
    await t.stop();
    throw err;
  }
  return t;
}
