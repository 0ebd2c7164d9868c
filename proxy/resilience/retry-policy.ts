/**
 * When the proxy may send a request again, and after how long.
 *
 * Decisions (docs: proxy/README.md, "Retries"):
 * - Retried outcomes: 502, 503, 504, a reset connection and a per-try timeout,
 *   for idempotent requests only: the first attempt may have reached the app.
 * - A connect error (no connection, so no byte of the request was sent) is
 *   retried for every method, POST included: the app cannot have seen it.
 * - Idempotent = GET, HEAD, OPTIONS, PUT, DELETE, TRACE (RFC 9110 9.2.2).
 *   POST, PATCH and any other method count as idempotent when the client says
 *   so, with `x-weft-retryable: true` or an `Idempotency-Key` header (the
 *   IETF draft's way of making POST safe to repeat).
 * - `x-weft-retryable: false` turns retries off for that request entirely.
 * - A request whose body was streamed (not buffered) is never retried: the
 *   bytes are gone, and replaying half a body would be worse than a 502.
 * - At most `maxRetries` (default 2) per request, only while the deadline
 *   leaves time for the backoff and a useful attempt, and only while the
 *   service's retry budget allows. The budget is checked last so a retry
 *   refused for any other reason does not spend it.
 */
import { type Random, systemRandom } from '../../base/clock.js';
import { numberOption } from '../options.js';
import { type BackoffPolicy, backoffDelayMs, backoffPolicy } from './backoff.js';
import { DEFAULT_MIN_TRY_MS, type Deadline } from './deadline.js';
import type { RetryBudget } from './retry-budget.js';

/** Request header: `true` makes any method retryable, `false` disables retries. */
export const HEADER_RETRYABLE = 'x-weft-retryable';

/** Request header (IETF httpapi draft): its presence makes POST/PATCH retryable. */
export const HEADER_IDEMPOTENCY_KEY = 'idempotency-key';

/** Methods that are idempotent by definition (RFC 9110 9.2.2). */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** Response statuses that mean "another instance might do better". */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([502, 503, 504]);

/** Default retries per request, after the first attempt. */
export const DEFAULT_MAX_RETRIES = 2;

/** Header values as Node gives them (lower-case names). */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/** What the policy needs to know about a request. */
export interface RetryRequest {
  readonly method: string;
  readonly headers: HeaderMap;
  /** True when the whole body is held in memory (or there is none), so it can be sent again. */
  readonly bodyBuffered: boolean;
}

/** How one attempt ended. */
export type AttemptOutcome =
  /** No connection was made: the request was not sent. */
  | { readonly kind: 'connect-error' }
  /** The connection broke after the request was (perhaps partly) sent. */
  | { readonly kind: 'reset' }
  /** The per-try timeout fired before a response head arrived. */
  | { readonly kind: 'timeout' }
  | { readonly kind: 'response'; readonly status: number };

/** Which outcomes a request may be retried on. */
export type Retryability = 'any-failure' | 'connect-only' | 'never';

/** Why the policy said no; for logs and a metric label. */
export type GiveUpReason =
  | 'opted-out'
  | 'body-streamed'
  | 'not-idempotent'
  | 'not-retryable'
  | 'max-retries'
  | 'deadline'
  | 'budget-exhausted';

/** The answer after a failed attempt. */
export type RetryDecision = { readonly retry: true; readonly delayMs: number } | { readonly retry: false; readonly reason: GiveUpReason };

/** Options of a retry policy. */
export interface RetryPolicyOptions {
  /** The service's budget; the policy withdraws from it when it says retry. */
  readonly budget: RetryBudget;
  readonly random?: Random | undefined;
  readonly maxRetries?: number | undefined;
  readonly backoff?: { baseMs?: number | undefined; maxMs?: number | undefined } | undefined;
  /** Smallest attempt worth making after the wait (default 10 ms). */
  readonly minTryMs?: number | undefined;
}

/** One service's retry policy. */
export class RetryPolicy {
  readonly #budget: RetryBudget;
  readonly #random: Random;
  readonly #maxRetries: number;
  readonly #backoff: BackoffPolicy;
  readonly #minTryMs: number;

  constructor(options: RetryPolicyOptions) {
    this.#budget = options.budget;
    this.#random = options.random ?? systemRandom;
    this.#maxRetries = numberOption('retry.maxRetries', options.maxRetries, DEFAULT_MAX_RETRIES, { min: 0, max: 100, integer: true });
    this.#backoff = backoffPolicy(options.backoff);
    this.#minTryMs = numberOption('retry.minTryMs', options.minTryMs, DEFAULT_MIN_TRY_MS, { min: 0 });
  }

  /** Counts a new request into the budget: call once per request received, before its first attempt. */
  onRequest(): void {
    this.#budget.deposit();
  }

  /**
   * Decides after a failed attempt. `retriesSoFar` is 0 after the first
   * attempt. A `retry: true` answer has already spent one retry from the budget.
   */
  decide(req: RetryRequest, outcome: AttemptOutcome, retriesSoFar: number, deadline: Deadline): RetryDecision {
    const kind = retryability(req);
    if (kind.retryability === 'never') return { retry: false, reason: kind.reason };
    if (!isFailure(outcome)) return { retry: false, reason: 'not-retryable' };
    if (outcome.kind !== 'connect-error' && kind.retryability === 'connect-only') return { retry: false, reason: 'not-idempotent' };
    if (retriesSoFar >= this.#maxRetries) return { retry: false, reason: 'max-retries' };
    const delayMs = backoffDelayMs(retriesSoFar + 1, this.#backoff, this.#random);
    if (!deadline.allows(delayMs, this.#minTryMs)) return { retry: false, reason: 'deadline' };
    if (!this.#budget.tryWithdraw()) return { retry: false, reason: 'budget-exhausted' };
    return { retry: true, delayMs };
  }
}

/** Which outcomes `req` may be retried on, and why not when never. */
export function retryability(
  req: RetryRequest,
): { retryability: 'any-failure' | 'connect-only' } | { retryability: 'never'; reason: 'opted-out' | 'body-streamed' } {
  const flag = header(req.headers, HEADER_RETRYABLE)?.trim().toLowerCase();
  if (flag === 'false') return { retryability: 'never', reason: 'opted-out' };
  if (!req.bodyBuffered) return { retryability: 'never', reason: 'body-streamed' };
  if (IDEMPOTENT_METHODS.has(req.method.toUpperCase())) return { retryability: 'any-failure' };
  if (flag === 'true' || header(req.headers, HEADER_IDEMPOTENCY_KEY) !== undefined) return { retryability: 'any-failure' };
  return { retryability: 'connect-only' };
}

/** True for the outcomes worth another attempt (for some requests). */
export function isFailure(outcome: AttemptOutcome): boolean {
  return outcome.kind !== 'response' || RETRYABLE_STATUSES.has(outcome.status);
}

/** First value of a header (Node lower-cases names). */
function header(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  return typeof v === 'string' ? v : v?.[0];
}
