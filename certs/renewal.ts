/**
 * Leaf renewal: at a random point between 60% and 90% of a leaf's lifetime,
 * so a fleet issued together does not come back to the CA together (the CA's
 * rate limit would push back on that herd). Failures retry with backoff until
 * one succeeds; `renewSoon()` serves root rotations, where every host should
 * move to the new root within a jittered window rather than at once.
 */
import { backoffDelayMs } from '../base/backoff.js';

/** Earliest and latest renewal points, as fractions of the lifetime. */
export const RENEW_FROM = 0.6;
export const RENEW_UNTIL = 0.9;

/** A leaf's validity window. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** When to renew: notBefore + lifetime x U(0.6, 0.9). `random` is in [0, 1). */
export function renewalTime(validity: Validity, random: number = Math.random()): Date {
  const start = validity.notBefore.getTime();
  const lifetime = validity.notAfter.getTime() - start;
  return new Date(start + lifetime * (RENEW_FROM + (RENEW_UNTIL - RENEW_FROM) * random));
}

/** Timer functions, injectable for tests. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref(); // a pending renewal must not keep a process alive on its own
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** setTimeout cannot wait longer than 2^31-1 ms; longer waits re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface RenewerOptions {
  /** The leaf in use now. */
  readonly current: Validity;
  /** Gets and installs a new leaf (new key, CSR, signature, setSecureContext); resolves to its validity. */
  readonly renew: () => Promise<Validity>;
  readonly onError?: (err: unknown) => void;
  /** First retry delay after a failure (doubles up to maxRetryMs). */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  readonly clock?: () => number;
  readonly random?: () => number;
  readonly timers?: Timers;
}

/** Keeps one leaf renewed. */
export class LeafRenewer {
  private validity: Validity;
  private handle: unknown;
  private running = false;
  private inFlight = false;
  private failures = 0;
  private dueAt = 0;
  private readonly opts: RenewerOptions;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly timers: Timers;

  constructor(opts: RenewerOptions) {
    this.opts = opts;
    this.validity = opts.current;
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
    this.timers = opts.timers ?? realTimers;
  }

  /** When the next renewal is scheduled (ms since the epoch), or undefined when stopped. */
  get nextRenewalAt(): number | undefined {
    return this.running ? this.dueAt : undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm(renewalTime(this.validity, this.random()).getTime());
  }

  stop(): void {
    this.running = false;
    if (this.handle !== undefined) this.timers.clear(this.handle);
    this.handle = undefined;
  }

  /** Renew within `windowMs` (jittered), e.g. after a root rotation; never later than already planned. */
  renewSoon(windowMs: number): void {
    if (!this.running) return;
    const at = this.clock() + windowMs * this.random();
    if (at < this.dueAt) this.arm(at);
  }

  private arm(at: number): void {
    if (this.handle !== undefined) this.timers.clear(this.handle);
    this.dueAt = at;
    const wait = Math.max(0, at - this.clock());
    this.handle = this.timers.set(() => (wait > MAX_TIMER_MS ? this.arm(at) : void this.fire()), Math.min(wait, MAX_TIMER_MS));
  }

  private async fire(): Promise<void> {
    this.handle = undefined;
    if (!this.running || this.inFlight) return;
    this.inFlight = true;
    try {
      this.validity = await this.opts.renew();
      this.failures = 0;
      if (this.running) this.arm(renewalTime(this.validity, this.random()).getTime());
    } catch (err) {
      this.failures++;
      this.opts.onError?.(err);
      // Jittered: hosts that lost the CA together must not all come back to it in the same second.
      const delay = backoffDelayMs(this.failures, { baseMs: this.opts.retryMs ?? 1000, maxMs: this.opts.maxRetryMs ?? 60_000, jitter: 'equal' }, this.random);
      if (this.running) this.arm(this.clock() + delay);
    } finally {
      this.inFlight = false;
    }
  }
}
