/**
 * `weft secret set|list|rm`: secrets sealed under the scheduler's key in KV
 * `weft/secrets/<name>`. The store speaks to KV through a tiny interface the
 * edge implements with discovery/kv.ts, so this file stays testable. Listing
 * returns names and times, never values; values leave only through `reveal`,
 * which the scheduler calls when it hands a task its secrets.
 */
import { Value } from '@sinclair/typebox/value';
import { invalid, WeftError } from '../../base/errors.js';
import { SECRET_NAME_PATTERN } from '../spec/schema.js';
import { open, type SealedSecret, SealedSecretSchema, seal } from './cipher.js';

/** KV prefix of sealed secrets. */
export const SECRETS_PREFIX = 'weft/secrets/';
/** Largest value accepted (Consul's KV limit is 512 KiB; secrets are small). */
export const MAX_SECRET_BYTES = 64 * 1024;

const NAME = new RegExp(SECRET_NAME_PATTERN);

/** What the store needs from KV (JSON documents by key). */
export interface SecretKv {
  get(key: string): Promise<unknown | undefined>;
  put(key: string, value: unknown): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** Keys and values under a prefix. */
  list(prefix: string): Promise<Array<{ key: string; value: unknown }>>;
}

/** A secret as listed: no value. */
export interface SecretInfo {
  name: string;
  updatedAt: string;
}

/** Sealed secrets in KV. */
export class SecretStore {
  private readonly kv: SecretKv;
  private readonly key: Buffer;

  constructor(kv: SecretKv, key: Buffer) {
    this.kv = kv;
    this.key = key;
  }

  /** Stores (or replaces) a secret. */
  async set(name: string, value: string): Promise<SecretInfo> {
    checkName(name);
    if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) {
      // The value itself never goes into an error.
      throw new WeftError('WEFT_ERR_SECRET_INVALID', `secret ${name}: value is larger than ${MAX_SECRET_BYTES} bytes`, { key: name });
    }
    const sealed = seal(this.key, name, value);
    await this.kv.put(SECRETS_PREFIX + name, sealed);
    return { name, updatedAt: sealed.updatedAt };
  }

  /** Names and update times, sorted. */
  async list(): Promise<SecretInfo[]> {
    const entries = await this.kv.list(SECRETS_PREFIX);
    return entries
      .map(({ key, value }) => ({ name: key.slice(SECRETS_PREFIX.length), updatedAt: (value as Partial<SealedSecret> | null)?.updatedAt ?? '' }))
      .sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Deletes a secret; WEFT_ERR_SECRET_NOT_FOUND when there is none. */
  async remove(name: string): Promise<void> {
    checkName(name);
    if ((await this.kv.get(SECRETS_PREFIX + name)) === undefined) throw notFound(name);
    await this.kv.delete(SECRETS_PREFIX + name);
  }

  /** The plaintext, for injection into a task. */
  async reveal(name: string): Promise<string> {
    checkName(name);
    const doc = await this.kv.get(SECRETS_PREFIX + name);
    if (doc === undefined) throw notFound(name);
    if (!Value.Check(SealedSecretSchema, doc)) throw new WeftError('WEFT_ERR_KV_VALUE_INVALID', `${SECRETS_PREFIX}${name}: not a sealed secret`, { key: SECRETS_PREFIX + name });
    return open(this.key, name, doc);
  }
}

function checkName(name: string): void {
  if (!NAME.test(name)) throw invalid('WEFT_ERR_SECRET_INVALID', 'name', name, `must match ${SECRET_NAME_PATTERN}`);
}

function notFound(name: string): WeftError {
  return new WeftError('WEFT_ERR_SECRET_NOT_FOUND', `secret ${name}: not found`, { key: 'name', value: name });
}
