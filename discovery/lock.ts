/**
 * A Consul session lock, for the scheduler's leader election on `weft/leader`.
 * The holder renews its session at TTL/2 and watches the key; it emits 'lost'
 * the moment the session is gone, renewals stop working for a whole TTL, or the
 * key stops naming its session. A standby blocks on the key with blocking
 * queries and tries to acquire when it is freed. Releasing the key before
 * destroying the session hands over without Consul's lock-delay.
 *
 * Time comes in as options (`now`, `random`, `timers`, base/clock.ts), passed
 * on to the lock's key watches: every wait (session renewal, the retry while a
 * lock-delay is in force, the backoff after a failed attempt) goes through
 * `timers`, so tests drive a lock by hand.
 */
import { EventEmitter } from 'node:events';
import { type Backoff, sleepBackoff } from '../base/backoff.js';
import { type Clock, type Random, systemClock, systemRandom, sleep, systemTimers, type Timers } from '../base/clock.js';
import { WeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { ConsulError, type DiscoveryClient } from './client.js';
import { formatDuration } from '../base/duration.js';
import { checkKey, type Fence, type KvEntry } from './kv.js';
import { type BlockingWatch, type WatchOptions, watchKey } from './watch.js';

/** The scheduler's lock key. */
export const LEADER_KEY = 'weft/leader';

/**
 * The backoff of a standby whose acquire attempt failed (Consul unreachable,
 * session refused): equal jitter, so a standby never hammers a Consul that is down.
 */
export const ACQUIRE_BACKOFF: Backoff = { baseMs: 250, maxMs: 30_000, jitter: 'equal' };

/** How long a standby waits before trying again while the key is free but refused (a lock-delay in force). */
export function lockDelayRetryMs(lockDelayMs: number): number {
  return Math.min(1000, Math.max(50, lockDelayMs / 4));
}

export interface LockOptions {
  /** Default `weft/leader`. */
  key?: string;
  /** Session TTL; Consul accepts 10s-24h. Default 15 s. */
  ttlMs?: number;
  /** After a holder's session is invalidated, nobody may acquire for this long (Consul's default 15 s). */
  lockDelayMs?: number;
  /** What Consul does to held keys when the session is invalidated. Default release. */
  behavior?: 'release' | 'delete';
  /** Session name, shown by `consul operator`/UI. */
  name?: string;
  /** JSON stored in the key while held (e.g. the leader's API address). */
  value?: unknown;
  /** Options of the key watch (waitMs, backoff); `now`, `random` and `timers` default to the lock's. */
  watch?: WatchOptions;
  logger?: Logger;
  /** The clock that measures how long renewals have failed; default systemClock. */
  now?: Clock;
  /** The jitter source of the acquire backoff; default systemRandom. */
  random?: Random;
  /** Where every wait of the lock is armed; default systemTimers. */
  timers?: Timers;
}

export interface LockEvents {
  acquired: [session: string];
  /** The lock is no longer held although release() was not called. */
  lost: [error: WeftError];
}

/** One contender for a lock. Create, then `waitForLock()` (standby) or `tryAcquire()`. */
export class SessionLock extends EventEmitter<LockEvents> {
  readonly key: string;
  private readonly client: DiscoveryClient;
  private readonly opts: Required<Omit<LockOptions, 'key' | 'value' | 'watch' | 'logger' | 'now' | 'random' | 'timers'>> & { value: unknown };
  private readonly watchOpts: WatchOptions;
  private readonly logger: Logger;
  private readonly now: Clock;
  private readonly random: Random;
  private readonly timers: Timers;
  private readonly controller = new AbortController();
  private session: string | undefined;
  private holding = false;
  private renewer: Promise<void> | undefined;
  private renewStop: AbortController | undefined;
  private keyWatch: BlockingWatch<KvEntry | null> | undefined;

  constructor(client: DiscoveryClient, opts: LockOptions = {}) {
    super();
    this.client = client;
    this.key = checkKey(opts.key ?? LEADER_KEY);
    this.logger = opts.logger ?? client.logger;
    const name = opts.name ?? `weft lock ${this.key}`;
    this.opts = {
      ttlMs: opts.ttlMs ?? 15_000,
      lockDelayMs: opts.lockDelayMs ?? 15_000,
      behavior: opts.behavior ?? 'release',
      name,
      value: opts.value ?? { name },
    };
    this.now = opts.now ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.timers = opts.timers ?? systemTimers;
    this.watchOpts = { logger: this.logger, now: this.now, random: this.random, timers: this.timers, ...opts.watch };
  }

  /** The current session ID (undefined before the first acquire attempt or after the session died). */
  get sessionId(): string | undefined {
    return this.session;
  }

  /** True while this contender holds the lock. */
  get held(): boolean {
    return this.holding;
  }

  /** What a fenced write needs (kv.fencedPutJSON); throws WEFT_ERR_LOCK_LOST when not held. */
  fence(): Fence {
    if (!this.holding || this.session === undefined) {
      throw new WeftError('WEFT_ERR_LOCK_LOST', `${this.key}: not held`, { key: this.key });
    }
    return { key: this.key, session: this.session };
  }

  /** One acquire attempt; true when this contender holds the lock afterwards. */
  async tryAcquire(): Promise<boolean> {
    if (this.holding) return true;
    this.controller.signal.throwIfAborted();
    const session = await this.ensureSession();
    const value = JSON.stringify(this.opts.value);
    let ok: boolean;
    try {
      // Only `true` is a win: node-consul resolves Consul's `false` as undefined.
      ok = (await this.client.call('kv.set acquire', (c) => c.kv.set({ key: this.key, value, acquire: session }))) === true;
    } catch (err) {
      // Consul answers 500 "invalid session" when the session died meanwhile: start over with a new one.
      if (err instanceof ConsulError && err.status !== undefined && !(await this.sessionAlive(session))) this.dropSession(session);
      throw err;
    }
    if (!ok || this.controller.signal.aborted) return false;
    this.holding = true;
    this.logger.info({ key: this.key, session }, 'lock acquired');
    this.watchHeldKey(session);
    this.emit('acquired', session);
    return true;
  }

  /**
   * Blocks until this contender holds the lock: waits on the key with blocking
   * queries and tries whenever it is free. Consul outages are waited out;
   * only `signal` or close() end the wait (rejecting).
   */
  async waitForLock(signal?: AbortSignal): Promise<void> {
    const stop = signal === undefined ? this.controller.signal : AbortSignal.any([signal, this.controller.signal]);
    const watch = watchKey(this.client, this.key, this.watchOpts);
    const retryMs = lockDelayRetryMs(this.opts.lockDelayMs);
    let failures = 0;
    try {
      while (true) {
        stop.throwIfAborted();
        try {
          if (await this.tryAcquire()) return;
          failures = 0;
        } catch (err) {
          if (stop.aborted) throw stop.reason;
          failures++;
          this.logger.warn({ key: this.key, err }, 'lock acquire attempt failed');
          // Resolves early on abort; the loop's first line then rejects with the signal's reason.
          await sleepBackoff(failures, ACQUIRE_BACKOFF, { random: this.random, timers: this.timers, signal: stop });
          continue;
        }
        // Decide on what the key looks like: before the watch's first answer there is nothing
        // to decide on, and retrying blind would spend an attempt inside a lock-delay.
        const entry = watch.current() ?? (await untilAborted(watch.ready(), stop));
        if (entry === null || entry.session === undefined) {
          // Free but not ours: lock-delay is in force, or another standby won the race.
          await sleep(retryMs, this.timers, stop);
        } else {
          await untilAborted(
            watch.next((e) => e === null || e.session === undefined),
            stop,
          );
        }
      }
    } finally {
      await watch.close();
    }
  }

  /** Gives the lock up (the session lives on for a later acquire). */
  async release(): Promise<void> {
    const session = this.session;
    if (!this.holding || session === undefined) return;
    this.holding = false;
    await this.stopKeyWatch();
    const value = JSON.stringify(this.opts.value);
    await this.client.call('kv.set release', (c) => c.kv.set({ key: this.key, value, release: session }));
    this.logger.info({ key: this.key, session }, 'lock released');
  }

  /** Releases the lock, destroys the session and stops every timer and watch. */
  async close(): Promise<void> {
    if (this.controller.signal.aborted) return;
    this.controller.abort(new WeftError('WEFT_ERR_LOCK_LOST', `${this.key}: lock closed`, { key: this.key }));
    const session = this.session;
    try {
      await this.release();
    } catch (err) {
      this.logger.warn({ key: this.key, err }, 'could not release the lock on close; the session destroy or TTL will');
    }
    await this.stopKeyWatch();
    await this.stopRenewing();
    if (session !== undefined) {
      this.session = undefined;
      try {
        await this.client.call('session.destroy', (c) => c.session.destroy(session));
      } catch (err) {
        this.logger.warn({ session, err }, 'could not destroy the session; its TTL will');
      }
    }
  }

  private async ensureSession(): Promise<string> {
    if (this.session !== undefined) return this.session;
    const created = await this.client.call('session.create', (c) =>
      c.session.create({
        name: this.opts.name,
        ttl: formatDuration(this.opts.ttlMs),
        lockdelay: formatDuration(this.opts.lockDelayMs),
        behavior: this.opts.behavior,
      }),
    );
    const id = created.ID;
    this.session = id;
    this.logger.debug({ session: id, ttlMs: this.opts.ttlMs }, 'session created');
    this.startRenewing(id);
    return id;
  }

  private async sessionAlive(id: string): Promise<boolean> {
    try {
      const info = await this.client.call('session.info', (c) => c.session.info(id));
      return info !== undefined && info !== null;
    } catch {
      return true; // cannot tell: keep it, the renewer will find out
    }
  }

  private startRenewing(id: string): void {
    const stop = new AbortController();
    this.renewStop = stop;
    const every = this.opts.ttlMs / 2;
    this.renewer = (async () => {
      let lastOk = this.now();
      let wait = every;
      while (!stop.signal.aborted) {
        if (!(await sleep(wait, this.timers, stop.signal))) return;
        try {
          await this.client.call('session.renew', (c) => c.session.renew(id));
          lastOk = this.now();
          wait = every;
        } catch (err) {
          if (stop.signal.aborted) return;
          if (err instanceof ConsulError && err.status === 404) {
            this.onSessionGone(id, `session ${id} no longer exists (expired or invalidated)`, err);
            return;
          }
          if (this.now() - lastOk >= this.opts.ttlMs) {
            // A whole TTL without a renewal: Consul may have invalidated the session by now.
            this.onSessionGone(id, `session ${id} not renewed for ${formatDuration(this.opts.ttlMs)}`, err);
            return;
          }
          this.logger.warn({ session: id, err }, 'session renew failed; retrying');
          wait = Math.max(10, Math.min(every / 4, 1000));
        }
      }
    })();
  }

  private async stopRenewing(): Promise<void> {
    this.renewStop?.abort();
    await this.renewer;
    this.renewStop = undefined;
    this.renewer = undefined;
  }

  private onSessionGone(id: string, why: string, cause: unknown): void {
    this.dropSession(id);
    this.lose(why, cause);
  }

  private dropSession(id: string): void {
    if (this.session !== id) return;
    this.session = undefined;
    this.renewStop?.abort();
  }

  private watchHeldKey(session: string): void {
    const watch = watchKey(this.client, this.key, this.watchOpts);
    this.keyWatch = watch;
    watch.on('change', (entry) => {
      if (this.keyWatch !== watch || !this.holding) return;
      if (entry === null) this.lose(`${this.key} was deleted`);
      else if (entry.session !== session) {
        this.lose(entry.session === undefined ? `${this.key} was released by someone else` : `${this.key} is now held by session ${entry.session}`);
      }
    });
  }

  private async stopKeyWatch(): Promise<void> {
    const watch = this.keyWatch;
    this.keyWatch = undefined;
    await watch?.close();
  }

  private lose(why: string, cause?: unknown): void {
    if (!this.holding) return;
    this.holding = false;
    void this.stopKeyWatch();
    const err = new WeftError('WEFT_ERR_LOCK_LOST', `${this.key}: lock lost: ${why}`, { key: this.key, value: this.session, cause });
    this.logger.warn({ key: this.key, err }, 'lock lost');
    this.emit('lost', err);
  }
}

/** Resolves or rejects with `p`, or rejects with the signal's reason when it aborts first. */
async function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => {}); // when the signal wins, p's later rejection is expected: do not report it as unhandled
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([p, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}
