/**
 * The blocking-query loop on its own, driven by a scripted fetcher: Consul's
 * index rules, dedupe, backoff, last-known-good and prompt close. The same
 * loop against the real dev agent is in watch.test.ts.
 */
import t from 'tap';
import { BlockingWatch, backoffDelay, type Fetcher, nextIndex } from '../../discovery/watch.js';

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

t.test('backoff doubles, is capped, and jitters within [ceiling/2, ceiling]', async (t) => {
  const low = (a: number): number => backoffDelay(a, 100, 30_000, () => 0);
  const high = (a: number): number => backoffDelay(a, 100, 30_000, () => 1);
  t.strictSame([1, 2, 3, 4].map(high), [100, 200, 400, 800]);
  t.strictSame([1, 2, 3, 4].map(low), [50, 100, 200, 400]);
  t.equal(high(9), 25_600);
  t.equal(high(10), 30_000, 'capped');
  t.equal(high(1000), 30_000, 'no overflow for long outages');
  t.equal(low(1000), 15_000);
});

/** A fetcher that plays `steps` in order, then blocks until aborted. Records the index of every call. */
function scripted<T>(steps: Array<{ value: T; index: bigint | undefined } | Error>): { fetch: Fetcher<T>; indexes: bigint[] } {
  const indexes: bigint[] = [];
  let i = 0;
  const fetch: Fetcher<T> = async (index, _waitMs, signal) => {
    indexes.push(index);
    const step = steps[i++];
    if (step === undefined) {
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
      throw new Error('unreachable');
    }
    if (step instanceof Error) throw step;
    return step;
  };
  return { fetch, indexes };
}

const fast = { minIntervalMs: 0, backoffBaseMs: 5, backoffMaxMs: 40 };

t.test('emits distinct values only, follows the index rules', async (t) => {
  const { fetch, indexes } = scripted<string[]>([
    { value: ['a'], index: 5n },
    { value: ['a'], index: 6n }, // same data, new index: no event
    { value: ['a', 'b'], index: 8n },
    { value: ['a', 'b'], index: 3n }, // backwards: reset
    { value: ['b'], index: 0n }, // zero: treat as 1
    { value: ['b'], index: 10n },
  ]);
  const w = new BlockingWatch('test', fetch, fast);
  t.teardown(() => w.close());
  const seen: string[][] = [];
  w.on('change', (v) => seen.push(v));
  await w.next((v) => v.length === 1 && v[0] === 'b');
  while (indexes.length < 7) await new Promise((r) => setTimeout(r, 5));
  t.strictSame(seen, [['a'], ['a', 'b'], ['b']]);
  t.strictSame(indexes, [0n, 5n, 6n, 8n, 0n, 1n, 10n]);
  t.strictSame(w.current(), ['b']);
  t.equal(w.stale, false);
});

t.test('errors keep the last known value, back off, and recover', async (t) => {
  const boom = (n: number): Error => new Error(`consul down ${n}`);
  const { fetch, indexes } = scripted<string[]>([{ value: ['a'], index: 2n }, boom(1), boom(2), boom(3), boom(4), { value: ['a', 'c'], index: 9n }]);
  const w = new BlockingWatch('test', fetch, fast);
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
  await w.next((v) => v.length === 2);
  t.strictSame(events, ['change a', 'stale consul down 1; view a', 'retry 1', 'retry 2', 'retry 3', 'retry 4', 'recovered', 'change a,c']);
  for (const [i, d] of delays.entries()) {
    const ceiling = Math.min(40, 5 * 2 ** i);
    t.ok(d >= ceiling / 2 && d <= ceiling, `retry ${i + 1} waits ${d} ms, within [${ceiling / 2}, ${ceiling}]`);
  }
  t.equal(w.stale, false);
  t.equal(w.lastError, undefined);
  t.strictSame(indexes.slice(0, 6), [0n, 2n, 0n, 0n, 0n, 0n], 'retries read without blocking, so recovery is seen at once');
});

t.test('stale and lastError are visible during the outage', async (t) => {
  const { fetch } = scripted<number>([{ value: 1, index: 2n }, new Error('refused'), new Error('refused again')]);
  const w = new BlockingWatch('test', fetch, { ...fast, backoffBaseMs: 10_000, backoffMaxMs: 10_000 });
  t.teardown(() => w.close());
  await new Promise<void>((resolve) => w.once('stale', () => resolve()));
  t.equal(w.current(), 1, 'the outage did not empty the view');
  t.equal(w.stale, true);
  t.equal(w.lastError?.message, 'refused');
});

t.test('close() aborts the in-flight request at once and ends iterators', async (t) => {
  let aborted = false;
  const w = new BlockingWatch<number>(
    'test',
    async (index, _wait, signal) => {
      if (index === 0n) return { value: 1, index: 4n };
      await new Promise((_, reject) =>
        signal.addEventListener('abort', () => {
          aborted = true;
          reject(signal.reason);
        }),
      );
      throw new Error('unreachable');
    },
    fast,
  );
  const got: number[] = [];
  const iterating = (async () => {
    for await (const v of w) got.push(v);
  })();
  await w.ready();
  await new Promise((r) => setTimeout(r, 20)); // now blocked in the second request
  const started = Date.now();
  await w.close();
  await iterating;
  t.ok(Date.now() - started < 100, `closed in ${Date.now() - started} ms`);
  t.ok(aborted, 'the blocking request saw the abort');
  t.strictSame(got, [1]);
  t.equal(w.current(), 1, 'the last value stays readable');
  await t.rejects(w.next(() => false), { code: 'WEFT_ERR_CONSUL_UNAVAILABLE' }, 'waiting on a closed watch rejects');
});

t.test('a slow iterator gets the latest value, not a backlog; a throwing listener does not stop the loop', async (t) => {
  const { fetch } = scripted<number>([1, 2, 3, 4].map((n) => ({ value: n, index: BigInt(n) })));
  const w = new BlockingWatch('test', fetch, fast);
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

t.test('rate limit: requests that return at once are spaced by minIntervalMs', async (t) => {
  const starts: number[] = [];
  const w = new BlockingWatch<number>(
    'test',
    async () => {
      starts.push(Date.now());
      return { value: 1, index: 1n }; // a server that never blocks
    },
    { minIntervalMs: 30 },
  );
  await new Promise((r) => setTimeout(r, 200));
  await w.close();
  t.ok(starts.length >= 3 && starts.length <= 8, `${starts.length} requests in 200 ms`);
  for (let i = 1; i < starts.length; i++) t.ok(starts[i]! - starts[i - 1]! >= 28, 'spaced');
});
