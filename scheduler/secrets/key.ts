/**
 * The secrets key: 32 random bytes in `<dataDir>/scheduler/secrets.key`,
 * created on first use with mode 0600 in a 0700 folder, and refused when
 * anyone but the owner may read it (as the CA refuses an exposed key).
 * Standby schedulers need the same file: copy it when adding one.
 */
import { randomBytes } from 'node:crypto';
import { type Stats, chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../../base/errors.js';
import { KEY_BYTES } from './cipher.js';

/** Folder under the data directory, and the key's file name in it. */
export const SCHEDULER_DIR = 'scheduler';
export const SECRETS_KEY_FILE = 'secrets.key';

/** The key file's path for a data directory. */
export function secretsKeyPath(dataDir: string): string {
  return join(dataDir, SCHEDULER_DIR, SECRETS_KEY_FILE);
}

/** Loads the key, creating it when absent. Throws WEFT_ERR_SECRET_KEY naming the file. */
export function loadOrCreateKey(dataDir: string): Buffer {
  const file = secretsKeyPath(dataDir);
  let stat: Stats | undefined;
  try {
    stat = statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw keyError(file, (err as Error).message, err);
  }
  if (stat === undefined) {
    try {
      mkdirSync(join(dataDir, SCHEDULER_DIR), { recursive: true, mode: 0o700 });
      const key = randomBytes(KEY_BYTES);
      // 'wx': never overwrite a key another process wrote meanwhile (that would orphan every secret).
      writeFileSync(file, key.toString('base64'), { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw keyError(file, (err as Error).message, err);
      return loadOrCreateKey(dataDir);
    }
  }
  if ((stat.mode & 0o077) !== 0) throw keyError(file, `mode ${(stat.mode & 0o777).toString(8)} lets others read it (chmod 600)`);
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw keyError(file, `holds ${key.length} bytes, not ${KEY_BYTES}`);
  return key;
}

function keyError(file: string, reason: string, cause?: unknown): WeftError {
  return new WeftError('WEFT_ERR_SECRET_KEY', `secrets key ${file}: ${reason}`, { key: 'secretsKey', value: file, cause });
}
