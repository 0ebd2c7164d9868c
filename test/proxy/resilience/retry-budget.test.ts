import t from 'tap';
import { RetryBudget } from '../../../proxy/resilience/retry-budget.js';
import { fakeClock } from '../fakes.js';

/** How many withdrawals succeed before the first refusal. */
function drain(budget: RetryBudget): number {
  let n = 0;
  while (budget.tryWithdraw()) n++;
  return n;
}

t.test('allowed retries = floor x window + ratio x requests, per window', async (t) => {
  const cases: { name: string; opts: ConstructorParameters<typeof RetryBudget>[0]; requests: number; allowed: number }[] = [
    { name: 'defaults, no traffic: the 10/s floor over 10 s', opts: {}, requests: 0, allowed: 100 },
    { name: 'defaults, 1000 requests: 100 + 20%', opts: {}, requests: 1_000, allowed: 300 },
    { name: 'ratio only, 5 requests: exactly 1', opts: { minRetriesPerSecond: 0 }, requests: 5, allowed: 1 },
    { name: 'ratio only, 4 requests: none', opts: { minRetriesPerSecond: 0 }, requests: 4, allowed: 0 },
    { name: 'ratio only, 3 requests at 1/3', opts: { minRetriesPerSecond: 0, ratio: 1 / 3 }, requests: 3, allowed: 1 },
    { name: 'ratio 0: only the floor', opts: { ratio: 0, minRetriesPerSecond: 1 }, requests: 10_000, allowed: 10 },
    { name: 'nothing at all', opts: { ratio: 0, minRetriesPerSecond: 0 }, requests: 100, allowed: 0 },
    { name: 'ratio 1 doubles', opts: { ratio: 1, minRetriesPerSecond: 0 }, requests: 7, allowed: 7 },
  ];
  for (const c of cases) {
    const clock = fakeClock();
    const budget = new RetryBudget({ now: clock.now, ...c.opts });
    for (let i = 0; i < c.requests; i++) budget.deposit();
    t.equal(drain(budget), c.allowed, c.name);
  }
});

t.test('an exhausted budget refuses until traffic or time refills it', async (t) => {
  const clock = fakeClock();
  const budget = new RetryBudget({ now: clock.now, minRetriesPerSecond: 0 });
  for (let i = 0; i < 10; i++) budget.deposit();
  t.equal(drain(budget), 2);
  t.equal(budget.tryWithdraw(), false);
  t.equal(budget.canRetry(), false);
  for (let i = 0; i < 5; i++) budget.deposit();
  t.equal(budget.canRetry(), true, 'five more requests earn one more retry');
  t.equal(budget.canRetry(), true, 'canRetry does not spend');
  t.equal(drain(budget), 1);
  t.strictSame(budget.usage(), { requests: 15, retries: 3 });
});

t.test('the window slides a bucket at a time', async (t) => {
  const clock = fakeClock();
  const budget = new RetryBudget({ now: clock.now, minRetriesPerSecond: 1 }); // floor: 10 per window
  t.equal(drain(budget), 10, 'spent at t=0');
  clock.set(9_999);
  t.equal(budget.tryWithdraw(), false, 'still inside the window');
  clock.set(10_000);
  t.equal(drain(budget), 10, 'the t=0 bucket fell out');
  clock.set(15_500);
  t.equal(drain(budget), 0, 'the t=10 s bucket still counts');
  clock.set(21_000);
  t.equal(drain(budget), 10);
  t.strictSame(budget.usage(), { requests: 0, retries: 10 });
});

t.test('requests and retries expire together', async (t) => {
  const clock = fakeClock();
  const budget = new RetryBudget({ now: clock.now, minRetriesPerSecond: 0 });
  for (let i = 0; i < 50; i++) budget.deposit();
  clock.set(5_000);
  t.equal(drain(budget), 10);
  clock.set(10_000);
  t.strictSame(budget.usage(), { requests: 0, retries: 10 }, 'the requests from t=0 are gone');
  t.equal(budget.canRetry(), false);
  clock.set(60_000);
  t.strictSame(budget.usage(), { requests: 0, retries: 0 }, 'after a long quiet spell nothing is left');
});

t.test('bad budget options are refused, naming the option', async (t) => {
  t.throws(() => new RetryBudget({ ratio: -0.1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.budget.ratio' });
  t.throws(() => new RetryBudget({ windowMs: 0 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.budget.windowMs' });
  t.throws(() => new RetryBudget({ buckets: 2.5 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.budget.buckets' });
  t.throws(() => new RetryBudget({ minRetriesPerSecond: -1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.budget.minRetriesPerSecond' });
});
