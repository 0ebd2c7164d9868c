/**
 * Watches over Consul blocking queries. One loop serves every watch (a
 * service's healthy instances, a KV prefix, a single key) and follows Consul's
 * "Blocking Queries" rules: reset the index to 0 when it goes backwards, treat
 * an index <= 0 as 1, rate-limit wake-ups. Errors back off exponentially with
 * jitter (capped at 30 s) and never empty the view: the last good value stays,
 * flagged `stale`, until Consul answers again.
 *
 * Time comes in as options (`now`, `random`, `timers`, base/clock.ts), as in
 * the proxy's core: every wait of the loop (the retry backoff, the rate limit
 * between requests) goes through `timers`, so tests drive it by hand.
 */
import { EventEmitter } from 'node:events';
import type { GetItem } from 'consul/lib/kv.js';
import { type Backoff, backoffDelayMs } from '../base/backoff.js';
import { type Clock, type Random, systemClock, systemRandom, sleep, systemTimers, type Timers } from '../base/clock.js';
import { WeftError } from '../base/errors.js';
import { type Logger, silentLogger } from '../base/log.js';
import type { DiscoveryClient } from './client.js';
import { checkKey, type KvEntry, toKvEntry } from './kv.js';
import { type HealthEntry, type Instance, parseHealthEntries } from './registry.js';

export interface WatchOptions {
  /** How long Consul may hold a blocking query (its `wait`); default 30 s. */
  waitMs?: number;
  /** First retry delay after an error; doubles per failure. Default 250 ms. */
  backoffBaseMs?: number;
  /** Ceiling of the retry delay. Default 30 s. */
  backoffMaxMs?: number;
  /** Least time between the starts of two requests, so a flapping index cannot spin the loop. Default 100 ms. */
  minIntervalMs?: number;
  logger?: Logger;
  /** The clock the rate limit reads; default systemClock. */
  now?: Clock;
  /** The jitter source of the retry backoff; default systemRandom. */
  random?: Random;
  /** Where the loop's waits are armed; default systemTimers. */
  timers?: Timers;
}

/** One answer of a fetcher: the decoded value and the X-Consul-Index (undefined when absent). */
export interface FetchResult<T> {
  value: T;
  index: bigint | undefined;
}

/** Runs one (blocking) read at `index`; must honour `signal`. */
export type Fetcher<T> = (index: bigint, waitMs: number, signal: AbortSignal) => Promise<FetchResult<T>>;

/** Events of a watch. */
export interface WatchEvents<T> {
  /** A new value, different from the last one emitted. */
  change: [value: T];
  /** A read failed after the last one succeeded: the view is now stale (but kept). */
  stale: [error: Error];
  /** A read succeeded after failures. */
  recovered: [];
  /** Every failed read, with the delay before the next try. */
  retry: [error: Error, delayMs: number, attempt: number];
}


/** The index to send next, per Consul's rules, given the previous one and the one just returned. */
export function nextIndex(previous: bigint, returned: bigint | undefined): bigint {
  if (returned === undefined) return 1n; // no header: cannot block, poll (rate-limited) instead
  if (previous > 0n && returned < previous) return 0n; // went backwards (restart, snapshot restore): start over
  return returned <= 0n ? 1n : returned;
}

/**
 * A value kept current by a blocking-query loop. Emits `change` on every new
 * distinct value; `current()` is the last good value; iterate it with
 * `for await` to get the latest value each time it changes.
 */
export class BlockingWatch<T> extends EventEmitter<WatchEvents<T>> {
  readonly name: string;
  private readonly fetcher: Fetcher<T>;
  private readonly opts: Required<Pick<WatchOptions, 'waitMs' | 'minIntervalMs'>>;
  /** Equal jitter: a retry never comes sooner than half the ceiling, so a loop cannot spin on a Consul that is down. */
  private readonly backoff: Backoff;
  private readonly logger: Logger;
  private readonly now: Clock;
  private readonly random: Random;
  private readonly timers: Timers;
  private readonly controller = new AbortController();
  private value: T | undefined;
  private hasValue = false;
  private fingerprint: string | undefined;
  private idx = 0n;
  private error: Error | undefined;
  private readonly done: Promise<void>;

  constructor(name: string, fetcher: Fetcher<T>, opts: WatchOptions = {}) {
    super();
    this.name = name;
    this.fetcher = fetcher;
    this.logger = opts.logger ?? silentLogger;
    this.opts = { waitMs: opts.waitMs ?? 30_000, minIntervalMs: opts.minIntervalMs ?? 100 };
    this.backoff = { baseMs: opts.backoffBaseMs ?? 250, maxMs: opts.backoffMaxMs ?? 30_000, jitter: 'equal' };
    this.now = opts.now ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.timers = opts.timers ?? systemTimers;
    // Start on the next tick so callers can attach listeners first.
    this.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop());
  }

  /** The last good value; undefined until the first successful read. */
  current(): T | undefined {
    return this.value;
  }

  /** True while reads fail (the value, if any, is the last known good one). */
  get stale(): boolean {
    return this.error !== undefined;
  }

  /** The error of the latest failed read, cleared by the next success. */
  get lastError(): Error | undefined {
    return this.error;
  }

  /** The index the next blocking read will send. */
  get index(): bigint {
    return this.idx;
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.controller.signal.aborted;
  }

  /** Resolves with the first value (at once if there is one); rejects if the watch closes first. */
  ready(): Promise<T> {
    if (this.hasValue) return Promise.resolve(this.value as T);
    return this.next(() => true);
  }

  /** Resolves with the first value (current or future) for which `pred` holds. */
  next(pred: (value: T) => boolean): Promise<T> {
    if (this.hasValue && pred(this.value as T)) return Promise.resolve(this.value as T);
    return new Promise<T>((resolve, reject) => {
      const onChange = (v: T): void => {
        if (!pred(v)) return;
        cleanup();
        resolve(v);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new WeftError('WEFT_ERR_CONSUL_UNAVAILABLE', `watch ${this.name} closed before the value arrived`, { key: this.name }));
      };
      const cleanup = (): void => {
        this.off('change', onChange);
        this.controller.signal.removeEventListener('abort', onAbort);
      };
      if (this.closed) return onAbort();
      this.on('change', onChange);
      this.controller.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The current value (if any), then the latest value after each change; ends when the watch closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    let seen = 0;
    let version = 0; // counts changes since iteration began; the current value is version 0
    let wake: (() => void) | undefined;
    const onChange = (): void => {
      version++;
      wake?.();
    };
    const onAbort = (): void => wake?.();
    this.on('change', onChange);
    this.controller.signal.addEventListener('abort', onAbort);
    try {
      if (this.hasValue) yield this.value as T;
      while (!this.closed) {
        if (version === seen) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        seen = version; // a slow consumer gets the latest value, not a backlog
        yield this.value as T;
      }
    } finally {
      this.off('change', onChange);
      this.controller.signal.removeEventListener('abort', onAbort);
    }
  }

  /** Stops the loop and aborts the in-flight request at once. The last value stays readable. */
  async close(): Promise<void> {
    this.controller.abort(new WeftError('WEFT_ERR_CONSUL_UNAVAILABLE', `watch ${this.name} closed`, { key: this.name }));
    await this.done;
  }

  private async loop(): Promise<void> {
    const signal = this.controller.signal;
    let attempt = 0;
    let lastStart = Number.NEGATIVE_INFINITY; // the first request goes out at once, whatever the clock's origin
    while (!signal.aborted) {
      const gap = lastStart + this.opts.minIntervalMs - this.now();
      if (gap > 0 && !(await sleep(gap, this.timers, signal))) return;
      lastStart = this.now();
      try {
        // After a failure, read without blocking: an unchanged index would otherwise park the
        // first good request for a whole wait before the watch could say it is fresh again.
        const result = await this.fetcher(this.error === undefined ? this.idx : 0n, this.opts.waitMs, signal);
        if (result.index === undefined && this.idx !== 1n) {
          this.logger.warn({ watch: this.name }, 'Consul sent no X-Consul-Index: polling instead of blocking');
        }
        this.idx = nextIndex(this.idx, result.index);
        attempt = 0;
        if (this.error !== undefined) {
          this.error = undefined;
          this.logger.info({ watch: this.name }, 'watch recovered');
          this.emit('recovered');
        }
        this.accept(result.value);
      } catch (err) {
        if (signal.aborted) return;
        attempt++;
        const error = err instanceof Error ? err : new Error(String(err));
        const delay = backoffDelayMs(attempt, this.backoff, this.random);
        const wasFresh = this.error === undefined;
        this.error = error;
        if (wasFresh) {
          this.logger.warn({ watch: this.name, err: error }, 'watch read failed: keeping the last known value');
          this.emit('stale', error);
        }
        this.logger.debug({ watch: this.name, attempt, delayMs: delay, err: error.message }, 'watch retry');
        this.emit('retry', error, delay, attempt);
        if (!(await sleep(delay, this.timers, signal))) return;
      }
    }
  }

  private accept(value: T): void {
    const fingerprint = JSON.stringify(value);
    if (this.hasValue && fingerprint === this.fingerprint) return; // same data, new index: nothing to say
    this.value = value;
    this.hasValue = true;
    this.fingerprint = fingerprint;
    try {
      this.emit('change', value);
    } catch (err) {
      // A listener's bug is not a Consul failure: log it and keep watching.
      this.logger.error({ watch: this.name, err }, 'change listener threw');
    }
  }
}

/** Watches a service's instances; only passing ones unless `passingOnly` is false. Sorted by ID. */
export function watchService(
  client: DiscoveryClient,
  service: string,
  opts: WatchOptions & { passingOnly?: boolean } = {},
): BlockingWatch<Instance[]> {
  const logger = opts.logger ?? client.logger;
  const passing = opts.passingOnly ?? true;
  return new BlockingWatch<Instance[]>(
    `service ${service}`,
    async (index, waitMs, signal) => {
      const r = await client.query<HealthEntry[]>(
        'health.service',
        (c, extras) => c.health.service({ service, passing, ...extras }),
        { index, waitMs, signal },
      );
      return { value: parseHealthEntries(r.body ?? [], logger), index: r.index };
    },
    { ...opts, logger },
  );
}

/** Watches every key under a prefix (e.g. `weft/splits/`), sorted by key. An absent prefix is `[]`. */
export function watchKeyPrefix(client: DiscoveryClient, prefix: string, opts: WatchOptions = {}): BlockingWatch<KvEntry[]> {
  checkKey(prefix, { prefix: true });
  return new BlockingWatch<KvEntry[]>(
    `kv ${prefix}`,
    async (index, waitMs, signal) => {
      const r = await client.query<GetItem[]>('kv.get', (c, extras) => c.kv.get({ key: prefix, recurse: true, ...extras }), {
        index,
        waitMs,
        signal,
      });
      const entries = (r.body ?? []).map(toKvEntry).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return { value: entries, index: r.index };
    },
    { logger: client.logger, ...opts },
  );
}

/** Watches one key; the value is null while the key does not exist. */
export function watchKey(client: DiscoveryClient, key: string, opts: WatchOptions = {}): BlockingWatch<KvEntry | null> {
  checkKey(key);
  return new BlockingWatch<KvEntry | null>(
    `kv ${key}`,
    async (index, waitMs, signal) => {
      const r = await client.query<GetItem[]>('kv.get', (c, extras) => c.kv.get({ key, ...extras }), { index, waitMs, signal });
      // includeResponse makes node-consul return the first item for a single-key read.
      const body = r.body as GetItem | GetItem[] | undefined;
      const item = Array.isArray(body) ? body[0] : body;
      return { value: item === undefined ? null : toKvEntry(item), index: r.index };
    },
    { logger: client.logger, ...opts },
  );
}
