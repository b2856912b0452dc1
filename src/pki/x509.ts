/**
 * The one place that loads @peculiar/x509: it needs `reflect-metadata` before it and a
 * WebCrypto provider (Node's). Every other pki module imports `x509` from here.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };

/** ECDSA over P-256 with SHA-256: every key and signature in the group PKI. */
export const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Clock skew we tolerate: certificates are valid from five minutes before issuance. */
export const BACKDATE_MS = 5 * 60_000;

export const DAY_MS = 86_400_000;
