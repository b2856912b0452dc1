/**
 * The relay's configuration, as the CLI flags spell it, checked by zod: every problem names
 * its flag. Plain RTP must not leave the host, so the plain side (--listen when encrypting,
 * --to/--rtcp-to when decrypting) has to be a loopback address.
 */
import { z } from 'zod';
import { groupNameSchema } from '../../pki/names.js';
import { MAX_REPLAY_WINDOW } from '../srtp/replayWindow.js';
import { SRTP_PROFILE_NAMES } from '../srtp/profile.js';
import { hostPortSchema, isLoopback, type HostPort } from './address.js';
import type { RelayInit } from './relay.js';

const required = (what: string) => (issue: { input: unknown }) => (issue.input === undefined ? `required (${what})` : undefined);

export const relayFlagsSchema = z
  .object({
    group: z.string({ error: required('the group name') }).pipe(groupNameSchema),
    listen: z.string({ error: required('host:port to receive on') }).pipe(hostPortSchema({ allowAnyPort: true })),
    to: z.string({ error: required('host:port to send to') }).pipe(hostPortSchema()),
    'rtcp-to': hostPortSchema().optional(),
    decrypt: z.boolean().default(false),
    profile: z
      .enum(SRTP_PROFILE_NAMES, { error: (i) => `must be one of ${SRTP_PROFILE_NAMES.join(', ')}, got ${JSON.stringify(i.input)}` })
      .default('AES_CM_128_HMAC_SHA1_80'),
    mki: z.boolean().default(false),
    'replay-window': z
      .string()
      .regex(/^\d+$/, { error: 'must be a whole number of packets' })
      .transform(Number)
      .pipe(z.number().int().min(64, { error: 'must be at least 64 (RFC 3711 §3.3.2)' }).max(MAX_REPLAY_WINDOW).multipleOf(32, { error: 'must be a multiple of 32' }))
      .optional(),
    'stats-interval': z
      .string()
      .regex(/^\d+$/, { error: 'must be a whole number of seconds' })
      .transform(Number)
      .pipe(z.number().int().max(86400))
      .default(0),
  })
  .superRefine((v, ctx) => {
    const plain: [string, HostPort | undefined][] = v.decrypt ? [['to', v.to], ['rtcp-to', v['rtcp-to']]] : [['listen', v.listen]];
    for (const [flag, a] of plain) {
      if (a && !isLoopback(a.host)) {
        ctx.addIssue({ code: 'custom', path: [flag], message: `plain RTP stays on this host: use a loopback address (127.0.0.1, ::1 or localhost), got ${a.host}` });
      }
    }
  });

export type RelayFlags = z.infer<typeof relayFlagsSchema>;

/** parseArgs options matching relayFlagsSchema. */
export const RELAY_PARSE_OPTIONS = {
  group: { type: 'string' },
  listen: { type: 'string' },
  to: { type: 'string' },
  'rtcp-to': { type: 'string' },
  decrypt: { type: 'boolean' },
  profile: { type: 'string' },
  mki: { type: 'boolean' },
  'replay-window': { type: 'string' },
  'stats-interval': { type: 'string' },
} as const;

export function relayInitFromFlags(f: RelayFlags): RelayInit {
  return {
    mode: f.decrypt ? 'decrypt' : 'encrypt',
    listen: f.listen,
    to: f.to,
    ...(f['rtcp-to'] ? { rtcpTo: f['rtcp-to'] } : {}),
    profile: f.profile,
    mki: f.mki,
    ...(f['replay-window'] !== undefined ? { replayWindowSize: f['replay-window'] } : {}),
  };
}
