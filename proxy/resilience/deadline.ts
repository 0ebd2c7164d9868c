/**
 * Timeouts as one deadline per request. The overall timeout bounds everything
 * the proxy does for a request (attempts, backoff waits, retries); the per-try
 * timeout bounds one attempt and is cut short by what is left overall, so a
 * retry can never stretch a request past its overall limit.
 */
import { type Clock, systemClock } from '../../base/clock.js';
import { numberOption } from '../options.js';

/** Overall limit per request when a service sets none (Envoy's route default). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/**
 * An attempt given less than this is not worth starting: it would only time
 * out, and it would spend a retry from the budget doing so.
 */
export const DEFAULT_MIN_TRY_MS = 10;

/** Longest timeout accepted (one day): anything larger is a unit mistake. */
const MAX_TIMEOUT_MS = 86_400_000;

/** A service's timeouts, validated. */
export interface TimeoutPolicy {
  /** Overall limit for the request, all attempts and waits included. */
  readonly requestTimeoutMs: number;
  /**
   * Limit for one attempt. Undefined = no separate limit (an attempt may use
   * all that is left), which is the default: a per-try limit makes slow
   * idempotent requests retry, and that should be chosen per service.
   */
  readonly tryTimeoutMs: number | undefined;
}

/** Validates timeouts (WEFT_ERR_CONFIG_INVALID names the key) and fills defaults; the result is frozen. */
export function timeoutPolicy(opts: { requestTimeoutMs?: number | undefined; tryTimeoutMs?: number | undefined } = {}): TimeoutPolicy {
  const requestTimeoutMs = numberOption('timeouts.requestTimeoutMs', opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, {
    min: 1,
    max: MAX_TIMEOUT_MS,
  });
  const tryTimeoutMs =
    opts.tryTimeoutMs === undefined
      ? undefined
      : numberOption('timeouts.tryTimeoutMs', opts.tryTimeoutMs, 0, { min: 1, max: MAX_TIMEOUT_MS });
  return Object.freeze({ requestTimeoutMs, tryTimeoutMs });
}

/** The point in time a request must be answered by. */
export class Deadline {
  readonly #now: Clock;
  /** When the request started, on the clock's timeline. */
  readonly startMs: number;
  /** When it must be answered by. */
  readonly endMs: number;

  constructor(totalMs: number, now: Clock = systemClock) {
    this.#now = now;
    this.startMs = now();
    this.endMs = this.startMs + Math.max(0, totalMs);
  }

  /** Starts the deadline of a request under `policy`. */
  static start(policy: TimeoutPolicy, now: Clock = systemClock): Deadline {
    return new Deadline(policy.requestTimeoutMs, now);
  }

  /** Milliseconds left, never negative. */
  remainingMs(): number {
    return Math.max(0, this.endMs - this.#now());
  }

  /** True once the overall limit has passed. */
  expired(): boolean {
    return this.remainingMs() === 0;
  }

  /** Milliseconds since the request started. */
  elapsedMs(): number {
    return Math.max(0, this.#now() - this.startMs);
  }

  /**
   * Timeout for the attempt about to start: the per-try limit, cut to what is
   * left overall. 0 means there is no time for another attempt.
   */
  tryTimeoutMs(perTryMs: number | undefined): number {
    const remaining = this.remainingMs();
    return perTryMs === undefined ? remaining : Math.min(perTryMs, remaining);
  }

  /** Whether waiting `waitMs` still leaves an attempt at least `minTryMs` long. */
  allows(waitMs: number, minTryMs: number = DEFAULT_MIN_TRY_MS): boolean {
    return this.remainingMs() - waitMs >= minTryMs;
  }
}
