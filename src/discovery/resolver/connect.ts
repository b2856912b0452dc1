/**
 * Joining a group by its global name (paper §8.3): resolve the local agent, join it, and when it
 * goes (its goodbye, the directory dropping it, or it stops answering) resolve again and rejoin
 * at the next best one. A newcomer needs only the group name and its certificate.
 *
 *   const resolver = new AgentResolver({ group: 'g1', mdns: {}, directory: { url } }, { tls });
 *   await resolver.start();
 *   const { client, resolution } = await connectByName({ group: 'g1', tls }, resolver);
 */
import { GroupClient, type ConnectOptions } from '../../client/client.js';
import type { AgentResolver, Resolution } from './resolver.js';

export interface Joined {
  client: GroupClient;
  /** Where the first join went (the newest is on `client.control.url`). */
  resolution: Resolution;
}

/**
 * `connect` makes the client (GroupClient.connect by default; an originator passes its own).
 * With an explicit URL nothing is watched and nothing re-resolved: the user chose the agent.
 */
export async function connectByName(
  opts: Omit<ConnectOptions, 'agent' | 'relocate'>,
  resolver: AgentResolver,
  connect: (o: ConnectOptions) => Promise<GroupClient> = (o) => GroupClient.connect(o),
): Promise<Joined> {
  const first = await resolver.resolve();
  if (first.source === 'explicit') return { client: await connect({ ...opts, agent: first.url }), resolution: first };

  let client: GroupClient | undefined;
  let unwatch: () => void = () => undefined;
  const follow = (r: Resolution) => {
    unwatch();
    unwatch = resolver.watch(r, (why) => client?.agentGone(why));
  };
  const relocate = async (_why: string): Promise<string> => {
    unwatch();
    const r = await resolver.resolve();
    follow(r);
    return r.url;
  };
  client = await connect({ ...opts, agent: first.url, relocate });
  follow(first);
  client.on('state', (s: string) => {
    if (s === 'left' || s === 'removed' || s === 'ended') unwatch();
  });
  return { client, resolution: first };
}
