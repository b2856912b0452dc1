/**
 * Public descriptions of Iolus groups in SDP (RFC 8866), for SAP announcements: the group's
 * name and how to reach its agents, never a key (no k= line, no key attribute; the group key
 * only ever travels inside the tree, paper §6). One session per group; one media description
 * per agent, its control plane:
 *
 *   v=0
 *   o=- <sess-id> <sess-version> IN IP4 <directory address>
 *   s=<group>
 *   i=Iolus secure group <group>: join through one of its agents (HTTPS with mutual TLS)
 *   t=0 0
 *   a=tool:iolus-directory
 *   a=x-iolus-group:<group>
 *   m=application <port> TCP/TLS iolus          one per agent (RFC 4145 proto)
 *   c=IN IP4 <agent address>
 *   a=setup:passive                             the agent accepts connections (RFC 4145 §4)
 *   a=fingerprint:sha-256 AB:CD:…               its certificate (RFC 8122 §5)
 *   a=x-iolus-url:https://<host>:<port>
 *   a=x-iolus-agent:<principal> <role> <level>
 *   a=x-iolus-site:<site>                       when known
 */
import { isIPv6 } from 'node:net';
import { CodecError } from '../../errors.js';

export interface AgentDescription {
  principal: string;
  role: 'controller' | 'intermediary';
  level: number;
  url: string;
  /** SHA-256 of its certificate, lower-case hex. */
  fingerprint: string;
  site?: string | undefined;
}

export interface GroupDescription {
  group: string;
  /** Numeric session id (stable per group). */
  sessionId: string;
  /** Numeric version (grows on every change). */
  version: string;
  /** The directory's address (o= line). */
  origin: string;
  agents: AgentDescription[];
  /** Agents registered in all, when `agents` had to be cut to fit one packet. */
  total?: number;
}

/** Fields that go into SDP lines: no white space (they are space-separated fields), no NUL. */
const SAFE_FIELD = /^[^\s\0]+$/;

/** The o= line of a description (what a SAP deletion carries, RFC 2974 §6). */
export function originLine(d: Pick<GroupDescription, 'sessionId' | 'version' | 'origin'>): string {
  return `o=- ${d.sessionId} ${d.version} IN ${isIPv6(d.origin) ? 'IP6' : 'IP4'} ${d.origin}`;
}

/** RFC 8122 §5: upper-case hex pairs joined by colons. */
export function sdpFingerprint(hex: string): string {
  return hex.toUpperCase().match(/../g)?.join(':') ?? '';
}

function agentLines(a: AgentDescription): string[] {
  const u = new URL(a.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port === '' ? 443 : Number(u.port);
  const lines = [
    `m=application ${port} TCP/TLS iolus`,
    `c=IN ${isIPv6(host) ? 'IP6' : 'IP4'} ${host}`,
    'a=setup:passive',
    `a=fingerprint:sha-256 ${sdpFingerprint(a.fingerprint)}`,
    `a=x-iolus-url:${a.url}`,
    `a=x-iolus-agent:${a.principal} ${a.role} ${a.level}`,
  ];
  if (a.site) lines.push(`a=x-iolus-site:${a.site}`);
  return lines;
}

/**
 * The SDP text of a group, CRLF line ends (RFC 8866 §5). With `maxBytes`, only as many agents as
 * fit (in the given order: put the best first) and `a=x-iolus-agents:<total>` says how many exist.
 */
export function formatGroupDescription(d: GroupDescription, maxBytes = Infinity): string {
  for (const v of [d.group, d.origin, ...d.agents.flatMap((a) => [a.principal, a.url, ...(a.site ? [a.site] : [])])]) {
    if (!SAFE_FIELD.test(v)) throw new CodecError('sdp.text', `${JSON.stringify(v)}: SDP fields have no white space or NUL`);
  }
  if (!/^\d{1,20}$/.test(d.sessionId) || !/^\d{1,20}$/.test(d.version)) throw new CodecError('sdp.origin', 'session id and version must be decimal numbers');
  const head = [
    'v=0',
    originLine(d),
    `s=${d.group}`,
    `i=Iolus secure group ${d.group}: join through one of its agents (HTTPS with mutual TLS)`,
    't=0 0',
    'a=tool:iolus-directory',
    `a=x-iolus-group:${d.group}`,
  ];
  const total = d.total ?? d.agents.length;
  const text = (lines: string[]) => `${lines.join('\r\n')}\r\n`;
  let agents = d.agents.map(agentLines);
  for (;;) {
    const lines = [...head, ...(agents.length < total ? [`a=x-iolus-agents:${total}`] : []), ...agents.flat()];
    const out = text(lines);
    if (Buffer.byteLength(out) <= maxBytes || agents.length === 0) return out;
    agents = agents.slice(0, -1);
  }
}

export interface SdpMedia {
  media: string;
  port: number;
  proto: string;
  formats: string[];
  connection?: string;
  attributes: string[];
}

export interface SdpSession {
  version: string;
  origin: { username: string; sessionId: string; sessionVersion: string; netType: string; addrType: string; address: string };
  name: string;
  info?: string;
  attributes: string[];
  keyLines: number;
  media: SdpMedia[];
}

/** A lenient SDP reader (CRLF or LF); CodecError when v=, o= or s= are missing or malformed. */
export function parseSdp(text: string): SdpSession {
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (lines.length > 2000) throw new CodecError('sdp.size', 'more than 2000 lines');
  let session: Partial<SdpSession> & { attributes: string[]; media: SdpMedia[]; keyLines: number } = { attributes: [], media: [], keyLines: 0 };
  let current: SdpMedia | undefined;
  for (const line of lines) {
    if (line.length < 2 || line[1] !== '=') throw new CodecError('sdp.line', `not an SDP line: ${JSON.stringify(line.slice(0, 60))}`);
    const key = line[0];
    const value = line.slice(2);
    switch (key) {
      case 'v':
        session.version = value;
        break;
      case 'o': {
        const f = value.split(' ');
        if (f.length !== 6) throw new CodecError('sdp.origin', 'o= needs six fields');
        const [username, sessionId, sessionVersion, netType, addrType, address] = f as [string, string, string, string, string, string];
        session.origin = { username, sessionId, sessionVersion, netType, addrType, address };
        break;
      }
      case 's':
        session.name = value;
        break;
      case 'i':
        if (!current) session.info = value;
        break;
      case 'k':
        session.keyLines++;
        break;
      case 'm': {
        const [media = '', port = '', proto = '', ...formats] = value.split(' ');
        current = { media, port: Number(port.split('/')[0]), proto, formats, attributes: [] };
        session.media.push(current);
        break;
      }
      case 'c':
        if (current) current.connection = value;
        break;
      case 'a':
        (current ? current.attributes : session.attributes).push(value);
        break;
      default:
        break;
    }
  }
  if (session.version !== '0') throw new CodecError('sdp.version', 'v=0 missing');
  if (!session.origin) throw new CodecError('sdp.origin', 'o= missing');
  if (session.name === undefined || session.name === '') throw new CodecError('sdp.name', 's= missing');
  return session as SdpSession;
}

/** The Iolus group a session describes, with its agents; undefined if it is not ours. */
export function readGroupDescription(s: SdpSession): { group: string; agents: Omit<AgentDescription, 'fingerprint'>[]; total: number } | undefined {
  const attr = (list: string[], name: string) => list.find((a) => a.startsWith(`${name}:`))?.slice(name.length + 1);
  const group = attr(s.attributes, 'x-iolus-group');
  if (group === undefined) return undefined;
  const agents: Omit<AgentDescription, 'fingerprint'>[] = [];
  for (const m of s.media) {
    const url = attr(m.attributes, 'x-iolus-url');
    const [principal = '', role, level] = (attr(m.attributes, 'x-iolus-agent') ?? '').split(' ');
    if (!url || (role !== 'controller' && role !== 'intermediary')) continue;
    const site = attr(m.attributes, 'x-iolus-site');
    agents.push({ principal, role, level: Number(level), url, ...(site ? { site } : {}) });
  }
  const total = Number(attr(s.attributes, 'x-iolus-agents') ?? agents.length);
  return { group, agents, total };
}
