/**
 * Where the group PKI lives on disk and how its files are written:
 *
 *   <dir>/ca.crt, <dir>/ca.key                 the group CA
 *   <dir>/issued/<name>.crt, <name>.key        one pair per principal
 *
 * Keys are PKCS#8 PEM, mode 0600, in directories of mode 0700. Every write goes to a
 * temporary file first, so a reader never sees half a file.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError, ValidationError } from '../errors.js';
import { checkName } from './names.js';

export interface CaFiles {
  readonly cert: string;
  readonly key: string;
}

/** The three files a principal needs for mutual TLS. */
export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export const ISSUED_DIR = 'issued';

export function caFiles(dir: string): CaFiles {
  return { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

/** Paths of a principal's certificate and key; `name` must be a valid principal name. */
export function issuedFiles(dir: string, name: string): CaFiles {
  checkName('name', name);
  return { cert: join(dir, ISSUED_DIR, `${name}.crt`), key: join(dir, ISSUED_DIR, `${name}.key`) };
}

/** CA certificate plus the principal's pair, as `tlsOptions.loadTlsMaterial` wants them. */
export function tlsFiles(dir: string, name: string): TlsFiles {
  const own = issuedFiles(dir, name);
  return { ca: caFiles(dir).cert, cert: own.cert, key: own.key };
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Writes `data` to `path` through a temporary file. `secret` makes it 0600 (else 0644).
 * `exclusive` refuses (UsageError `pki.exists`) if `path` already exists, atomically.
 */
export async function writeFileSafely(
  path: string,
  data: string,
  { secret, exclusive }: { secret: boolean; exclusive: boolean },
): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode: secret ? 0o600 : 0o644, flag: 'wx' });
  try {
    if (exclusive) {
      try {
        await link(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
          throw new UsageError('pki.exists', `${path} already exists`);
        }
        throw err;
      }
      await unlink(tmp);
    } else {
      await rename(tmp, path);
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Reads a PEM file; a missing or unreadable file is a ValidationError naming it and `what` it should hold. */
export async function readPemFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((err as Error).message);
    throw new ValidationError('pki.file', `${path}: cannot read ${what}: ${why}`, { cause: err });
  }
}
