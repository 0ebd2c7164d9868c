/**
 * The restart decision, as a pure function (Nomad's restart stanza): given the
 * policy, when earlier restarts happened and now, restart after a delay or
 * give up. Kept apart from the runner so the table of cases is cheap to test.
 */
import type { RestartPolicy } from '../base/contracts/alloc.js';

/** What to do after an exit. */
export type RestartDecision = { action: 'restart'; delayMs: number } | { action: 'fail'; reason: string };

/**
 * `history`: times (ms) of earlier restarts. At most `attempts` restarts fit in
 * any `interval`; past that, `fail` gives up and `delay` waits until the oldest
 * restart in the window leaves it (never less than `delay`).
 */
export function decideRestart(policy: RestartPolicy, history: readonly number[], now: number): RestartDecision {
  const recent = history.filter((at) => at > now - policy.interval && at <= now).sort((a, b) => a - b);
  if (recent.length < policy.attempts) return { action: 'restart', delayMs: policy.delay };
  if (policy.mode === 'fail') {
    return { action: 'fail', reason: `restart budget spent: ${policy.attempts} restart(s) within ${policy.interval} ms` };
  }
  const windowFrees = recent.length === 0 ? now : recent[recent.length - policy.attempts]! + policy.interval;
  return { action: 'restart', delayMs: Math.max(policy.delay, windowFrees - now) };
}
