/**
 * The one polling helper of the tests: waits for something a daemon, a child
 * process or a watch does on its own time.
 */
import { backoffCeilingMs } from '../../base/backoff.js';

/** What `eventually` treats as "not yet": a lookup's undefined/null, a predicate's false. */
type NotYet = undefined | null | false;

/**
 * Calls `fn` until it returns something other than undefined, null or false,
 * and returns that (so a predicate and a lookup both fit). A throw counts as
 * "not yet" (a daemon still starting refuses connections); after `timeoutMs`
 * the error names `what` and the last failure.
 *
 * The pause between calls starts at 10 ms and doubles up to `everyMs`: a
 * condition that is nearly there is seen at once, a slow one is not polled
 * hard while the machine is busy starting it.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  timeoutMs = 3000,
  what = 'condition',
  everyMs = 100,
): Promise<Exclude<T, NotYet>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (let attempt = 1; ; attempt++) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, NotYet>;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`, { cause: last });
    }
    const pause = backoffCeilingMs(attempt, { baseMs: Math.min(10, everyMs), maxMs: everyMs });
    await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
  }
}
