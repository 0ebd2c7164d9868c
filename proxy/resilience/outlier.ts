/**
 * Passive outlier ejection (Envoy's consecutive-5xx detector): the proxy
 * watches real traffic, and a host that fails `consecutiveFailures` (5) times
 * in a row is taken out of balancing for a while.
 *
 * - Ejection lasts base (30 s) x the number of times the host has been
 *   ejected, capped (300 s): a host that keeps failing stays out longer.
 * - The count steps down by one for every `maxEjectionMs` (300 s) the host
 *   then stays in service, so a host that behaves earns its short ejections back.
 * - Hosts return by themselves when their time is up: nothing needs to tick,
 *   the check is against the injected clock.
 * - At most `maxEjectionPercent` (50%) of hosts are out at once, and a lone
 *   host is never ejected: ejecting most of a service turns a partial failure
 *   into overload of the rest. A host over the threshold but refused by the
 *   cap is ejected on its next failure if room has freed up.
 * - Any success resets the consecutive count. Results that arrive while a host
 *   is ejected (requests started before) do not count against it.
 *
 * What counts as a failure (connect error, reset, 5xx) is the proxy's call.
 */
import { type Clock, systemClock } from '../../base/clock.js';
import { numberOption } from '../options.js';

/** Envoy's defaults, except max ejection percent (Envoy: 10%) which the proxy issue sets at 50%. */
export const DEFAULT_CONSECUTIVE_FAILURES = 5;
export const DEFAULT_BASE_EJECTION_MS = 30_000;
export const DEFAULT_MAX_EJECTION_MS = 300_000;
export const DEFAULT_MAX_EJECTION_PERCENT = 50;

/** Options of an outlier detector. */
export interface OutlierOptions {
  readonly now?: Clock | undefined;
  readonly consecutiveFailures?: number | undefined;
  readonly baseEjectionMs?: number | undefined;
  readonly maxEjectionMs?: number | undefined;
  readonly maxEjectionPercent?: number | undefined;
}

/** What happened when a host was ejected; for a log line and a metric. */
export interface Ejection {
  readonly id: string;
  /** This is the host's n-th ejection (after step-downs). */
  readonly ejections: number;
  readonly durationMs: number;
  readonly untilMs: number;
}

interface HostState {
  consecutive: number;
  ejections: number;
  /** Ejected while now < ejectedUntil. */
  ejectedUntil: number;
  /** Since when the ejection count has been stepping down (the last return). */
  stepFrom: number;
}

/** Consecutive-failure outlier detection for one service's hosts. */
export class OutlierDetector {
  readonly #now: Clock;
  readonly #threshold: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #maxPercent: number;
  #hosts = new Map<string, HostState>();

  constructor(ids: Iterable<string> = [], options: OutlierOptions = {}) {
    this.#now = options.now ?? systemClock;
    this.#threshold = numberOption('outlier.consecutiveFailures', options.consecutiveFailures, DEFAULT_CONSECUTIVE_FAILURES, {
      min: 1,
      integer: true,
    });
    this.#baseMs = numberOption('outlier.baseEjectionMs', options.baseEjectionMs, DEFAULT_BASE_EJECTION_MS, { min: 1 });
    this.#maxMs = numberOption('outlier.maxEjectionMs', options.maxEjectionMs, Math.max(DEFAULT_MAX_EJECTION_MS, this.#baseMs), {
      min: this.#baseMs,
    });
    this.#maxPercent = numberOption('outlier.maxEjectionPercent', options.maxEjectionPercent, DEFAULT_MAX_EJECTION_PERCENT, {
      min: 0,
      max: 100,
    });
    this.update(ids);
  }

  /** Sets the host set (ids). Hosts that stay keep their history; removed ones are forgotten. */
  update(ids: Iterable<string>): void {
    const next = new Map<string, HostState>();
    for (const id of ids) {
      next.set(id, this.#hosts.get(id) ?? { consecutive: 0, ejections: 0, ejectedUntil: Number.NEGATIVE_INFINITY, stepFrom: 0 });
    }
    this.#hosts = next;
  }

  /**
   * Records how a request to `id` went. Returns the ejection when this result
   * ejected the host. Unknown ids (not in update()) are ignored.
   */
  onResult(id: string, ok: boolean): Ejection | undefined {
    const host = this.#hosts.get(id);
    if (host === undefined) return undefined;
    const now = this.#now();
    if (ok) {
      host.consecutive = 0;
      return undefined;
    }
    if (now < host.ejectedUntil) return undefined;
    host.consecutive++;
    if (host.consecutive < this.#threshold || !this.#roomToEject(now)) return undefined;
    this.#stepDown(host, now);
    host.ejections++;
    host.consecutive = 0;
    const durationMs = Math.min(this.#baseMs * host.ejections, this.#maxMs);
    host.ejectedUntil = now + durationMs;
    host.stepFrom = host.ejectedUntil;
    return { id, ejections: host.ejections, durationMs, untilMs: host.ejectedUntil };
  }

  /** True while `id` is ejected. */
  isEjected(id: string): boolean {
    const host = this.#hosts.get(id);
    return host !== undefined && this.#now() < host.ejectedUntil;
  }

  /** An availability hook for the pickers: hides ejected hosts without dropping their state. */
  readonly available = (endpoint: { readonly id: string }): boolean => !this.isEjected(endpoint.id);

  /** Ids ejected now, sorted (for metrics and logs). */
  ejected(): string[] {
    const now = this.#now();
    return [...this.#hosts].filter(([, h]) => now < h.ejectedUntil).map(([id]) => id).sort();
  }

  /** How many times `id` counts as ejected, after step-downs (what the next ejection multiplies, minus one). */
  ejectionCount(id: string): number | undefined {
    const host = this.#hosts.get(id);
    if (host === undefined) return undefined;
    this.#stepDown(host, this.#now());
    return host.ejections;
  }

  /** Whether one more ejection keeps the ejected share within the cap. */
  #roomToEject(now: number): boolean {
    let ejected = 0;
    for (const h of this.#hosts.values()) if (now < h.ejectedUntil) ejected++;
    return (ejected + 1) * 100 <= this.#hosts.size * this.#maxPercent;
  }

  /** Applies the step-downs earned since the host came back. */
  #stepDown(host: HostState, now: number): void {
    if (host.ejections === 0 || now < host.ejectedUntil) return;
    const steps = Math.floor((now - host.stepFrom) / this.#maxMs);
    if (steps <= 0) return;
    host.ejections = Math.max(0, host.ejections - steps);
    host.stepFrom += steps * this.#maxMs;
  }
}
