/**
 * Time and randomness as injectable functions. Every stateful piece that
 * waits, times out or jitters (the proxy's balancing and resilience core,
 * discovery's watches and locks, the scheduler's placement) takes these
 * instead of calling Date.now()/Math.random()/setTimeout itself, so tests
 * replay exact sequences without sleeping and a bench or a bug report can be
 * reproduced from a seed.
 */

/** Milliseconds on a monotonic-enough timeline; only differences are used. */
export type Clock = () => number;

/** A number in [0, 1), like Math.random(). */
export type Random = () => number;

/** An opaque handle from `Timers.setTimeout`. */
export type TimerHandle = unknown;

/** Timers, injectable so a test can advance time by hand (see test/helpers/manual-clock.ts). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: performance.now() is monotonic, so a wall-clock step (NTP,
 * a suspended VM) cannot make a deadline jump or an ejection last forever.
 */
export const systemClock: Clock = () => performance.now();

/** The real random source. */
export const systemRandom: Random = Math.random;

/**
 * The real timers. Handles stay ref'd, as plain setTimeout's: a process whose
 * only work is a loop of waits (an agent between two polls) must not exit
 * in the gap.
 */
export const systemTimers: Timers = {
  setTimeout(fn, ms) {
    return setTimeout(fn, ms);
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Waits `ms` on `timers`. Resolves true when the time has passed, false at
 * once when `signal` aborts (the timer is cleared): a loop that must stop on
 * close tells the two apart without catching.
 */
export function sleep(ms: number, timers: Timers = systemTimers, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = (): void => {
      timers.clearTimeout(handle);
      resolve(false);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A deterministic random source (mulberry32: 32-bit state, fast, and good
 * enough for choosing endpoints, placements and jitter; not for anything secret).
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
