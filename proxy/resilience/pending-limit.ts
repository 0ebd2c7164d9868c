/**
 * A bound on requests pending per service: an admission counter, not a
 * queue. When a service already has `limit` requests in flight through this
 * proxy, the next is refused at once with a reason the proxy sends back with
 * its 503, rather than piling up memory and latency behind a backend that is
 * not keeping up (Envoy's max_pending_requests circuit breaker plays this part).
 *
 * A slot is counted from admission, or, for a request admitted uncounted
 * (`tryAcquire(false)`: its body is still arriving), only from `count()`
 * (the body is complete). Such a request is refused when the service is full
 * but takes nothing from the others while its client is sending: a client
 * that never finishes its bodies costs its own connections (bounded per
 * listener, closed by the body-idle timeout), not every caller's admission.
 *
 * No clock is needed: admission depends only on the count.
 */
import { ERROR_CODES, type ErrorCode } from '../../base/errors.js';
import { numberOption } from '../options.js';

/** Envoy's default for max pending requests per cluster. */
export const DEFAULT_PENDING_LIMIT = 1024;

/** A granted slot; release it exactly once when the request ends (extra calls are ignored). */
export interface Admission {
  readonly ok: true;
  /** Starts counting a slot admitted uncounted (its body is complete); extra calls, and calls on a counted slot, are ignored. */
  count(): void;
  release(): void;
}

/** A refusal, with what the proxy answers. */
export interface Refusal {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly status: number;
  /** e.g. "weft: pending request limit 1024 reached for service backend". */
  readonly reason: string;
}

/** Pending-request admission for one service. */
export class PendingLimit {
  readonly service: string;
  readonly limit: number;
  #pending = 0;

  constructor(service: string, limit?: number) {
    this.service = service;
    this.limit = numberOption('proxy.pendingLimit', limit, DEFAULT_PENDING_LIMIT, { min: 1, integer: true });
  }

  /**
   * Admits one request, or says why not. `counted: false` admits it without
   * taking a slot until `count()` (a request whose body is still arriving).
   */
  tryAcquire(counted = true): Admission | Refusal {
    if (this.#pending >= this.limit) {
      return {
        ok: false,
        code: 'WEFT_ERR_PENDING_LIMIT',
        status: ERROR_CODES.WEFT_ERR_PENDING_LIMIT.status,
        reason: `weft: pending request limit ${this.limit} reached for service ${this.service}`,
      };
    }
    let holding = counted;
    let released = false;
    if (holding) this.#pending++;
    return {
      ok: true,
      count: () => {
        // Not refused now: the request is already on its way. The count may pass the limit for a moment.
        if (holding || released) return;
        holding = true;
        this.#pending++;
      },
      release: () => {
        // A double release would let the service exceed its limit later.
        if (released) return;
        released = true;
        if (holding) this.#pending--;
      },
    };
  }

  /** Requests admitted and not yet released. */
  get pending(): number {
    return this.#pending;
  }
}

/** One PendingLimit per service, created on first use with the default (or a per-service) limit. */
export class PendingLimits {
  readonly #limits = new Map<string, PendingLimit>();
  readonly #defaultLimit: number;
  readonly #overrides: ReadonlyMap<string, number>;

  constructor(options: { defaultLimit?: number | undefined; perService?: Readonly<Record<string, number>> | undefined } = {}) {
    this.#defaultLimit = numberOption('proxy.pendingLimit', options.defaultLimit, DEFAULT_PENDING_LIMIT, { min: 1, integer: true });
    const overrides = new Map<string, number>();
    for (const [service, limit] of Object.entries(options.perService ?? {})) {
      overrides.set(service, numberOption(`proxy.pendingLimits.${service}`, limit, DEFAULT_PENDING_LIMIT, { min: 1, integer: true }));
    }
    this.#overrides = overrides;
  }

  /** The limiter of `service`. */
  for(service: string): PendingLimit {
    let limit = this.#limits.get(service);
    if (limit === undefined) {
      limit = new PendingLimit(service, this.#overrides.get(service) ?? this.#defaultLimit);
      this.#limits.set(service, limit);
    }
    return limit;
  }

  /** Admits one request to `service`, or says why not (`counted`: see `PendingLimit.tryAcquire`). */
  tryAcquire(service: string, counted = true): Admission | Refusal {
    return this.for(service).tryAcquire(counted);
  }
}
