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
 * Time is counted in the service's own round trips. The picker keeps the
 * service's typical latency (an EWMA of successful responses, each counted
 * as at most 4x the typical, so one stall moves it by 15% at most), and:
 * - the estimates decay with a window of `decayRoundTrips` (10) typical round
 *   trips, at most 10 s. P2C never picks the dearer of two endpoints, so an
 *   endpoint that looks dearer than its peers gets no samples, and only this
 *   decay brings it back. With Linkerd's fixed 10 s window, one response of
 *   20x the usual latency kept one of three identical instances out for
 *   10 s x ln 20 = 30 s. Now an endpoint R times slower than usual waits
 *   about 10 x ln R round trips for its next try: a stall costs a moment, a
 *   really slow endpoint keeps losing;
 * - an endpoint not measured yet reads as the typical latency: neither
 *   starved (a 30 ms default beside peers answering in 1 ms looked 30 times
 *   dearer, so 1,000 sequential requests over three went 0/469/531) nor
 *   flooded (zero, as Finagle starts). And while it is idle it wins against
 *   a measured peer, so it gets one probe: the typical latency can sit above
 *   a fast peer's own estimate (it moves slowly), and with two endpoints
 *   sequential requests then never reached the new one.
 * See "What starved, and the fix" in proxy/README.md for the figures.
 *
 * O(1) per pick without an availability hook; with one, hidden endpoints are
 * skipped by resampling a few times, then by filtering.
 */
import { type Clock, type Random, systemClock, systemRandom } from '../../base/clock.js';
import { numberOption } from '../options.js';
import { DEFAULT_DECAY_MS, MIN_ESTIMATE_MS, PeakEwma } from './peak-ewma.js';
import type { AttemptResult, Availability, Endpoint, Picker } from './picker.js';
import { uniqueById } from './picker.js';

/** Linkerd's default RTT: the typical latency before anything is measured. */
export const DEFAULT_RTT_MS = 30;

/** The decay window in typical round trips of the service (see the file comment). */
export const DEFAULT_DECAY_ROUND_TRIPS = 10;

/** Weight of one response in the typical latency: about the last 20 responses. */
export const TYPICAL_WEIGHT = 0.05;

/** A response counts in the typical latency as at most this many times it, so one stall moves it by 15% at most. */
export const TYPICAL_CLAMP = 4;

/** What a failed request counts as, at least (see the file comment). */
export const DEFAULT_FAILURE_PENALTY_MS = 1_000;

/** Resamples before falling back to filtering the available endpoints. */
const RESAMPLES = 4;

/** Options of a P2C picker. */
export interface P2cOptions<E extends Endpoint = Endpoint> {
  readonly now?: Clock | undefined;
  readonly random?: Random | undefined;
  /** Longest time window of the peak EWMA (default 10 s). */
  readonly decayMs?: number | undefined;
  /** Time window of the peak EWMA in typical round trips of the service (default 10), at most decayMs. */
  readonly decayRoundTrips?: number | undefined;
  /** The typical latency before anything is measured (default 30 ms). */
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
  readonly #decayRoundTrips: number;
  /** The service's typical latency: an EWMA of successful responses, clamped (TYPICAL_CLAMP). */
  #typicalMs: number;
  #measured = false;
  readonly #failurePenaltyMs: number;
  readonly #available: Availability<E> | undefined;
  readonly #panic: boolean;

  constructor(endpoints: readonly E[] = [], options: P2cOptions<E> = {}) {
    this.#now = options.now ?? systemClock;
    this.#random = options.random ?? systemRandom;
    this.#decayMs = numberOption('balance.decayMs', options.decayMs, DEFAULT_DECAY_MS, { min: 1 });
    this.#decayRoundTrips = numberOption('balance.decayRoundTrips', options.decayRoundTrips, DEFAULT_DECAY_ROUND_TRIPS, { min: 0.001 });
    const defaultRttMs = numberOption('balance.defaultRttMs', options.defaultRttMs, DEFAULT_RTT_MS, { min: 0 });
    this.#typicalMs = Math.max(defaultRttMs, MIN_ESTIMATE_MS);
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

  /**
   * The cheaper of two; a tie goes to the first (already a random choice).
   * An idle endpoint never measured wins against a measured one: it gets one
   * probe, then competes on its own figure (see the file comment).
   */
  #cheaper(a: State<E>, b: State<E>): State<E> {
    const aNew = a.ewma.samples === 0 && a.outstanding === 0;
    const bNew = b.ewma.samples === 0 && b.outstanding === 0;
    if (aNew !== bNew) return aNew ? a : b;
    const now = this.#now();
    const window = this.#window();
    return this.#cost(b, now, window) < this.#cost(a, now, window) ? b : a;
  }

  #cost(s: State<E>, now: number, window: number): number {
    return (this.#estimate(s, now, window) * (s.outstanding + 1)) / s.weight;
  }

  /** An unmeasured endpoint reads as the typical latency. */
  #estimate(s: State<E>, now: number, window: number): number {
    return s.ewma.samples === 0 ? this.#typicalMs : s.ewma.valueAt(now, window);
  }

  /** The decay window now, the same for every endpoint. */
  #window(): number {
    return this.#typicalMs * this.#decayRoundTrips;
  }

  update(endpoints: readonly E[]): void {
    const now = this.#now();
    const next = new Map<string, State<E>>();
    const eligible: State<E>[] = [];
    for (const endpoint of uniqueById(endpoints)) {
      const old = this.#byId.get(endpoint.id);
      const state: State<E> = old === undefined
        ? { endpoint, weight: endpoint.weight, ewma: new PeakEwma(this.#typicalMs, now, this.#decayMs), outstanding: 0 }
        : { ...old, endpoint, weight: endpoint.weight };
      next.set(endpoint.id, state);
      if (state.weight > 0) eligible.push(state);
    }
    this.#byId = next;
    this.#eligible = eligible;
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
    const latency = Math.max(result.latencyMs, MIN_ESTIMATE_MS);
    if (result.ok) {
      // The first measurement replaces the default, as it does an endpoint's seed.
      this.#typicalMs = this.#measured ? this.#typicalMs + TYPICAL_WEIGHT * (Math.min(latency, TYPICAL_CLAMP * this.#typicalMs) - this.#typicalMs) : latency;
      this.#measured = true;
    }
    const sample = result.ok ? latency : Math.max(latency, this.#failurePenaltyMs);
    s.ewma.observe(sample, this.#now(), this.#window());
  }

  /** The current latency estimate of an endpoint (for metrics and tests). */
  estimateMs(id: string): number | undefined {
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    return this.#estimate(s, this.#now(), this.#window());
  }

  /** The service's typical latency: what an unmeasured endpoint reads as, and the unit of the decay window. */
  typicalMs(): number {
    return this.#typicalMs;
  }

  /** Requests in flight to an endpoint, as counted by onStart/onEnd. */
  outstanding(id: string): number | undefined {
    return this.#byId.get(id)?.outstanding;
  }

  /** The cost the picker compares (estimate x (outstanding + 1) / weight); Infinity when drained. */
  cost(id: string): number | undefined {
    const s = this.#byId.get(id);
    if (s === undefined) return undefined;
    if (s.weight === 0) return Number.POSITIVE_INFINITY;
    return this.#cost(s, this.#now(), this.#window());
  }
}
