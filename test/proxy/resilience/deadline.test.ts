import t from 'tap';
import { DEFAULT_REQUEST_TIMEOUT_MS, Deadline, timeoutPolicy } from '../../../proxy/resilience/deadline.js';
import { fakeClock } from '../fakes.js';

t.test('timeoutPolicy fills defaults and freezes the result', async (t) => {
  const policy = timeoutPolicy();
  t.strictSame(policy, { requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS, tryTimeoutMs: undefined });
  t.ok(Object.isFrozen(policy));
  t.strictSame(timeoutPolicy({ requestTimeoutMs: 2_000, tryTimeoutMs: 500 }), { requestTimeoutMs: 2_000, tryTimeoutMs: 500 });
});

t.test('timeoutPolicy refuses nonsense, naming the key', async (t) => {
  const cases: { opts: { requestTimeoutMs?: number; tryTimeoutMs?: number }; key: string }[] = [
    { opts: { requestTimeoutMs: 0 }, key: 'timeouts.requestTimeoutMs' },
    { opts: { requestTimeoutMs: Number.NaN }, key: 'timeouts.requestTimeoutMs' },
    { opts: { requestTimeoutMs: 1e12 }, key: 'timeouts.requestTimeoutMs' },
    { opts: { tryTimeoutMs: -5 }, key: 'timeouts.tryTimeoutMs' },
    { opts: { tryTimeoutMs: Number.POSITIVE_INFINITY }, key: 'timeouts.tryTimeoutMs' },
  ];
  for (const c of cases) t.throws(() => timeoutPolicy(c.opts), { code: 'WEFT_ERR_CONFIG_INVALID', key: c.key }, JSON.stringify(c.opts));
});

t.test('each attempt gets the per-try limit, cut to what is left overall', async (t) => {
  const clock = fakeClock(1_000);
  const deadline = new Deadline(500, clock.now);
  t.equal(deadline.endMs, 1_500);
  // [time, perTry, expected attempt timeout, remaining]
  const steps: [number, number | undefined, number, number][] = [
    [1_000, 200, 200, 500],
    [1_000, undefined, 500, 500],
    [1_200, 200, 200, 300],
    [1_400, 200, 100, 100],
    [1_499, undefined, 1, 1],
    [1_500, 200, 0, 0],
    [1_700, 200, 0, 0],
  ];
  for (const [at, perTry, attempt, remaining] of steps) {
    clock.set(at);
    t.equal(deadline.tryTimeoutMs(perTry), attempt, `t=${at} perTry=${perTry}`);
    t.equal(deadline.remainingMs(), remaining);
    t.equal(deadline.expired(), remaining === 0);
    t.equal(deadline.elapsedMs(), at - 1_000);
  }
});

t.test('allows() says whether a wait still leaves a useful attempt', async (t) => {
  const clock = fakeClock(0);
  const deadline = Deadline.start(timeoutPolicy({ requestTimeoutMs: 300 }), clock.now);
  t.equal(deadline.allows(290), true, '10 ms left after the wait: enough');
  t.equal(deadline.allows(291), false);
  t.equal(deadline.allows(250, 60), false);
  t.equal(deadline.allows(0, 0), true);
  clock.set(300);
  t.equal(deadline.allows(0, 0), true, 'zero wait and zero minimum is vacuous');
  t.equal(deadline.allows(0), false);
});
