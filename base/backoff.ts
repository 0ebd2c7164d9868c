/**
 * The one exponential backoff of weft, with jitter (Consul's lib/retry and
 * linkerd's exp-backoff keep one too). The ceiling doubles per attempt up to a
 * cap; the wait is drawn below it, so processes that saw the same failure do
 * not retry in lockstep.
 *
 * Two forms: `backoffDelayMs` is a pure, synchronous decision (the proxy's hot
 * path takes it inline), `sleepBackoff` waits it out for everything else.
 */
import { type Random, sleep, systemRandom, type Timers } from './clock.js';

/** Bounds and jitter of one backoff. */
export interface Backoff {
  /** The first ceiling, in ms. */
  readonly baseMs: number;
  /** The largest ceiling, in ms. */
  readonly maxMs: number;
  /**
   * `full`: uniform in [0, ceiling) (AWS's "full jitter", Envoy's retries):
   * the best spread, for many clients of one server.
   * `equal`: uniform in [ceiling/2, ceiling]: never retries sooner than half
   * the ceiling, for loops that must not spin on a server that is down.
   */
  readonly jitter: 'full' | 'equal';
}

/** The ceiling before attempt `attempt` (1-based): base x 2^(attempt-1), capped at maxMs. */
export function backoffCeilingMs(attempt: number, backoff: Pick<Backoff, 'baseMs' | 'maxMs'>): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** exponent);
}

/** How long to wait before attempt `attempt` (1-based), in whole milliseconds. */
export function backoffDelayMs(attempt: number, backoff: Backoff, random: Random = systemRandom): number {
  const ceiling = backoffCeilingMs(attempt, backoff);
  return backoff.jitter === 'full' ? Math.floor(random() * ceiling) : Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Waits `backoffDelayMs(attempt, backoff)`; resolves early (without error) when `signal` aborts. */
export async function sleepBackoff(
  attempt: number,
  backoff: Backoff,
  opts: { random?: Random; timers?: Timers; signal?: AbortSignal } = {},
): Promise<void> {
  await sleep(backoffDelayMs(attempt, backoff, opts.random), opts.timers, opts.signal);
}
