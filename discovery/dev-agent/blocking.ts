/**
 * Blocking queries, as Consul runs them: `?index=N` parks the request until
 * the result's index moves past N or `?wait` (default 5 min, clamped to
 * 10 min, plus up to wait/16 of random jitter) runs out. The store wakes
 * parked queries on commit, so an answer follows a change within milliseconds.
 */
import { parseDuration } from '../../base/duration.js';
import { badRequest } from './http-error.js';
import type { Store } from './state/store.js';
import type { Table } from './state/types.js';

/** Consul's default wait when `?index` is given without `?wait`. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
/** Consul's ceiling on `?wait`. */
export const MAX_WAIT_MS = 10 * 60_000;
/** Jitter of up to wait/16 spreads wake-ups of many watchers (Consul's JitterFraction). */
export const JITTER_FRACTION = 16;

/** What a request asked for: block past `minIndex` for at most `waitMs`. */
export interface BlockingParams {
  readonly minIndex: number;
  readonly waitMs: number;
}

/** Applies Consul's default and ceiling to a requested wait (ms). */
export function clampWait(waitMs: number | undefined): number {
  if (waitMs === undefined || waitMs <= 0) return DEFAULT_WAIT_MS;
  return Math.min(waitMs, MAX_WAIT_MS);
}

/** The wait actually used: the clamped wait plus up to wait/16 of jitter. */
export function withJitter(waitMs: number, random: () => number = Math.random): number {
  return waitMs + Math.floor(random() * (waitMs / JITTER_FRACTION));
}

/** Reads `?index` and `?wait`; 400 "Invalid index" / "Invalid wait time" like Consul. */
export function parseBlockingParams(query: Readonly<Record<string, unknown>>): BlockingParams {
  let waitMs: number | undefined;
  const wait = first(query['wait']);
  if (wait !== undefined && wait !== '') {
    waitMs = parseDuration(wait);
    if (waitMs === undefined || waitMs < 0) throw badRequest('Invalid wait time');
  }
  let minIndex = 0;
  const index = first(query['index']);
  if (index !== undefined && index !== '') {
    if (!/^\d+$/.test(index)) throw badRequest('Invalid index');
    minIndex = Number(index);
  }
  return { minIndex, waitMs: clampWait(waitMs) };
}

/** One evaluation of a query: its index and its answer. */
export interface QueryResult<T> {
  readonly index: number;
  readonly value: T;
}

/** What a query waits on: commits to whole tables, or a subscription of its own (a KV prefix: Store.watchKv). */
export type WakeSource = readonly Table[] | ((wake: () => void) => () => void);

/**
 * Runs `run` and, while its result is not fresh (index <= minIndex by
 * default), waits for a commit to one of `tables` and runs it again, until
 * the jittered wait ends, the store closes, or `signal` aborts.
 */
export async function blockingQuery<T>(
  store: Store,
  tables: WakeSource,
  params: BlockingParams,
  run: () => QueryResult<T>,
  opts: { signal?: AbortSignal; isFresh?: (r: QueryResult<T>) => boolean } = {},
): Promise<QueryResult<T>> {
  const isFresh = opts.isFresh ?? ((r: QueryResult<T>) => params.minIndex === 0 || r.index > params.minIndex);
  let result = run();
  if (isFresh(result)) return result;
  const deadline = Date.now() + withJitter(params.waitMs);
  while (!isFresh(result) && !store.isClosed && opts.signal?.aborted !== true) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await nextChange(store, tables, remaining, opts.signal);
    result = run();
  }
  return result;
}

/**
 * Waits, while `index()` is not past `params.minIndex`, for a wake from
 * `source`, until the jittered wait ends, the store closes, or `signal`
 * aborts; returns the index. The answer itself is built once, afterwards:
 * a query woken by a change that left its index alone costs one index read.
 */
export async function blockUntilFresh(store: Store, source: WakeSource, params: BlockingParams, index: () => number, signal?: AbortSignal): Promise<number> {
  let idx = index();
  if (params.minIndex === 0 || idx > params.minIndex) return idx;
  const deadline = Date.now() + withJitter(params.waitMs);
  while (idx <= params.minIndex && !store.isClosed && signal?.aborted !== true) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await nextChange(store, source, remaining, signal);
    idx = index();
  }
  return idx;
}

function nextChange(store: Store, source: WakeSource, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      unwatch();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const unwatch = typeof source === 'function' ? source(done) : store.watch(source, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function first(v: unknown): string | undefined {
  if (Array.isArray(v)) return first(v[0]);
  return typeof v === 'string' ? v : undefined;
}
