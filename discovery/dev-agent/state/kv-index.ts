/**
 * What makes KV reads cost what they return rather than what is stored:
 *
 * - the keys in sorted order: a prefix is a binary search and a slice, with
 *   no scan of every key and no sort per answer;
 * - per prefix asked about, its index (the highest ModifyIndex of entries and
 *   tombstones under it), kept current by every commit: a commit's changed
 *   keys raise the cached index of each cached prefix they start with to the
 *   commit's index (indexes only grow, and every change carries the newest);
 * - `PrefixSet`: the same "which of these prefixes does this key start with"
 *   lookup for parked watchers, so a write wakes only the queries whose key
 *   range it touched. A key is looked up once per distinct prefix length,
 *   so the cost of a commit follows its keys, not how many are stored or parked.
 *
 * Tombstone reaps (the only thing that removes an index) clear the cache.
 */

/** Prefixes whose index is cached; past this the cache starts over (clients choose prefixes). */
const PREFIX_CACHE_MAX = 16_384;

/** Values by prefix, with the lookup of every value whose prefix a key starts with. */
export class PrefixMap<V> {
  private readonly byPrefix = new Map<string, V>();
  /** How many prefixes of each length there are (only these lengths are sliced). */
  private readonly lengths = new Map<number, number>();

  get size(): number {
    return this.byPrefix.size;
  }

  get(prefix: string): V | undefined {
    return this.byPrefix.get(prefix);
  }

  set(prefix: string, value: V): void {
    if (!this.byPrefix.has(prefix)) this.lengths.set(prefix.length, (this.lengths.get(prefix.length) ?? 0) + 1);
    this.byPrefix.set(prefix, value);
  }

  delete(prefix: string): void {
    if (!this.byPrefix.delete(prefix)) return;
    const n = (this.lengths.get(prefix.length) ?? 1) - 1;
    if (n === 0) this.lengths.delete(prefix.length);
    else this.lengths.set(prefix.length, n);
  }

  values(): IterableIterator<V> {
    return this.byPrefix.values();
  }

  clear(): void {
    this.byPrefix.clear();
    this.lengths.clear();
  }

  /** Calls `fn` for each stored prefix `key` starts with (the empty prefix included). */
  forEachPrefixOf(key: string, fn: (value: V, prefix: string) => void): void {
    for (const len of this.lengths.keys()) {
      if (len > key.length) continue;
      const p = len === key.length ? key : key.slice(0, len);
      const v = this.byPrefix.get(p);
      if (v !== undefined) fn(v, p);
    }
  }
}

/** The sorted keys and the per-prefix index cache of one store. */
export class KvIndex {
  private keys: string[] = [];
  private readonly cache = new PrefixMap<number>();

  /** Rebuilds the key order from scratch (after loading state). */
  reset(keys: Iterable<string>): void {
    this.keys = [...keys].sort(compare);
    this.cache.clear();
  }

  /** A key was created. */
  insert(key: string): void {
    const at = lowerBound(this.keys, key);
    if (this.keys[at] !== key) this.keys.splice(at, 0, key);
  }

  /** A key was deleted. */
  remove(key: string): void {
    const at = lowerBound(this.keys, key);
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  /** The keys starting with `prefix`, in order. */
  range(prefix: string): string[] {
    if (prefix === '') return [...this.keys];
    const from = lowerBound(this.keys, prefix);
    let to = from;
    while (to < this.keys.length && this.keys[to]!.startsWith(prefix)) to++;
    return this.keys.slice(from, to);
  }

  /** A commit at `index` set or deleted `keys`: every cached prefix of them is now at `index`. */
  committed(index: number, keys: Iterable<string>): void {
    if (this.cache.size === 0) return;
    for (const k of keys) this.cache.forEachPrefixOf(k, (_v, p) => this.cache.set(p, index));
  }

  /** Forgets every cached prefix index (tombstones were reaped). */
  invalidate(): void {
    this.cache.clear();
  }

  /** The highest ModifyIndex of entries and tombstones under `prefix` (0 when none); `full()` computes it when not cached. */
  prefixMax(prefix: string, full: () => number): number {
    const hit = this.cache.get(prefix);
    if (hit !== undefined) return hit;
    const max = full();
    if (this.cache.size >= PREFIX_CACHE_MAX) this.cache.clear();
    this.cache.set(prefix, max);
    return max;
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The first position whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
