/**
 * A retry budget, as Finagle and Linkerd keep one: retries may add at most
 * `ratio` (20%) on top of the requests seen in a sliding window (10 s), plus a
 * floor of `minRetriesPerSecond` (10/s) so a quiet service can still retry.
 *
 * Per-request retry limits multiply under an outage (every client retries
 * every request), turning a partial failure into a total one; a budget caps
 * the extra load at a fixed fraction whatever the clients do.
 *
 * The window is a ring of buckets (1 s each by default): counts fall out a
 * bucket at a time, which is precise enough for a limit and costs O(buckets)
 * per check. Arithmetic is in integers (Finagle's scaling: a request deposits
 * 1000 units, a retry costs 1000 / ratio), so 20% of 5 requests is exactly 1.
 */
import { type Clock, systemClock } from '../../base/clock.js';
import { numberOption } from '../options.js';

/** Linkerd's and Finagle's defaults. */
export const DEFAULT_RETRY_RATIO = 0.2;
export const DEFAULT_MIN_RETRIES_PER_SECOND = 10;
export const DEFAULT_BUDGET_WINDOW_MS = 10_000;
export const DEFAULT_BUDGET_BUCKETS = 10;

/** Units deposited per request. */
const DEPOSIT = 1000;

/** Options of a retry budget. */
export interface RetryBudgetOptions {
  readonly now?: Clock | undefined;
  /** Retries allowed per request in the window, 0..1000 (default 0.2). */
  readonly ratio?: number | undefined;
  /** Retries allowed per second of window regardless of traffic (default 10). */
  readonly minRetriesPerSecond?: number | undefined;
  /** Sliding window length (default 10 s). */
  readonly windowMs?: number | undefined;
  /** Buckets the window is cut into (default 10). */
  readonly buckets?: number | undefined;
}

/** One service's retry budget. */
export class RetryBudget {
  readonly #now: Clock;
  readonly #bucketMs: number;
  readonly #epochs: number[];
  readonly #requests: number[];
  readonly #retries: number[];
  /** Cost of one retry in deposit units; Infinity when ratio is 0 (only the floor pays). */
  readonly #withdraw: number;
  /** The floor, in retries per window. */
  readonly #reserve: number;

  constructor(options: RetryBudgetOptions = {}) {
    this.#now = options.now ?? systemClock;
    const ratio = numberOption('retry.budget.ratio', options.ratio, DEFAULT_RETRY_RATIO, { min: 0, max: 1000 });
    const minPerSecond = numberOption('retry.budget.minRetriesPerSecond', options.minRetriesPerSecond, DEFAULT_MIN_RETRIES_PER_SECOND, {
      min: 0,
    });
    const windowMs = numberOption('retry.budget.windowMs', options.windowMs, DEFAULT_BUDGET_WINDOW_MS, { min: 1 });
    const buckets = numberOption('retry.budget.buckets', options.buckets, DEFAULT_BUDGET_BUCKETS, { min: 1, max: 1000, integer: true });
    this.#bucketMs = windowMs / buckets;
    this.#epochs = new Array<number>(buckets).fill(Number.NEGATIVE_INFINITY);
    this.#requests = new Array<number>(buckets).fill(0);
    this.#retries = new Array<number>(buckets).fill(0);
    this.#withdraw = ratio === 0 ? Number.POSITIVE_INFINITY : Math.round(DEPOSIT / ratio);
    this.#reserve = Math.floor((minPerSecond * windowMs) / 1000);
  }

  /** Counts one original request (not a retry): call once per request the proxy receives. */
  deposit(): void {
    this.#requests[this.#bucket()]!++;
  }

  /** Spends one retry if the budget allows it; false means do not retry. */
  tryWithdraw(): boolean {
    if (!this.#canRetry()) return false;
    this.#retries[this.#bucket()]!++;
    return true;
  }

  /** Whether one more retry fits, without spending it. */
  canRetry(): boolean {
    return this.#canRetry();
  }

  /** Requests and retries counted in the current window (for metrics and tests). */
  usage(): { requests: number; retries: number } {
    this.#bucket();
    return { requests: sum(this.#requests), retries: sum(this.#retries) };
  }

  #canRetry(): boolean {
    const { requests, retries } = this.usage();
    // retries + 1 <= reserve + ratio x requests, in integer units.
    if (retries + 1 <= this.#reserve) return true;
    if (this.#withdraw === Number.POSITIVE_INFINITY) return false;
    return (retries + 1 - this.#reserve) * this.#withdraw <= requests * DEPOSIT;
  }

  /** Index of the current bucket, clearing buckets that fell out of the window. */
  #bucket(): number {
    const epoch = Math.floor(this.#now() / this.#bucketMs);
    const n = this.#epochs.length;
    const index = ((epoch % n) + n) % n;
    if (this.#epochs[index] !== epoch) {
      this.#epochs[index] = epoch;
      this.#requests[index] = 0;
      this.#retries[index] = 0;
    }
    // Buckets older than the window may still sit at other indexes: zero them.
    for (let i = 0; i < n; i++) {
      if (this.#epochs[i]! <= epoch - n) {
        this.#epochs[i] = Number.NEGATIVE_INFINITY;
        this.#requests[i] = 0;
        this.#retries[i] = 0;
      }
    }
    return index;
  }
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}
