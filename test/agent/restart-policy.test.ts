/** The restart decision as a table of cases. */
import t from 'tap';
import { decideRestart } from '../../agent/restart-policy.js';

const base = { attempts: 2, interval: 60_000, delay: 1_000, mode: 'fail' as const };
const now = 1_000_000;

const cases: Array<[name: string, policy: typeof base | (Omit<typeof base, 'mode'> & { mode: 'delay' }), history: number[], want: ReturnType<typeof decideRestart>['action'], delayMs?: number]> = [
  ['first exit restarts after the delay', base, [], 'restart', 1_000],
  ['one restart in the window: one left', base, [now - 5_000], 'restart', 1_000],
  ['budget spent, mode fail', base, [now - 5_000, now - 1_000], 'fail'],
  ['old restarts leave the window', base, [now - 70_000, now - 61_000], 'restart', 1_000],
  ['budget spent, mode delay: wait until the oldest leaves the window', { ...base, mode: 'delay' }, [now - 50_000, now - 1_000], 'restart', 10_000],
  ['mode delay never waits less than delay', { ...base, mode: 'delay' }, [now - 59_900, now - 100], 'restart', 1_000],
  ['zero attempts fails at once', { ...base, attempts: 0 }, [], 'fail'],
];

for (const [name, policy, history, want, delayMs] of cases) {
  t.test(name, async (t) => {
    const got = decideRestart(policy, history, now);
    t.equal(got.action, want);
    if (delayMs !== undefined && got.action === 'restart') t.equal(got.delayMs, delayMs);
  });
}
