/** base/backoff.ts, the one backoff of weft: ceilings, both jitters at the ends of the random range, and sleepBackoff on a manual clock. */
import t from 'tap';
import { type Backoff, backoffCeilingMs, backoffDelayMs, sleepBackoff } from '../../base/backoff.js';
import { seededRandom } from '../../base/clock.js';
import { manualClock } from '../helpers/manual-clock.js';

/** The largest number Math.random() can return. */
const ALMOST_ONE = 1 - 2 ** -53;

t.test('the ceiling doubles per attempt from the base and stops at the cap', async (t) => {
  const cases: Array<[attempt: number, base: number, max: number, ceiling: number, why: string]> = [
    [1, 100, 30_000, 100, 'the first attempt waits at most the base'],
    [2, 100, 30_000, 200, 'doubles'],
    [3, 100, 30_000, 400, 'doubles again'],
    [9, 100, 30_000, 25_600, 'last step under the cap'],
    [10, 100, 30_000, 30_000, 'capped'],
    [1000, 100, 30_000, 30_000, 'no overflow for a long outage'],
    [0, 100, 30_000, 100, 'attempt 0 counts as the first'],
    [-3, 100, 30_000, 100, 'so does a negative one'],
    [1, 500, 200, 200, 'a base above the cap is capped'],
    [5, 10, 200, 160, "kv's CAS ceilings: 10, 20, 40, 80, 160"],
    [6, 10, 200, 200, '... then 200'],
  ];
  for (const [attempt, baseMs, maxMs, ceiling, why] of cases) {
    t.equal(backoffCeilingMs(attempt, { baseMs, maxMs }), ceiling, `attempt ${attempt}, base ${baseMs}, cap ${maxMs}: ${why}`);
  }
});

t.test('full jitter is in [0, ceiling); equal jitter in [ceiling/2, ceiling]', async (t) => {
  const full: Backoff = { baseMs: 100, maxMs: 30_000, jitter: 'full' };
  const equal: Backoff = { ...full, jitter: 'equal' };
  const cases: Array<[backoff: Backoff, attempt: number, random: number, delay: number]> = [
    [full, 1, 0, 0],
    [full, 1, 0.5, 50],
    [full, 1, ALMOST_ONE, 99],
    [full, 4, 0, 0],
    [full, 4, ALMOST_ONE, 799],
    [full, 1000, ALMOST_ONE, 29_999],
    [equal, 1, 0, 50],
    [equal, 1, 0.5, 75],
    [equal, 1, ALMOST_ONE, 100],
    [equal, 4, 0, 400],
    [equal, 4, ALMOST_ONE, 800],
    [equal, 1000, 0, 15_000],
    [equal, 1000, ALMOST_ONE, 30_000],
  ];
  for (const [backoff, attempt, random, delay] of cases) {
    t.equal(backoffDelayMs(attempt, backoff, () => random), delay, `${backoff.jitter}, attempt ${attempt}, random ${random}`);
  }
  // Whole milliseconds inside the bounds, whatever the draw.
  const random = seededRandom(42);
  for (let attempt = 1; attempt <= 12; attempt++) {
    const ceiling = backoffCeilingMs(attempt, full);
    const f = backoffDelayMs(attempt, full, random);
    const e = backoffDelayMs(attempt, equal, random);
    t.ok(Number.isInteger(f) && f >= 0 && f < ceiling, `full, attempt ${attempt}: ${f} in [0, ${ceiling})`);
    t.ok(Number.isInteger(e) && e >= ceiling / 2 && e <= ceiling, `equal, attempt ${attempt}: ${e} in [${ceiling / 2}, ${ceiling}]`);
  }
});

t.test('the same seed gives the same delays', async (t) => {
  const backoff: Backoff = { baseMs: 250, maxMs: 30_000, jitter: 'equal' };
  const run = (seed: number): number[] => {
    const random = seededRandom(seed);
    return [1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelayMs(a, backoff, random));
  };
  t.strictSame(run(7), run(7));
  t.notSame(run(7), run(8));
});

t.test('sleepBackoff resolves exactly at the delay on the given timers', async (t) => {
  const backoff: Backoff = { baseMs: 100, maxMs: 1000, jitter: 'equal' };
  for (const [attempt, random, delay] of [
    [1, 0, 50],
    [3, ALMOST_ONE, 400],
    [9, 0.5, 750],
  ] as const) {
    const clock = manualClock();
    let done = false;
    const sleeping = sleepBackoff(attempt, backoff, { random: () => random, timers: clock }).then(() => {
      done = true;
    });
    t.strictSame(clock.armed, [delay], `attempt ${attempt}: one timer of ${delay} ms`);
    await clock.advanceAndSettle(delay - 1);
    t.equal(done, false, `attempt ${attempt}: still waiting 1 ms before the delay`);
    await clock.advanceAndSettle(1);
    t.equal(done, true, `attempt ${attempt}: resolved at ${delay} ms`);
    await sleeping;
  }
});

t.test('sleepBackoff resolves early, without error, on abort; at once when already aborted', async (t) => {
  const clock = manualClock();
  const ac = new AbortController();
  let done = false;
  const sleeping = sleepBackoff(1, { baseMs: 1000, maxMs: 1000, jitter: 'full' }, { random: () => 0.5, timers: clock, signal: ac.signal }).then(() => {
    done = true;
  });
  await clock.advanceAndSettle(100);
  t.equal(done, false);
  ac.abort(new Error('closing'));
  await sleeping;
  t.equal(clock.now(), 100, 'resolved on abort, the clock still at 100 ms');
  t.strictSame(clock.pending(), [], 'and its timer was cleared');

  const before = clock.armed.length;
  await sleepBackoff(1, { baseMs: 1000, maxMs: 1000, jitter: 'full' }, { timers: clock, signal: ac.signal });
  t.equal(clock.armed.length, before, 'an aborted signal arms no timer');
});
