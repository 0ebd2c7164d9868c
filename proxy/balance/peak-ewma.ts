/**
 * Peak EWMA latency estimate, as in Finagle and Linkerd (tower's PeakEwma).
 *
 * - A sample above the estimate replaces it at once: a slowing endpoint is
 *   avoided on the first slow response, not after an average catches up.
 * - A sample below is blended in with weight 1 - e^(-elapsed/window): the
 *   longer since the last sample, the more the new one counts. So the window
 *   is in time, not in a number of requests.
 * - Between samples the estimate read by the picker decays toward zero with the
 *   same window, so an endpoint that was slow once (and so stopped getting
 *   traffic) is tried again.
 *
 * The window is at most `decayMs` (10 s, Linkerd's and Finagle's), and the
 * caller may pass a shorter one per call: P2C passes a window of ten of the
 * service's typical round trips (see p2c.ts), since 10 s is far too long for
 * a service answering in a millisecond.
 *
 * Unlike tower, reading the estimate does not store the decay: the result of a
 * sequence of samples does not depend on how often pick() looked, which keeps
 * tests and replays exact. And the first sample replaces the starting value,
 * which is only a guess: a measurement beats it.
 */

/** Default (and longest) decay window: Linkerd's and Finagle's. */
export const DEFAULT_DECAY_MS = 10_000;

/**
 * The estimate never reads below this (1 µs), so cost = estimate x
 * (outstanding + 1) still tells a busy endpoint from an idle one after hours
 * of decay.
 */
export const MIN_ESTIMATE_MS = 0.001;

/** One endpoint's latency estimate. */
export class PeakEwma {
  #estimateMs: number;
  #stampMs: number;
  #samples = 0;
  readonly #decayMs: number;

  /** Starts at `initialMs` (a seed, not a sample) as of `nowMs`. */
  constructor(initialMs: number, nowMs: number, decayMs: number = DEFAULT_DECAY_MS) {
    this.#estimateMs = Math.max(initialMs, MIN_ESTIMATE_MS);
    this.#stampMs = nowMs;
    this.#decayMs = decayMs;
  }

  /** The weight the old estimate keeps at `nowMs` under a window of min(decayMs, windowMs). */
  #keep(nowMs: number, windowMs: number): number {
    const elapsed = nowMs - this.#stampMs;
    return elapsed <= 0 ? 1 : Math.exp(-elapsed / (windowMs < this.#decayMs ? windowMs : this.#decayMs));
  }

  /** The estimate as of `nowMs`, decayed for the time since the last sample. Pure. */
  valueAt(nowMs: number, windowMs: number = this.#decayMs): number {
    const value = this.#estimateMs * this.#keep(nowMs, windowMs);
    return value > MIN_ESTIMATE_MS ? value : MIN_ESTIMATE_MS;
  }

  /** Folds in a latency sample taken at `nowMs`; returns the new estimate. */
  observe(sampleMs: number, nowMs: number, windowMs: number = this.#decayMs): number {
    const sample = Math.max(0, sampleMs);
    if (this.#samples === 0 || sample > this.#estimateMs) {
      this.#estimateMs = Math.max(sample, MIN_ESTIMATE_MS);
    } else {
      const w = this.#keep(nowMs, windowMs);
      this.#estimateMs = Math.max(this.#estimateMs * w + sample * (1 - w), MIN_ESTIMATE_MS);
    }
    // A clock that steps back must not rewind the stamp (and so inflate the next decay).
    this.#stampMs = Math.max(this.#stampMs, nowMs);
    this.#samples++;
    return this.#estimateMs;
  }

  /** How many samples have been folded in (0 = still the seed). */
  get samples(): number {
    return this.#samples;
  }
}
