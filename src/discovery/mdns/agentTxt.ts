/**
 * The TXT record of an Iolus agent's `_iolus._tcp` service (paper §8.3; DESIGN.md "Discovery"):
 *
 *   txtvers=1  group=<global group name>  role=controller|intermediary  level=<depth>  fp=<sha256>
 *
 * `level` is the agent's depth in the tree (controller 0). `fp` is the SHA-256 of the agent's
 * certificate (DER), lower-case hex: a hint only, the member still checks the certificate.
 */
import { z } from 'zod';
import { ValidationError } from '../../errors.js';
import { encodeTxt, type TxtAttributes } from './txt.js';

/** RFC 6763 §6.7: version the TXT schema, first key. */
export const AGENT_TXT_VERSION = '1';

export const AgentRole = z.enum(['controller', 'intermediary']);
export type AgentRole = z.infer<typeof AgentRole>;

/** 64 hex digits; accepts `AB:CD:…` (openssl's form) and normalizes to lower-case without colons. */
export const Fingerprint = z
  .string()
  .transform((s) => s.replace(/:/g, '').toLowerCase())
  .pipe(z.string().regex(/^[0-9a-f]{64}$/, 'expected a SHA-256 fingerprint: 64 hex digits'));

// "group=" plus the name must fit one 255-byte TXT string (RFC 6763 §6.1).
export const GroupName = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s, 'utf8') <= 200, 'at most 200 bytes of UTF-8')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'no control characters');

export const AgentTxt = z.object({
  group: GroupName,
  role: AgentRole,
  level: z.number().int().min(0).max(255),
  fingerprint: Fingerprint,
});
export type AgentTxt = z.infer<typeof AgentTxt>;

/** TXT strings for an agent, `txtvers` first (RFC 6763 §6.7). */
export function formatAgentTxt(agent: AgentTxt): Buffer[] {
  const a = checkAgentTxt(agent);
  return encodeTxt([
    ['txtvers', AGENT_TXT_VERSION],
    ['group', a.group],
    ['role', a.role],
    ['level', String(a.level)],
    ['fp', a.fingerprint],
  ]);
}

const Incoming = z.object({
  txtvers: z.literal(AGENT_TXT_VERSION),
  group: GroupName,
  role: AgentRole,
  level: z.string().regex(/^\d{1,3}$/, 'a decimal depth').transform(Number).pipe(z.number().max(255)),
  fp: Fingerprint,
});

export type AgentTxtResult = { ok: true; value: AgentTxt } | { ok: false; reason: string };

/**
 * Reads agent attributes from decoded TXT attributes (see txt.ts). Data from the network: never
 * throws, returns why it was refused (unknown `txtvers`, missing or malformed key).
 */
export function parseAgentTxt(attributes: TxtAttributes): AgentTxtResult {
  const plain: Record<string, unknown> = {};
  for (const [k, v] of attributes) plain[k] = v === true ? undefined : v;
  const r = Incoming.safeParse(plain);
  if (!r.success) {
    return { ok: false, reason: r.error.issues.map((i) => `${i.path.join('.') || 'txt'}: ${i.message}`).join('; ') };
  }
  const { group, role, level, fp } = r.data;
  return { ok: true, value: { group, role, level, fingerprint: fp } };
}

/** Like parseAgentTxt for our own configuration: throws ValidationError naming each field. */
export function checkAgentTxt(agent: unknown): AgentTxt {
  const r = AgentTxt.safeParse(agent);
  if (!r.success) throw new ValidationError('mdns.agentTxt', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  return r.data;
}
