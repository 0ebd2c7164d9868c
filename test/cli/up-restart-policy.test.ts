/** `weft up`'s restart decision: crash history + clock in, a delay or giving up out. */
import t from 'tap';
import { decideRestart, recentCrashes, type RestartPolicy, UP_RESTART_POLICY } from '../../src/cli/up/restart-policy.js';

const policy: RestartPolicy = { windowMs: 60_000, maxCrashes: 5, backoff: { baseMs: 1000, maxMs: 16_000, jitter: 'equal' } };
const low = () => 0;
const high = () => 0.999_999;

t.test('the decision for each crash history', async (t) => {
  // [what, crash times (the last one is now), now, random, expected]
  const cases: Array<[string, number[], number, () => number, ReturnType<typeof decideRestart>]> = [
    ['the first crash restarts at once', [100_000], 100_000, high, { action: 'restart', delayMs: 0, crashes: 1 }],
    ['a crash long after the last one is a first crash again', [10_000, 100_000], 100_000, high, { action: 'restart', delayMs: 0, crashes: 1 }],
    ['a crash exactly one window later is a first crash', [40_000, 100_000], 100_000, high, { action: 'restart', delayMs: 0, crashes: 1 }],
    ['the second within the window waits half to all of 1 s (low)', [99_000, 100_000], 100_000, low, { action: 'restart', delayMs: 500, crashes: 2 }],
    ['the second within the window waits half to all of 1 s (high)', [99_000, 100_000], 100_000, high, { action: 'restart', delayMs: 1000, crashes: 2 }],
    ['the third waits 1-2 s', [90_000, 95_000, 100_000], 100_000, low, { action: 'restart', delayMs: 1000, crashes: 3 }],
    ['the fourth waits 2-4 s', [90_000, 93_000, 95_000, 100_000], 100_000, high, { action: 'restart', delayMs: 4000, crashes: 4 }],
    ['the fifth within the window gives up', [41_000, 50_000, 60_000, 70_000, 100_000], 100_000, low, { action: 'give-up', crashes: 5 }],
    ['five crashes spread over more than the window do not', [39_000, 50_000, 60_000, 70_000, 100_000], 100_000, low, { action: 'restart', delayMs: 2000, crashes: 4 }],
    ['history the caller did not prune is pruned', [1, 2, 3, 4, 5, 6, 100_000], 100_000, high, { action: 'restart', delayMs: 0, crashes: 1 }],
    ['an empty history counts as a first crash', [], 5, high, { action: 'restart', delayMs: 0, crashes: 1 }],
  ];
  for (const [what, crashes, now, random, expected] of cases) t.strictSame(decideRestart(crashes, now, policy, random), expected, what);
});

t.test('the backoff is capped', async (t) => {
  const many: RestartPolicy = { ...policy, maxCrashes: 100 };
  const crashes = Array.from({ length: 20 }, (_, i) => 1000 + i);
  t.strictSame(decideRestart(crashes, 1019, many, high), { action: 'restart', delayMs: 16_000, crashes: 20 });
});

t.test('weft up gives up after at most ~7 s of waiting, well inside its window', async (t) => {
  let waited = 0;
  const crashes: number[] = [];
  let now = 0;
  for (;;) {
    crashes.push(now);
    const d = decideRestart(crashes, now, UP_RESTART_POLICY, high);
    if (d.action === 'give-up') break;
    waited += d.delayMs;
    now += d.delayMs + 300; // each restarted piece dies 300 ms after it starts
  }
  t.equal(crashes.length, UP_RESTART_POLICY.maxCrashes);
  t.equal(waited, 7000);
  t.ok(now < UP_RESTART_POLICY.windowMs);
});

t.test('recentCrashes keeps what is inside the window', async (t) => {
  t.strictSame(recentCrashes([0, 10, 59_999, 60_000], 60_000, 60_000), [10, 59_999, 60_000]);
});
