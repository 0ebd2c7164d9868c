/**
 * When `weft up` restarts a piece that died on its own: a pure decision from
 * the piece's recent crash times and the clock, so a table test covers it.
 *
 * The first crash within the window is restarted at once: a proxy killed by
 * the OOM killer or a stray `kill -9` should be back in the time it takes to
 * start, since every second of the gap is refused traffic. Further crashes
 * within the window wait a backoff (base/backoff.ts, equal jitter: never less
 * than half the ceiling, so a piece that dies at start-up cannot spin), and
 * the `maxCrashes`-th crash within the window gives up on the piece: it is
 * broken, not unlucky, and a restart loop would only bury its error in noise.
 * Crashes older than the window are forgotten, so a piece that dies once a
 * day is restarted at once every time.
 */
import { type Backoff, backoffDelayMs } from '../../../base/backoff.js';
import type { Random } from '../../../base/clock.js';

/** The policy's bounds. */
export interface RestartPolicy {
  /** Crashes older than this (ms) no longer count. */
  readonly windowMs: number;
  /** The crash that brings the count within the window to this gives up. */
  readonly maxCrashes: number;
  /** The wait before the 2nd, 3rd, ... restart within the window. */
  readonly backoff: Backoff;
}

/**
 * weft up's policy: 5 crashes within 60 s give up; the restarts in between
 * wait 0, then 0.5-1 s, 1-2 s, 2-4 s (at most ~7 s of waiting before giving up).
 */
export const UP_RESTART_POLICY: RestartPolicy = {
  windowMs: 60_000,
  maxCrashes: 5,
  backoff: { baseMs: 1000, maxMs: 16_000, jitter: 'equal' },
};

/** What to do about the crash just recorded. */
export type RestartDecision =
  /** Restart after `delayMs` (0: at once); `crashes` counts this one within the window. */
  | { action: 'restart'; delayMs: number; crashes: number }
  | { action: 'give-up'; crashes: number };

/** The crash times (ms, on `now`'s timeline) that still count at `now`. */
export function recentCrashes(crashes: readonly number[], now: number, windowMs: number): number[] {
  return crashes.filter((at) => now - at < windowMs);
}

/**
 * The decision for a piece whose crash times are `crashes`, the newest (the
 * one being decided) included; `now` is the time of the decision.
 */
export function decideRestart(crashes: readonly number[], now: number, policy: RestartPolicy, random: Random): RestartDecision {
  const count = Math.max(1, recentCrashes(crashes, now, policy.windowMs).length);
  if (count >= policy.maxCrashes) return { action: 'give-up', crashes: count };
  if (count === 1) return { action: 'restart', delayMs: 0, crashes: count };
  return { action: 'restart', delayMs: backoffDelayMs(count - 1, policy.backoff, random), crashes: count };
}
