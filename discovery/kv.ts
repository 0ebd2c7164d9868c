/**
 * JSON documents in Consul KV under `weft/` (jobs, allocations, splits,
 * intentions, the CA bundle). Every read carries its ModifyIndex so writers can
 * check-and-set; `update` retries a read-modify-write on CAS conflicts, and
 * `fencedPutJSON` only writes while a session still holds a lock.
 */
import type { GetItem } from 'consul/lib/kv.js';
import { type Backoff, sleepBackoff } from '../base/backoff.js';
import type { Random, Timers } from '../base/clock.js';
import { invalid, WeftError } from '../base/errors.js';
import type { DiscoveryClient } from './client.js';

/** Everything weft keeps in KV lives below this prefix. */
export const KV_ROOT = 'weft/';

/** How many times `update` re-reads and retries after losing a CAS race. */
export const DEFAULT_CAS_ATTEMPTS = 8;

/**
 * The wait between CAS attempts: full jitter below a ceiling of 10 ms doubling
 * to 200 ms, so two writers that collided do not collide again in lockstep
 * (full rather than equal: the spread matters here, not a floor).
 */
export const CAS_BACKOFF: Backoff = { baseMs: 10, maxMs: 200, jitter: 'full' };

/** A raw KV entry. `session` is the lock holder, when a session holds the key. */
export interface KvEntry {
  key: string;
  value: string | null;
  createIndex: number;
  modifyIndex: number;
  lockIndex: number;
  flags: number;
  session: string | undefined;
}

/** A decoded document with the index to CAS against. */
export interface Versioned<T> {
  key: string;
  value: T;
  modifyIndex: number;
}

/** Turns a value read from KV into T, throwing when it is not one (an ajv/TypeBox check fits here). */
export type Decoder<T> = (value: unknown) => T;

/**
 * Checks that a key (or a prefix, which may end in `/`) is under weft/ and has
 * no empty segments: a service name with a stray slash must not write elsewhere.
 */
export function checkKey(key: string, opts: { prefix?: boolean } = {}): string {
  const body = opts.prefix === true && key.endsWith('/') ? key.slice(0, -1) : key;
  if (!key.startsWith(KV_ROOT) || body.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw invalid('WEFT_ERR_KV_KEY_INVALID', 'key', key, `must be under ${KV_ROOT} with non-empty segments`);
  }
  return key;
}

/** Converts node-consul's item (whose type omits Session) into a KvEntry. */
export function toKvEntry(item: GetItem & { Session?: string }): KvEntry {
  return {
    key: item.Key,
    value: item.Value ?? null,
    createIndex: item.CreateIndex,
    modifyIndex: item.ModifyIndex,
    lockIndex: item.LockIndex,
    flags: item.Flags,
    session: item.Session === undefined || item.Session === '' ? undefined : item.Session,
  };
}

/** Parses an entry's JSON value; WEFT_ERR_KV_VALUE_INVALID names the key when it is not JSON or not a T. */
export function decodeEntry<T>(entry: KvEntry, decode?: Decoder<T>): Versioned<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.value ?? '');
  } catch (cause) {
    throw new WeftError('WEFT_ERR_KV_VALUE_INVALID', `${entry.key}: not JSON (${(cause as Error).message})`, {
      key: entry.key,
      value: entry.value,
      cause,
    });
  }
  let value: T;
  try {
    value = decode === undefined ? (parsed as T) : decode(parsed);
  } catch (cause) {
    if (cause instanceof WeftError) throw cause;
    throw new WeftError('WEFT_ERR_KV_VALUE_INVALID', `${entry.key}: ${(cause as Error).message}`, { key: entry.key, value: parsed, cause });
  }
  return { key: entry.key, value, modifyIndex: entry.modifyIndex };
}

/** Reads a raw entry; undefined when the key does not exist. */
export async function getEntry(client: DiscoveryClient, key: string): Promise<KvEntry | undefined> {
  checkKey(key);
  const item = await client.call('kv.get', (c) => c.kv.get({ key }));
  return item === null || item === undefined ? undefined : toKvEntry(item);
}

/** Reads a JSON document with its ModifyIndex; undefined when absent. */
export async function getJSON<T>(client: DiscoveryClient, key: string, decode?: Decoder<T>): Promise<Versioned<T> | undefined> {
  const entry = await getEntry(client, key);
  return entry === undefined ? undefined : decodeEntry(entry, decode);
}

/**
 * Writes a JSON document. With `cas`, writes only if the key's ModifyIndex
 * still equals it (0: only if absent) and returns false when another writer won.
 */
export async function putJSON(client: DiscoveryClient, key: string, value: unknown, opts: { cas?: number } = {}): Promise<boolean> {
  checkKey(key);
  const body = JSON.stringify(value);
  const set = opts.cas === undefined ? { key, value: body } : { key, value: body, cas: opts.cas };
  // node-consul (papi) resolves a `false` answer as undefined: only `true` means written.
  return (await client.call('kv.set', (c) => c.kv.set(set))) === true;
}

/**
 * Read-modify-write with check-and-set. `fn` gets the current value (undefined
 * when absent) and returns the new one, or undefined to leave the key as is.
 * Lost races re-read and retry up to `maxAttempts` times, then throw
 * WEFT_ERR_KV_CAS_CONFLICT. Returns what is stored afterwards. Between
 * attempts it waits CAS_BACKOFF, drawn from `random` and armed on `timers`
 * (base/clock.ts defaults; tests inject their own).
 */
export async function update<T>(
  client: DiscoveryClient,
  key: string,
  fn: (current: T | undefined) => T | undefined | Promise<T | undefined>,
  opts: { maxAttempts?: number; decode?: Decoder<T>; random?: Random; timers?: Timers } = {},
): Promise<Versioned<T> | undefined> {
  const maxAttempts = opts.maxAttempts ?? DEFAULT_CAS_ATTEMPTS;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const current = await getJSON(client, key, opts.decode);
    const next = await fn(current?.value);
    if (next === undefined) return current;
    if (await putJSON(client, key, next, { cas: current?.modifyIndex ?? 0 })) {
      // The write's own index is not returned by Consul; re-read so callers can chain CAS writes.
      return (await getJSON(client, key, opts.decode)) ?? { key, value: next, modifyIndex: 0 };
    }
    client.logger.debug({ key, attempt }, 'CAS conflict, retrying');
    if (attempt < maxAttempts) await sleepBackoff(attempt, CAS_BACKOFF, { random: opts.random, timers: opts.timers });
  }
  throw new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `${key}: lost ${maxAttempts} check-and-set attempts to concurrent writers`, {
    key,
    value: maxAttempts,
  });
}

/** Deletes a key (or, with `recurse`, a prefix). With `cas`, only if unchanged; returns false then. */
export async function deleteKey(client: DiscoveryClient, key: string, opts: { cas?: number; recurse?: boolean } = {}): Promise<boolean> {
  checkKey(key, { prefix: opts.recurse === true });
  const del: { key: string; cas?: number; recurse?: boolean } = { key };
  if (opts.cas !== undefined) del.cas = opts.cas;
  if (opts.recurse === true) del.recurse = true;
  return (await client.call('kv.del', (c) => c.kv.del(del))) === true; // false arrives as undefined, as for set
}

/** Raw entries under a prefix, sorted by key. */
export async function listEntries(client: DiscoveryClient, prefix: string): Promise<KvEntry[]> {
  checkKey(prefix, { prefix: true });
  const items = await client.call('kv.get', (c) => c.kv.get({ key: prefix, recurse: true }));
  const list = items === null || items === undefined ? [] : Array.isArray(items) ? items : [items];
  return list.map(toKvEntry).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** JSON documents under a prefix, sorted by key. Folder placeholders (`weft/x/` with no value) are skipped. */
export async function list<T>(client: DiscoveryClient, prefix: string, decode?: Decoder<T>): Promise<Array<Versioned<T>>> {
  const entries = await listEntries(client, prefix);
  return entries.filter((e) => !(e.key.endsWith('/') && (e.value === null || e.value === ''))).map((e) => decodeEntry(e, decode));
}

/** A held lock to fence writes with: the lock's key and the holding session. */
export interface Fence {
  key: string;
  session: string;
}

/**
 * One operation of a fenced transaction, values as JSON. `cas` sets only if the
 * key's modify index is still `index` (0: only if absent); `check-index` writes
 * nothing and fails the batch unless the key exists with that index.
 */
export type TxnOp =
  | { verb: 'set'; key: string; value: unknown }
  | { verb: 'cas'; key: string; value: unknown; index: number }
  | { verb: 'check-index'; key: string; index: number }
  | { verb: 'delete'; key: string }
  | { verb: 'delete-tree'; key: string };

/** Consul allows 64 operations per transaction; one is the session check. */
export const FENCED_TXN_MAX_OPS = 63;

/**
 * Applies `ops` in transactions of at most 63, each preceded by a check that
 * `fence.session` still holds `fence.key`, so a deposed leader cannot overwrite
 * its successor. Throws WEFT_ERR_LOCK_LOST (and stops) at the first refused
 * batch; a `cas` or `check-index` op whose key changed (or went) fails its
 * batch with WEFT_ERR_KV_CAS_CONFLICT naming the key.
 */
export async function fencedTxn(client: DiscoveryClient, fence: Fence, ops: readonly TxnOp[]): Promise<void> {
  for (let i = 0; i < ops.length; i += FENCED_TXN_MAX_OPS) {
    const slice = ops.slice(i, i + FENCED_TXN_MAX_OPS);
    const batch = slice.map((op) => {
      checkKey(op.key, { prefix: op.verb === 'delete-tree' });
      const json = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');
      if (op.verb === 'set') return { KV: { Verb: 'set', Key: op.key, Value: json(op.value) } };
      if (op.verb === 'cas') return { KV: { Verb: 'cas', Key: op.key, Value: json(op.value), Index: op.index } };
      if (op.verb === 'check-index') return { KV: { Verb: 'check-index', Key: op.key, Index: op.index } };
      return { KV: { Verb: op.verb, Key: op.key } };
    });
    // node-consul sends the operations as they are; its types describe a shape Consul does not accept.
    const txn = [{ KV: { Verb: 'check-session', Key: fence.key, Session: fence.session } }, ...batch] as never;
    try {
      await client.consul.transaction.create(txn);
    } catch (err) {
      const res = (err as { response?: { statusCode?: number; body?: { Errors?: Array<{ OpIndex?: number; What?: string }> | null } } }).response;
      const failed = res?.statusCode === 409 ? res.body?.Errors?.[0] : undefined;
      if (failed?.OpIndex === 0) {
        throw new WeftError('WEFT_ERR_LOCK_LOST', `${fence.key}: session ${fence.session} no longer holds the lock (${failed.What ?? 'check-session failed'})`, {
          key: fence.key,
          value: fence.session,
          cause: err,
        });
      }
      const op = failed?.OpIndex === undefined ? undefined : slice[failed.OpIndex - 1];
      if (op?.verb === 'cas' || op?.verb === 'check-index') {
        throw new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `${op.key}: ModifyIndex is no longer ${op.index} (${failed?.What ?? 'cas failed'})`, {
          key: op.key,
          value: op.index,
          cause: err,
        });
      }
      throw client.wrap(err, 'txn');
    }
  }
}

/**
 * Writes one JSON document fenced by the lock (see fencedTxn); with `cas`, only
 * if the key's ModifyIndex is still that.
 */
export async function fencedPutJSON(client: DiscoveryClient, fence: Fence, key: string, value: unknown, opts: { cas?: number } = {}): Promise<void> {
  await fencedTxn(client, fence, [opts.cas === undefined ? { verb: 'set', key, value } : { verb: 'cas', key, value, index: opts.cas }]);
}
