import t from 'tap';
import { backoffCeilingMs, backoffDelayMs, backoffPolicy } from '../../../proxy/resilience/backoff.js';
import { replay } from '../fakes.js';

t.test('the ceiling doubles per retry from 25 ms and stops at 250 ms', async (t) => {
  const policy = backoffPolicy();
  const expected: [number, number][] = [[1, 25], [2, 50], [3, 100], [4, 200], [5, 250], [6, 250], [100, 250], [0, 25]];
  for (const [retry, ceiling] of expected) t.equal(backoffCeilingMs(retry, policy), ceiling, `retry ${retry}`);
});

t.test('the delay is uniform below the ceiling (full jitter), in whole ms', async (t) => {
  const policy = backoffPolicy({ baseMs: 100, maxMs: 1_000 });
  t.equal(backoffDelayMs(1, policy, () => 0), 0);
  t.equal(backoffDelayMs(1, policy, () => 0.5), 50);
  t.equal(backoffDelayMs(1, policy, () => 0.9999), 99);
  t.equal(backoffDelayMs(3, policy, () => 0.25), 100);
  const random = replay([0.1, 0.6, 0.3]);
  t.strictSame([1, 2, 3].map((r) => backoffDelayMs(r, policy, random)), [10, 120, 120]);
});

t.test('backoffPolicy validates its bounds', async (t) => {
  t.strictSame(backoffPolicy({ baseMs: 500 }), { baseMs: 500, maxMs: 500 }, 'cap never below base');
  t.throws(() => backoffPolicy({ baseMs: -1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.backoff.baseMs' });
  t.throws(() => backoffPolicy({ baseMs: 100, maxMs: 50 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.backoff.maxMs' });
});
