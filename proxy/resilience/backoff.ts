/**
 * The retry policy's backoff: base/backoff.ts with full jitter (the AWS
 * architecture blog's "Exponential Backoff And Jitter"; Envoy retries the same
 * way). The ceiling doubles per retry up to a cap, and the wait is uniform
 * below it: jitter stops every proxy that saw the same failure from retrying
 * in lockstep. This file adds the validated policy and Envoy's defaults.
 */
import { backoffDelayMs as baseBackoffDelayMs } from '../../base/backoff.js';
import type { Random } from '../../base/clock.js';
import { numberOption } from '../options.js';

/** Envoy's defaults: 25 ms base, 10x for the cap. */
export const DEFAULT_BACKOFF_BASE_MS = 25;
export const DEFAULT_BACKOFF_MAX_MS = 250;

/** Backoff bounds, validated. */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** Validates backoff bounds (WEFT_ERR_CONFIG_INVALID) and fills defaults; frozen. */
export function backoffPolicy(opts: { baseMs?: number | undefined; maxMs?: number | undefined } = {}): BackoffPolicy {
  const baseMs = numberOption('retry.backoff.baseMs', opts.baseMs, DEFAULT_BACKOFF_BASE_MS, { min: 0 });
  const maxMs = numberOption('retry.backoff.maxMs', opts.maxMs, Math.max(DEFAULT_BACKOFF_MAX_MS, baseMs), { min: baseMs });
  return Object.freeze({ baseMs, maxMs });
}

/** The ceiling before the `retry`-th retry (1-based): base x 2^(retry-1), capped. */
export { backoffCeilingMs } from '../../base/backoff.js';

/** How long to wait before the `retry`-th retry: uniform in [0, ceiling), whole milliseconds. */
export function backoffDelayMs(retry: number, policy: BackoffPolicy, random: Random): number {
  return baseBackoffDelayMs(retry, { baseMs: policy.baseMs, maxMs: policy.maxMs, jitter: 'full' }, random);
}
