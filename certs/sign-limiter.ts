/**
 * A token bucket for CSR signing, like Consul's csr_max_per_second: it caps
 * how much CPU a burst of renewals (say, after a root rotation) can take from
 * the scheduler. The clock is injectable so tests need no sleeps.
 */

/** Consul's default csr_max_per_second. */
export const DEFAULT_CSR_MAX_PER_SECOND = 50;

export interface SignLimiterOptions {
  /** Sustained signatures per second; 0 disables the limit (as in Consul). */
  readonly perSecond: number;
  /** Tokens available at once; defaults to one second's worth. */
  readonly burst?: number;
  /** Milliseconds; Date.now by default. */
  readonly clock?: () => number;
}

/** The outcome of asking for one signature. */
export type TakeResult = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

/** Token bucket: `take()` spends one token or says how long until one is free. */
export class SignLimiter {
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly clock: () => number;
  private tokens: number;
  private last: number;

  constructor(opts: SignLimiterOptions) {
    if (!(opts.perSecond >= 0) || !Number.isFinite(opts.perSecond)) throw new RangeError(`perSecond must be a finite number >= 0 (got ${opts.perSecond})`);
    this.perSecond = opts.perSecond;
    this.burst = Math.max(1, opts.burst ?? Math.ceil(opts.perSecond));
    this.clock = opts.clock ?? Date.now;
    this.tokens = this.burst;
    this.last = this.clock();
  }

  /** Spends a token if one is available. */
  take(): TakeResult {
    if (this.perSecond === 0) return { ok: true };
    const now = this.clock();
    // A clock that steps backwards refills nothing rather than going negative.
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterMs: Math.ceil(((1 - this.tokens) * 1000) / this.perSecond) };
  }
}
