/**
 * KV operations with Consul's semantics (agent/consul/state/kvs.go), shared
 * by /v1/kv and /v1/txn: set, check-and-set, lock (acquire), unlock
 * (release), deletes, and the index rules blocking queries depend on.
 */
import type { Store, WriteTx } from './store.js';
import type { KvEntry } from './types.js';

/** What a write carries: the key, the new value and flags. */
export interface KvWrite {
  readonly key: string;
  readonly value: Buffer | null;
  readonly flags: number;
}

/** Raised for writes Consul refuses with an error rather than `false` (e.g. an unknown session). */
export class KvError extends Error {}

/** The entry for `key`, if any. */
export function kvGet(store: Store, key: string): KvEntry | undefined {
  return store.kv.get(key);
}

/** Entries under `prefix`, in key order; with `readable`, only the keys it accepts (ACL filtering). */
export function kvList(store: Store, prefix: string, readable?: (key: string) => boolean): KvEntry[] {
  const out: KvEntry[] = [];
  for (const key of store.kvIndex.range(prefix)) {
    const e = store.kv.get(key);
    if (e !== undefined && (readable === undefined || readable(key))) out.push(e);
  }
  return out;
}

/**
 * Keys under `prefix`. With a separator, keys are cut after the first
 * separator following the prefix and de-duplicated, as `?keys&separator=/`.
 */
export function kvKeys(store: Store, prefix: string, separator: string, readable?: (key: string) => boolean): string[] {
  const out: string[] = [];
  let last: string | undefined;
  for (const e of kvList(store, prefix, readable)) {
    if (separator === '') {
      out.push(e.key);
      continue;
    }
    const at = e.key.indexOf(separator, prefix.length);
    const key = at === -1 ? e.key : e.key.slice(0, at + separator.length);
    if (key !== last) out.push(key);
    last = key;
  }
  return out;
}

/** Index of a single-key query: the entry's ModifyIndex, else the KV table index (so a delete wakes it). */
export function kvKeyIndex(store: Store, key: string): number {
  return store.kv.get(key)?.modifyIndex ?? store.maxIndex('kvs');
}

/**
 * Index of a prefix query: the highest ModifyIndex of matching entries or
 * tombstones; the table index when the prefix is empty or nothing matches.
 */
export function kvPrefixIndex(store: Store, prefix: string): number {
  if (prefix === '') return store.maxIndex('kvs');
  // Cached per prefix and advanced by every commit (kv-index.ts): a parked agent's re-query costs no scan.
  let max = store.kvIndex.prefixMax(prefix, () => {
    let m = 0;
    for (const key of store.kvIndex.range(prefix)) m = Math.max(m, store.kv.get(key)?.modifyIndex ?? 0);
    for (const [k, idx] of store.tombstones) if (k.startsWith(prefix) && idx > m) m = idx;
    return m;
  });
  if (max > 0) max = Math.max(max, store.tombstoneFloor);
  return max > 0 ? max : store.maxIndex('kvs');
}

/** Plain set; keeps an existing lock holder (only acquire/release change Session). */
export function kvSet(tx: WriteTx, store: Store, w: KvWrite): KvEntry {
  const existing = store.kv.get(w.key);
  return write(tx, existing, {
    key: w.key,
    flags: w.flags,
    value: w.value,
    lockIndex: existing?.lockIndex ?? 0,
    ...(existing?.session === undefined ? {} : { session: existing.session }),
  });
}

/** Check-and-set: `cas` 0 writes only a new key; otherwise only when ModifyIndex equals `cas`. */
export function kvCas(tx: WriteTx, store: Store, w: KvWrite, cas: number): KvEntry | undefined {
  const existing = store.kv.get(w.key);
  if (cas === 0 ? existing !== undefined : existing?.modifyIndex !== cas) return undefined;
  return kvSet(tx, store, w);
}

/** Outcome of an acquire: done, someone else holds it, or the key is in its lock-delay window. */
export type LockOutcome = { ok: true; entry: KvEntry } | { ok: false; why: 'held' | 'delay' };

/**
 * Acquire: takes the lock for `session` (LockIndex+1 when newly taken) and
 * writes the value. Throws KvError for a missing or unknown session, as Consul does.
 */
export function kvLock(tx: WriteTx, store: Store, w: KvWrite, session: string, now: number): LockOutcome {
  if (session === '') throw new KvError('missing session');
  if (!store.sessions.has(session)) throw new KvError(`invalid session ${JSON.stringify(session)}`);
  const delayUntil = store.lockDelays.get(w.key);
  if (delayUntil !== undefined && delayUntil > now) return { ok: false, why: 'delay' };
  const existing = store.kv.get(w.key);
  if (existing?.session !== undefined && existing.session !== session) return { ok: false, why: 'held' };
  const lockIndex = existing === undefined ? 1 : existing.session === session ? existing.lockIndex : existing.lockIndex + 1;
  return { ok: true, entry: write(tx, existing, { key: w.key, flags: w.flags, value: w.value, lockIndex, session }) };
}

/** Release: only the holder may; clears Session and writes the value. False when not held by `session`. */
export function kvUnlock(tx: WriteTx, store: Store, w: KvWrite, session: string): KvEntry | undefined {
  if (session === '') throw new KvError('missing session');
  const existing = store.kv.get(w.key);
  if (existing === undefined || existing.session !== session) return undefined;
  return write(tx, existing, { key: w.key, flags: w.flags, value: w.value, lockIndex: existing.lockIndex });
}

/** Deletes one key (leaving a tombstone). */
export function kvDelete(tx: WriteTx, key: string): void {
  tx.put('kvs', key, undefined);
}

/** Deletes every key under `prefix`. */
export function kvDeleteTree(tx: WriteTx, store: Store, prefix: string): void {
  for (const e of kvList(store, prefix)) tx.put('kvs', e.key, undefined);
}

/** Delete-if-ModifyIndex-matches; a missing key counts as success, as in Consul. */
export function kvDeleteCas(tx: WriteTx, store: Store, key: string, cas: number): boolean {
  const existing = store.kv.get(key);
  if (existing === undefined) return true;
  if (existing.modifyIndex !== cas) return false;
  kvDelete(tx, key);
  return true;
}

/** Sets an existing entry's Session aside (session invalidation with behavior "release"). */
export function kvClearSession(tx: WriteTx, entry: KvEntry): void {
  const { session: _dropped, ...rest } = entry;
  tx.put('kvs', entry.key, { ...rest, modifyIndex: tx.index });
}

function write(tx: WriteTx, existing: KvEntry | undefined, next: Omit<KvEntry, 'createIndex' | 'modifyIndex'>): KvEntry {
  if (existing !== undefined && sameEntry(existing, next)) return existing; // Consul skips no-op writes
  const entry: KvEntry = { ...next, createIndex: existing?.createIndex ?? tx.index, modifyIndex: tx.index };
  tx.put('kvs', entry.key, entry);
  return entry;
}

function sameEntry(a: KvEntry, b: Omit<KvEntry, 'createIndex' | 'modifyIndex'>): boolean {
  const va = a.value ?? Buffer.alloc(0);
  const vb = b.value ?? Buffer.alloc(0);
  return a.flags === b.flags && a.lockIndex === b.lockIndex && a.session === b.session && va.equals(vb);
}
