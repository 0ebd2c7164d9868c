/**
 * Power of two choices over peak-EWMA cost: Linkerd's default balancer.
 *
 * Pick two distinct endpoints at random and take the cheaper, where
 * cost = latency estimate x (outstanding + 1) / weight. Two random choices
 * avoid the herd that "always the best" causes when many proxies share stale
 * information, while still steering away from slow or busy endpoints. Dividing
 * by weight makes a weight-3 endpoint look three times cheaper, so it carries
 * about three times the load at equal latency.
 *
 * Failures count as slow: a fast 503 must not make a broken endpoint look like
 * the best one, so a failed request is sampled as at least `failurePenaltyMs`.
 *
 * O(1) per pick without an availability hook; with one, hidden endpoints are
 * skipped by resampling a few times, then by filtering.
 */
import { type Clock, type Random, systemClock, systemRandom } from '../../base/clock.js';
import { numberOption } from '../options.js';
import { DEFAULT_DECAY_MS, PeakEwma } from './peak-ewma.js';
import type { AttemptResult, Availability, Endpoint, Picker } from './picker.js';
import { uniqueById } from './picker.js';

/** Linkerd's default RTT for an endpoint nothing is known about. */
export const DEFAULT_RTT_MS = 30;

/** What a failed request counts as, at least (see the file comment). */
export const DEFAULT_FAILURE_PENALTY_MS = 1_000;

/** Resamples before falling back to filtering the available endpoints. */
const RESAMPLES = 4;

/** Options of a P2C picker. */
export interface P2cOptions<E extends Endpoint = Endpoint> {
  readonly now?: Clock | undefined;
  readonly random?: Random | undefined;
  /** Time window of the peak EWMA (default 10 s). */
  readonly decayMs?: number | undefined;
  /** Estimate for a new endpoint when no endpoint has been measured yet (default 30 ms). */
  readonly defaultRttMs?: number | undefined;
  /** A failed request is sampled as max(latency, this) (default 1 s). */
  readonly failurePenaltyMs?: number | undefined;
  /** Hides endpoints without forgetting their estimate (outlier ejection). */
  readonly available?: Availability<E> | undefined;
  /** When every weighted endpoint is hidden, pick among them anyway (default true). */
  readonly panic?: boolean | undefined;
}

interface State<E> {
  endpoint: E;
  weight: number;
  ewma: PeakEwma;
  outstanding: number;
}

/** Power of two choices on peak-EWMA latency x outstanding requests, weight-aware. */
export class P2cPicker<E extends Endpoint = Endpoint> implements Picker<E> {
  #byId = new Map<string, State<E>>();
  /** Endpoints with weight > 0: the only ones ever picked. */
  #eligible: State<E>[] = [];
  readonly #now: Clock;
  readonly #random: Random;
  readonly #decayMs: number;
  readonly #defaultRttMs: number;
  readonly #failurePenaltyMs: number;
  readonly #available: Availability<E> | undefined;
  readonly #panic: boolean;

  constructor(endpoints: readonly E[] = [], options: P2cOptions<E> = {}) {
    this.#now = options.now ?? systemClock;
    this.#random = options.random ?? systemRandom;
    this.#decayMs = numberOption('balance.decayMs', options.decayMs, DEFAULT_DECAY_MS, { min: 1 });
    this.#defaultRttMs = numberOption('balance.defaultRttMs', options.defaultRttMs, DEFAULT_RTT_MS, { min: 0 });
    this.#failurePenaltyMs = numberOption('balance.failurePenaltyMs', options.failurePenaltyMs, DEFAULT_FAILURE_PENALTY_MS, {
      min: 0,
    });
    this.#available = options.available;
    this.#panic = options.panic ?? true;
    this.update(endpoints);
  }

  pick(): E | undefined {
    const n = this.#eligible.length;
    if (n === 0) return undefined;
    if (this.#available !== undefined) {
      const chosen = this.#pickAvailable(this.#available);
      if (chosen !== undefined || !this.#panic) return chosen?.endpoint;
    }
    if (n === 1) return this.#eligible[0]!.endpoint;
    const i = this.#index(n);
    let j = this.#index(n - 1);
    if (j >= i) j++;
    return this.#cheaper(this.#eligible[i]!, this.#eligible[j]!).endpoint;
  }

  #pickAvailable(available: Availability<E>): State<E> | undefined {
    const a = this.#candidate(available, undefined);
    if (a === undefined) return undefined;
    const b = this.#candidate(available, a);
    return b === undefined ? a : this.#cheaper(a, b);
  }

  /** A uniformly random available endpoint other than `not`. */
  #candidate(available: Availability<E>, not: State<E> | undefined): State<E> | undefined {
    const list = this.#eligible;
    for (let tries = 0; tries < RESAMPLES; tries++) {
      const s = list[this.#index(list.length)]!;
      if (s !== not && available(s.endpoint)) return s;
    }
    const left = list.filter((s) => s !== not && available(s.endpoint));
    return left.length === 0 ? undefined : left[this.#index(left.length)];
  }

  #index(n: number): number {
    // min() guards a random source that returns exactly 1.
    return Math.min(Math.floor(this.#random() * n), n - 1);
  }

  /** The cheaper of two; a tie goes to the first (already a random choice). */
  #cheaper(a: State<E>, b: State<E>): State<E> {
    const now = this.#now();
    return this.#cost(b, now) < this.#cost(a, now) ? b : a;
  }

  #cost(s: State<E>, now: number): number {
    return (s.ewma.valueAt(now) * (s.outstanding + 1)) / s.weight;
  }

  update(endpoints: readonly E[]): void {
    const now = this.#now();
    const seed = this.#seedEstimate(now);
    const next = new Map<string, State<E>>();
    const eligible: State<E>[] = [];
    for (const endpoint of uniqueById(endpoints)) {
      const old = this.#byId.get(endpoint.id);
      const state: State<E> = old === undefined
        ? { endpoint, weight: endpoint.weight, ewma: new PeakEwma(seed, now, this.#decayMs), outstanding: 0 }
        : { ...old, endpoint, weight: endpoint.weight };
      next.set(endpoint.id, state);
      if (state.weight > 0) eligible.push(state);
    }
    this.#byId = next;
    this.#eligible = eligible;
  }

  /**
   * A new endpoint starts at the mean estimate of the measured ones: neutral,
   * so it is tried about as often as an average peer, neither starved (a high
   * default) nor flooded (zero, as Finagle starts). Nothing measured -> 30 ms.
   */
  #seedEstimate(now: number): number {
    let sum = 0;
    let count = 0;
    for (const s of this.#byId.values()) {
      if (s.ewma.samples === 0) continue;
      sum += s.ewma.valueAt(now);
      count++;
    }
    return count === 0 ? this.#defaultRttMs : sum / count;
  }

  onStart(endpoint: E): void {
    const s = this.#byId.get(endpoint.id);
    if (s !== undefined) s.outstanding++;
  }

  onEnd(endpoint: E, result: AttemptResult): void {
    // An endpoint removed by update() while its request was in flight is simply forgotten.
    const s = this.#byId.get(endpoint.id);
    if (s === undefined) return;
    if (s.outstanding > 0) s.outstanding--;
    const sample = result.ok ? result.latencyMs : Math.max(result.latencyMs, this.#failurePenaltyMs);
    s.ewma.observe(sample, this.#now());
  }

  /** The current latency estimate of an endpoint (for metrics and tests). */
  estimateMs(id: string): number | undefined {
    return this.#byId.get(id)?.ewma.valueAt(this.#now());
  }

  /** Requests in flight to an endpoint, as counted by onStart/onEnd. */
  outstanding(id: string): number | undefined {
    return this.#byId.get(id)?.outstanding;
  }

  /** The cost the picker compares (estimate x (outstanding + 1) / weight); Infinity when drained. */
  cost(id: string): number | undefined {
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    return s.weight === 0 ? Number.POSITIVE_INFINITY : this.#cost(s, this.#now());
  }
}
