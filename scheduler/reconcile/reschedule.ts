/**
 * When a failed allocation is replaced on another node (Nomad's reschedule
 * policy): after a delay that is constant or doubles with each reschedule of
 * the chain up to a maximum, and, when attempts are limited, no more than
 * `attempts` within `interval`.
 */
import type { AllocInfo, ReschedulePolicy } from '../model.js';
import { backoffCeilingMs } from '../../base/backoff.js';

/** now: replace it; later: at `atMs`; never: the policy's attempts are spent. */
export type RescheduleDecision = { kind: 'now' } | { kind: 'later'; atMs: number } | { kind: 'never' };

/** The delay before the next reschedule of a chain that has been rescheduled `previous` times. */
export function rescheduleDelay(policy: ReschedulePolicy, previous: number): number {
  if (policy.delayFunction === 'constant') return policy.delayMs;
  // No jitter: the policy is the user's, and the pure core must give the same plan for the same state.
  return backoffCeilingMs(previous + 1, { baseMs: policy.delayMs, maxMs: policy.maxDelayMs > 0 ? policy.maxDelayMs : Number.POSITIVE_INFINITY });
}

/** Decides for one failed allocation at `nowMs`. */
export function rescheduleDecision(alloc: AllocInfo, policy: ReschedulePolicy, nowMs: number): RescheduleDecision {
  if (!policy.unlimited) {
    const recent = alloc.reschedules.filter((t) => nowMs - t < policy.intervalMs).length;
    if (recent >= policy.attempts) return { kind: 'never' };
  }
  const atMs = (alloc.failedAtMs ?? nowMs) + rescheduleDelay(policy, alloc.reschedules.length);
  return atMs <= nowMs ? { kind: 'now' } : { kind: 'later', atMs };
}
