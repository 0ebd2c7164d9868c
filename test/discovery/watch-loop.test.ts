/**
 * The blocking-query loop on its own, driven by a scripted fetcher on a
 * manual clock: Consul's index rules, dedupe, backoff, rate limit,
 * last-known-good and prompt close, as exact sequences. The same loop
 * against the real dev agent is in watch.test.ts.
 */
import t from 'tap';
import { type Backoff, backoffDelayMs } from '../../base/backoff.js';
import { seededRandom } from '../../base/clock.js';
import { BlockingWatch, type Fetcher, nextIndex, type WatchOptions } from '../../discovery/watch.js';
import { type ManualClock, manualClock, settle, waitStarts } from '../helpers/manual-clock.js';

t.test('index rules from Consul "Blocking Queries"', async (t) => {
  const cases: Array<[previous: bigint, returned: bigint | undefined, next: bigint, why: string]> = [
    [0n, 5n, 5n, 'first answer'],
    [5n, 9n, 9n, 'moved forward'],
    [9n, 9n, 9n, 'wait expired, nothing changed'],
    [9n, 3n, 0n, 'went backwards: reset to 0'],
    [0n, 0n, 1n, 'zero is treated as 1'],
    [4n, -2n, 0n, 'negative after positive: backwards, reset'],
    [0n, -2n, 1n, 'negative from a reset: treated as 1'],
    [7n, undefined, 1n, 'no header: poll with 1'],
  ];
  for (const [previous, returned, next, why] of cases) t.equal(nextIndex(previous, returned), next, why);
});

/** A scripted fetcher's record: the index and clock time of every call. */
interface Script<T> {
  fetch: Fetcher<T>;
  indexes: bigint[];
  times: number[];
  /** Resolves once the fetcher has been called `n` times. */
  called(n: number): Promise<void>;
}

/** A fetcher that plays `steps` in order, then blocks until aborted. */
function scripted<T>(clock: ManualClock, steps: Array<{ value: T; index: bigint | undefined } | Error>): Script<T> {
  const indexes: bigint[] = [];
  const times: number[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let i = 0;
  const fetch: Fetcher<T> = async (index, _waitMs, signal) => {
    indexes.push(index);
    times.push(clock.now());
    for (const w of waiters.filter((w) => indexes.length >= w.n)) w.resolve();
    const step = steps[i++];
    if (step === undefined) {
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
      throw new Error('unreachable');
    }
    if (step instanceof Error) throw step;
    return step;
  };
  const called = (n: number): Promise<void> =>
    indexes.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }));
  return { fetch, indexes, times, called };
}

const SEED = 20240611;
const BACKOFF: Backoff = { baseMs: 5, maxMs: 40, jitter: 'equal' };

/** Options on `clock` with a seeded random: no rate limit, a 5-40 ms backoff. */
function fast(clock: ManualClock, extra: WatchOptions = {}): WatchOptions {
  return { minIntervalMs: 0, backoffBaseMs: BACKOFF.baseMs, backoffMaxMs: BACKOFF.maxMs, now: clock.now, timers: clock, random: seededRandom(SEED), ...extra };
}

/** The delays the watch must choose: the shared backoff, drawn from the same seed. */
function expectedDelays(attempts: number, backoff: Backoff = BACKOFF): number[] {
  const random = seededRandom(SEED);
  return Array.from({ length: attempts }, (_, i) => backoffDelayMs(i + 1, backoff, random));
}

t.test('emits distinct values only, follows the index rules', async (t) => {
  const clock = manualClock();
  const s = scripted<string[]>(clock, [
    { value: ['a'], index: 5n },
    { value: ['a'], index: 6n }, // same data, new index: no event
    { value: ['a', 'b'], index: 8n },
    { value: ['a', 'b'], index: 3n }, // backwards: reset
    { value: ['b'], index: 0n }, // zero: treat as 1
    { value: ['b'], index: 10n },
  ]);
  const w = new BlockingWatch('test', s.fetch, fast(clock));
  t.teardown(() => w.close());
  const seen: string[][] = [];
  w.on('change', (v) => seen.push(v));
  await w.next((v) => v.length === 1 && v[0] === 'b');
  await s.called(7); // the seventh call is the one left blocking
  t.strictSame(seen, [['a'], ['a', 'b'], ['b']]);
  t.strictSame(s.indexes, [0n, 5n, 6n, 8n, 0n, 1n, 10n]);
  t.strictSame(s.times, [0, 0, 0, 0, 0, 0, 0], 'answers that change the index need no wait');
  t.strictSame(clock.armed, [], 'and arm no timer');
  t.strictSame(w.current(), ['b']);
  t.equal(w.stale, false);
});

t.test('errors keep the last known value, back off by the shared backoff, and recover', async (t) => {
  const clock = manualClock();
  const boom = (n: number): Error => new Error(`consul down ${n}`);
  const s = scripted<string[]>(clock, [{ value: ['a'], index: 2n }, boom(1), boom(2), boom(3), boom(4), { value: ['a', 'c'], index: 9n }]);
  const w = new BlockingWatch('test', s.fetch, fast(clock));
  t.teardown(() => w.close());
  const events: string[] = [];
  const delays: number[] = [];
  w.on('change', (v) => events.push(`change ${v.join(',')}`));
  w.on('stale', (e) => events.push(`stale ${e.message}; view ${w.current()?.join(',')}`));
  w.on('retry', (_e, delay, attempt) => {
    delays.push(delay);
    events.push(`retry ${attempt}`);
  });
  w.on('recovered', () => events.push('recovered'));

  const want = expectedDelays(4);
  await s.called(2);
  await settle();
  for (const [i, delay] of want.entries()) {
    t.strictSame(clock.pending(), [{ at: clock.now() + delay, ms: delay }], `retry ${i + 1}: one timer, the backoff`);
    await clock.advanceAndSettle(delay - 1);
    t.equal(s.indexes.length, i + 2, `retry ${i + 1}: no request 1 ms before the delay`);
    await clock.advanceAndSettle(1);
    t.equal(s.times[i + 2], clock.now(), `retry ${i + 1}: the request goes out at ${delay} ms`);
  }
  await w.next((v) => v.length === 2);
  t.strictSame(events, ['change a', 'stale consul down 1; view a', 'retry 1', 'retry 2', 'retry 3', 'retry 4', 'recovered', 'change a,c']);
  t.strictSame(delays, want, 'the delays are base/backoff.ts equal-jitter decisions from the seed');
  t.strictSame(clock.armed, want, 'and the only timers armed');
  const at = waitStarts(want);
  t.strictSame(s.times.slice(0, 6), [0, ...at], 'each retry starts exactly its delay after the failure');
  t.equal(w.stale, false);
  t.equal(w.lastError, undefined);
  t.strictSame(s.indexes.slice(0, 6), [0n, 2n, 0n, 0n, 0n, 0n], 'retries read without blocking, so recovery is seen at once');
});

t.test('the backoff is capped at backoffMaxMs and restarts after a success', async (t) => {
  const clock = manualClock();
  const down = Array.from({ length: 7 }, (_, i) => new Error(`down ${i}`));
  const s = scripted<number>(clock, [...down, { value: 1, index: 3n }, new Error('down again')]);
  const w = new BlockingWatch('test', s.fetch, fast(clock));
  t.teardown(() => w.close());
  const retries: Array<[attempt: number, delay: number]> = [];
  w.on('retry', (_e, delay, attempt) => retries.push([attempt, delay]));
  await clock.runUntil(s.called(9));
  await settle();
  const random = seededRandom(SEED);
  const want = [1, 2, 3, 4, 5, 6, 7, 1].map((a) => [a, backoffDelayMs(a, BACKOFF, random)]);
  t.strictSame(retries, want, 'attempts 1-7, then 1 again after the success');
  t.ok(
    retries.slice(3, 7).every(([, d]) => d >= 20 && d <= 40),
    'from the fourth attempt on, the ceiling is the 40 ms cap',
  );
});

t.test('stale and lastError are visible during the outage', async (t) => {
  const clock = manualClock();
  const s = scripted<number>(clock, [{ value: 1, index: 2n }, new Error('refused'), new Error('refused again')]);
  const w = new BlockingWatch('test', s.fetch, fast(clock, { backoffBaseMs: 10_000, backoffMaxMs: 10_000 }));
  t.teardown(() => w.close());
  await new Promise<void>((resolve) => w.once('stale', () => resolve()));
  t.equal(w.current(), 1, 'the outage did not empty the view');
  t.equal(w.stale, true);
  t.equal(w.lastError?.message, 'refused');
  t.equal(s.indexes.length, 2, 'the second error is still 5-10 s of clock away');
});

t.test('close() during a backoff wait clears its timer and ends the loop', async (t) => {
  const clock = manualClock();
  const s = scripted<number>(clock, [new Error('refused'), { value: 1, index: 2n }]);
  const w = new BlockingWatch('test', s.fetch, fast(clock));
  await new Promise<void>((resolve) => w.once('retry', () => resolve()));
  await settle();
  t.equal(clock.pending().length, 1, 'waiting out the backoff');
  await w.close();
  t.strictSame(clock.pending(), [], 'the timer is cleared');
  await clock.advanceAndSettle(1000);
  t.equal(s.indexes.length, 1, 'no request after close');
  t.equal(w.current(), undefined);
});

t.test('close() aborts the in-flight request at once and ends iterators', async (t) => {
  const clock = manualClock();
  let aborted = false;
  let parked: () => void = () => {};
  const blocking = new Promise<void>((resolve) => {
    parked = resolve;
  });
  const w = new BlockingWatch<number>(
    'test',
    async (index, _wait, signal) => {
      if (index === 0n) return { value: 1, index: 4n };
      parked();
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          aborted = true;
          reject(signal.reason);
        }),
      );
      throw new Error('unreachable');
    },
    fast(clock),
  );
  const got: number[] = [];
  const iterating = (async () => {
    for await (const v of w) got.push(v);
  })();
  await w.ready();
  await blocking; // now blocked in the second request, which never answers by itself
  await w.close();
  await iterating;
  t.ok(aborted, 'the blocking request saw the abort: close() did not wait for an answer');
  t.equal(clock.now(), 0, 'no time had to pass');
  t.strictSame(got, [1]);
  t.equal(w.current(), 1, 'the last value stays readable');
  await t.rejects(w.next(() => false), { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' }, 'waiting on a closed watch rejects');
});

t.test('a slow iterator gets the latest value, not a backlog; a throwing listener does not stop the loop', async (t) => {
  const clock = manualClock();
  const s = scripted<number>(clock, [1, 2, 3, 4].map((n) => ({ value: n, index: BigInt(n) })));
  const w = new BlockingWatch('test', s.fetch, fast(clock));
  t.teardown(() => w.close());
  w.on('change', (v) => {
    if (v === 2) throw new Error('listener bug');
  });
  await w.next((v) => v === 4);
  const it = w[Symbol.asyncIterator]();
  t.strictSame(await it.next(), { value: 4, done: false });
  await w.close();
  t.strictSame(await it.next(), { value: undefined, done: true });
});

t.test('rate limit: request starts are at least minIntervalMs apart, counted from start to start', async (t) => {
  const cases: Array<[durationMs: number, starts: number[], why: string]> = [
    [0, [0, 30, 60, 90, 120, 150, 180], 'a server that never blocks: one request per 30 ms'],
    [10, [0, 30, 60, 90, 120, 150, 180], 'a 10 ms answer: the rest of the 30 ms is waited out'],
    [30, [0, 30, 60, 90, 120, 150, 180], 'a 30 ms answer: no wait on top'],
    [50, [0, 50, 100, 150], 'a slow answer: the next request goes out at once'],
  ];
  for (const [durationMs, starts, why] of cases) {
    const clock = manualClock();
    const seen: number[] = [];
    const w = new BlockingWatch<number>(
      'test',
      async (_index, _wait, signal) => {
        seen.push(clock.now());
        if (durationMs > 0) {
          await new Promise<void>((resolve, reject) => {
            const handle = clock.setTimeout(resolve, durationMs);
            signal.addEventListener(
              'abort',
              () => {
                clock.clearTimeout(handle);
                reject(signal.reason);
              },
              { once: true },
            );
          });
        }
        return { value: 1, index: 1n };
      },
      { minIntervalMs: 30, now: clock.now, timers: clock },
    );
    await clock.advanceAndSettle(199);
    await w.close();
    t.strictSame(seen, starts, why);
  }
});
