import t from 'tap';
import { Deadline } from '../../../proxy/resilience/deadline.js';
import { RetryBudget } from '../../../proxy/resilience/retry-budget.js';
import {
  type AttemptOutcome,
  type HeaderMap,
  type RetryDecision,
  RetryPolicy,
  type RetryPolicyOptions,
  retryability,
} from '../../../proxy/resilience/retry-policy.js';
import { fakeClock } from '../fakes.js';

const CONNECT: AttemptOutcome = { kind: 'connect-error' };
const RESET: AttemptOutcome = { kind: 'reset' };
const TIMEOUT: AttemptOutcome = { kind: 'timeout' };
const status = (s: number): AttemptOutcome => ({ kind: 'response', status: s });

/** A policy with plenty of budget and time; random 0.5 makes the first delay 12 ms. */
function setup(options: Partial<RetryPolicyOptions> = {}, timeoutMs = 10_000) {
  const clock = fakeClock();
  const budget = options.budget ?? new RetryBudget({ now: clock.now });
  const policy = new RetryPolicy({ random: () => 0.5, ...options, budget });
  return { clock, budget, policy, deadline: new Deadline(timeoutMs, clock.now) };
}

t.test('which requests are retried on which outcomes', async (t) => {
  const cases: {
    method: string;
    headers?: HeaderMap;
    bodyBuffered?: boolean;
    outcome: AttemptOutcome;
    expected: true | string;
  }[] = [
    { method: 'GET', outcome: status(502), expected: true },
    { method: 'GET', outcome: status(503), expected: true },
    { method: 'GET', outcome: status(504), expected: true },
    { method: 'GET', outcome: RESET, expected: true },
    { method: 'GET', outcome: TIMEOUT, expected: true },
    { method: 'GET', outcome: CONNECT, expected: true },
    { method: 'GET', outcome: status(500), expected: 'not-retryable' },
    { method: 'GET', outcome: status(429), expected: 'not-retryable' },
    { method: 'GET', outcome: status(200), expected: 'not-retryable' },
    { method: 'get', outcome: status(503), expected: true },
    { method: 'HEAD', outcome: status(503), expected: true },
    { method: 'OPTIONS', outcome: status(503), expected: true },
    { method: 'PUT', outcome: status(503), expected: true },
    { method: 'DELETE', outcome: status(503), expected: true },
    { method: 'TRACE', outcome: status(503), expected: true },
    { method: 'POST', outcome: status(503), expected: 'not-idempotent' },
    { method: 'POST', outcome: RESET, expected: 'not-idempotent' },
    { method: 'PATCH', outcome: TIMEOUT, expected: 'not-idempotent' },
    { method: 'CONNECT', outcome: status(502), expected: 'not-idempotent' },
    { method: 'POST', outcome: CONNECT, expected: true },
    { method: 'PURGE', outcome: CONNECT, expected: true },
    { method: 'POST', outcome: status(500), expected: 'not-retryable' },
    { method: 'POST', headers: { 'x-weft-retryable': 'true' }, outcome: status(503), expected: true },
    { method: 'PATCH', headers: { 'x-weft-retryable': ' TRUE ' }, outcome: RESET, expected: true },
    { method: 'POST', headers: { 'x-weft-retryable': ['true', 'false'] }, outcome: status(503), expected: true },
    { method: 'POST', headers: { 'idempotency-key': '8e03978e-40d5' }, outcome: status(504), expected: true },
    { method: 'POST', headers: { 'x-weft-retryable': 'yes' }, outcome: status(503), expected: 'not-idempotent' },
    { method: 'GET', headers: { 'x-weft-retryable': 'false' }, outcome: status(503), expected: 'opted-out' },
    { method: 'POST', headers: { 'x-weft-retryable': 'false' }, outcome: CONNECT, expected: 'opted-out' },
    { method: 'GET', bodyBuffered: false, outcome: status(503), expected: 'body-streamed' },
    { method: 'PUT', bodyBuffered: false, outcome: CONNECT, expected: 'body-streamed' },
    { method: 'POST', headers: { 'idempotency-key': 'k' }, bodyBuffered: false, outcome: RESET, expected: 'body-streamed' },
  ];
  for (const c of cases) {
    const { policy, deadline } = setup();
    const req = { method: c.method, headers: c.headers ?? {}, bodyBuffered: c.bodyBuffered ?? true };
    const decision = policy.decide(req, c.outcome, 0, deadline);
    const want: RetryDecision = c.expected === true ? { retry: true, delayMs: 12 } : ({ retry: false, reason: c.expected } as RetryDecision);
    t.strictSame(decision, want, `${c.method} ${JSON.stringify(c.headers ?? {})} ${JSON.stringify(c.outcome)} buffered=${c.bodyBuffered ?? true}`);
  }
});

t.test('retryability() classifies a request before any attempt', async (t) => {
  t.strictSame(retryability({ method: 'GET', headers: {}, bodyBuffered: true }), { retryability: 'any-failure' });
  t.strictSame(retryability({ method: 'POST', headers: {}, bodyBuffered: true }), { retryability: 'connect-only' });
  t.strictSame(retryability({ method: 'POST', headers: {}, bodyBuffered: false }), { retryability: 'never', reason: 'body-streamed' });
});

t.test('at most maxRetries retries, with growing jittered backoff', async (t) => {
  const { policy, deadline } = setup();
  const req = { method: 'GET', headers: {}, bodyBuffered: true };
  t.strictSame(policy.decide(req, status(503), 0, deadline), { retry: true, delayMs: 12 });
  t.strictSame(policy.decide(req, status(503), 1, deadline), { retry: true, delayMs: 25 });
  t.strictSame(policy.decide(req, status(503), 2, deadline), { retry: false, reason: 'max-retries' });
  const none = setup({ maxRetries: 0 });
  t.strictSame(none.policy.decide(req, CONNECT, 0, none.deadline), { retry: false, reason: 'max-retries' });
  const five = setup({ maxRetries: 5, backoff: { baseMs: 10, maxMs: 40 } });
  const delays = [0, 1, 2, 3, 4].map((n) => five.policy.decide(req, RESET, n, five.deadline));
  t.strictSame(delays.map((d) => (d.retry ? d.delayMs : d.reason)), [5, 10, 20, 20, 20]);
});

t.test('no retry when the deadline cannot fit the wait and a useful attempt', async (t) => {
  const req = { method: 'GET', headers: {}, bodyBuffered: true };
  const enough = setup({}, 22); // 22 - 12 = 10 ms left: just enough
  t.strictSame(enough.policy.decide(req, status(503), 0, enough.deadline), { retry: true, delayMs: 12 });
  const tight = setup({}, 21);
  t.strictSame(tight.policy.decide(req, status(503), 0, tight.deadline), { retry: false, reason: 'deadline' });
  const gone = setup();
  gone.clock.advance(10_000);
  t.strictSame(gone.policy.decide(req, CONNECT, 0, gone.deadline), { retry: false, reason: 'deadline' });
  const lenient = setup({ minTryMs: 0 }, 12);
  t.strictSame(lenient.policy.decide(req, status(503), 0, lenient.deadline), { retry: true, delayMs: 12 });
});

t.test('the retry budget caps retries, and only retries actually made spend it', async (t) => {
  const clock = fakeClock();
  const budget = new RetryBudget({ now: clock.now, minRetriesPerSecond: 0 });
  const { policy, deadline } = setup({ budget });
  for (let i = 0; i < 10; i++) policy.onRequest();
  t.strictSame(budget.usage(), { requests: 10, retries: 0 });
  const get = { method: 'GET', headers: {}, bodyBuffered: true };
  const post = { method: 'POST', headers: {}, bodyBuffered: true };
  // Refusals for other reasons leave the budget alone.
  t.strictSame(policy.decide(post, status(503), 0, deadline), { retry: false, reason: 'not-idempotent' });
  t.strictSame(policy.decide(get, status(503), 2, deadline), { retry: false, reason: 'max-retries' });
  t.strictSame(policy.decide(get, status(404), 0, deadline), { retry: false, reason: 'not-retryable' });
  t.strictSame(budget.usage(), { requests: 10, retries: 0 });
  // 20% of 10 requests: two retries, then the budget is exhausted.
  t.equal(policy.decide(get, status(503), 0, deadline).retry, true);
  t.equal(policy.decide(get, status(502), 0, deadline).retry, true);
  t.strictSame(policy.decide(get, status(503), 0, deadline), { retry: false, reason: 'budget-exhausted' });
  t.strictSame(budget.usage(), { requests: 10, retries: 2 });
});

t.test('bad retry options are refused, naming the option', async (t) => {
  t.throws(() => setup({ maxRetries: -1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.maxRetries' });
  t.throws(() => setup({ maxRetries: 1.5 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.maxRetries' });
  t.throws(() => setup({ minTryMs: -1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'retry.minTryMs' });
});
