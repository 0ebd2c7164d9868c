/**
 * A clock and timers that move only when the test says so, for code that takes
 * `now`/`timers` (base/clock.ts): watches, locks, backoff. Tests advance time
 * by hand and assert exact sequences instead of sleeping and asserting
 * wall-clock ranges.
 *
 *   const clock = manualClock();
 *   const w = new BlockingWatch('x', fetch, { now: clock.now, timers: clock });
 *   await clock.advanceAndSettle(250); // fires what is due, continuations run between timers
 *
 * Code that also does real I/O (HTTP to the dev agent) is synchronised with
 * `whenArmed`: it resolves once the code has finished its I/O and waits on
 * this clock again.
 */
import type { Clock, TimerHandle, Timers } from '../../base/clock.js';

/** A pending timer, as tests see it. */
export interface PendingTimer {
  /** When it fires, on this clock. */
  readonly at: number;
  /** The delay it was armed with. */
  readonly ms: number;
}

/** A manual clock: a Clock (`now`) and Timers in one. */
export interface ManualClock extends Timers {
  /** The current time; starts at `startMs` and moves only by advance*. Bound: pass it as `now`. */
  readonly now: Clock;
  /** Pending timers, soonest first (ties in arming order). */
  pending(): PendingTimer[];
  /** Every delay armed so far, in arming order (cleared ones included). */
  readonly armed: readonly number[];
  /** How many timers have fired. */
  readonly fired: number;
  /**
   * Moves time forward by `ms`, synchronously firing every timer due by then
   * in deadline order (the clock reads each timer's deadline while it runs).
   * Promise continuations run only after it returns.
   */
  advance(ms: number): void;
  /** advance() to an absolute time. */
  advanceTo(at: number): void;
  /**
   * Like advance(), but settles (lets promise continuations and the rest of
   * the current event-loop turn run) after each timer, so timers armed by
   * those continuations within the window fire too.
   */
  advanceAndSettle(ms: number): Promise<void>;
  /** Fires timers one by one, settling in between, until none is pending; throws after `limit` (a loop that never ends). */
  runAll(limit?: number): Promise<void>;
  /**
   * Advances to each timer as it comes due, settling in between, until
   * `promise` settles; resolves or rejects with it. For code that waits on
   * this clock between real I/O (a watch against the dev agent).
   */
  runUntil<T>(promise: Promise<T>): Promise<T>;
  /**
   * Resolves with the soonest pending timer whose delay matches `pred`: at
   * once if one is pending, else when code arms one.
   */
  whenArmed(pred?: (ms: number) => boolean): Promise<PendingTimer>;
}

interface Entry {
  readonly at: number;
  readonly ms: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Lets queued promise continuations and the current event-loop turn (I/O callbacks included) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** When each of a chain of waits starts: [start, start + d1, start + d1 + d2, ...] (one more entry than `delays`). */
export function waitStarts(delays: readonly number[], start = 0): number[] {
  const out = [start];
  for (const d of delays) out.push(out[out.length - 1]! + d);
  return out;
}

/** Creates a manual clock at `startMs` (default 0). */
export function manualClock(startMs = 0): ManualClock {
  let t = startMs;
  let seq = 0;
  let fired = 0;
  const timers = new Map<number, Entry>();
  const armed: number[] = [];
  const watchers: Array<{ pred: (ms: number) => boolean; resolve: (p: PendingTimer) => void }> = [];

  const sorted = (): Entry[] => [...timers.values()].sort((a, b) => a.at - b.at || a.seq - b.seq);
  const next = (): Entry | undefined => sorted()[0];
  const fire = (e: Entry): void => {
    timers.delete(e.seq);
    t = Math.max(t, e.at);
    fired++;
    e.fn();
  };

  const clock: ManualClock = {
    now: () => t,
    get armed() {
      return armed;
    },
    get fired() {
      return fired;
    },
    setTimeout(fn: () => void, ms: number): TimerHandle {
      // Like Node: a negative or non-finite delay means "as soon as possible".
      const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
      const e: Entry = { at: t + delay, ms: delay, seq: ++seq, fn };
      timers.set(e.seq, e);
      armed.push(delay);
      for (const w of [...watchers]) {
        if (!w.pred(delay)) continue;
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve({ at: e.at, ms: delay });
      }
      return e.seq;
    },
    clearTimeout(handle: TimerHandle) {
      if (typeof handle === 'number') timers.delete(handle);
    },
    pending: () => sorted().map((e) => ({ at: e.at, ms: e.ms })),
    advance(ms) {
      clock.advanceTo(t + ms);
    },
    advanceTo(at) {
      for (let e = next(); e !== undefined && e.at <= at; e = next()) fire(e);
      t = Math.max(t, at);
    },
    async advanceAndSettle(ms) {
      const target = t + ms;
      await settle();
      for (let e = next(); e !== undefined && e.at <= target; e = next()) {
        fire(e);
        await settle();
      }
      t = Math.max(t, target);
      await settle();
    },
    async runAll(limit = 10_000) {
      await settle();
      for (let n = 0, e = next(); e !== undefined; e = next(), n++) {
        if (n >= limit) throw new Error(`runAll: more than ${limit} timers fired; something re-arms forever`);
        fire(e);
        await settle();
      }
    },
    async runUntil(promise) {
      let done = false;
      const settled = promise.then(
        () => {
          done = true;
        },
        () => {
          done = true;
        },
      );
      while (!done) {
        const timer = await Promise.race([settled.then(() => undefined), clock.whenArmed()]);
        if (done || timer === undefined) break;
        clock.advanceTo(timer.at);
        await settle();
      }
      return promise;
    },
    whenArmed(pred = () => true) {
      const match = sorted().find((e) => pred(e.ms));
      if (match !== undefined) return Promise.resolve({ at: match.at, ms: match.ms });
      return new Promise((resolve) => watchers.push({ pred, resolve }));
    },
  };
  return clock;
}
