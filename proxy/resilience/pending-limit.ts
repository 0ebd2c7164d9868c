/**
 * A bound on requests pending per service: an admission counter, not a
 * queue. When a service already has `limit` requests in flight through this
 * proxy, the next is refused at once with a reason the proxy sends back with
 * its 503, rather than piling up memory and latency behind a backend that is
 * not keeping up (Envoy's max_pending_requests circuit breaker plays this part).
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

  /** Admits one request, or says why not. */
  tryAcquire(): Admission | Refusal {
    if (this.#pending >= this.limit) {
      return {
        ok: false,
        code: 'WEFT_ERR_PENDING_LIMIT',
        status: ERROR_CODES.WEFT_ERR_PENDING_LIMIT.status,
        reason: `weft: pending request limit ${this.limit} reached for service ${this.service}`,
      };
    }
    this.#pending++;
    let released = false;
    return {
      ok: true,
      release: () => {
        // A double release would let the service exceed its limit later.
        if (released) return;
        released = true;
        this.#pending--;
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

  /** Admits one request to `service`, or says why not. */
  tryAcquire(service: string): Admission | Refusal {
    return this.for(service).tryAcquire();
  }
}
