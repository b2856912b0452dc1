/** Loads the known-answer vectors in fixtures/vectors (typed from the RFCs, checked against OpenSSL). */
import { readFileSync } from 'node:fs';
import { fromHex } from '../../src/crypto/bytes.js';

export function loadVectors<T>(file: string): { source: string; cases: T[] } {
  return JSON.parse(readFileSync(new URL(`../../fixtures/vectors/${file}`, import.meta.url), 'utf8')) as { source: string; cases: T[] };
}

export const h = fromHex;
