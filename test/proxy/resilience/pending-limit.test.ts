import t from 'tap';
import { DEFAULT_PENDING_LIMIT, PendingLimit, PendingLimits } from '../../../proxy/resilience/pending-limit.js';

t.test('admits up to the limit, then refuses with a reason for the 503', async (t) => {
  const limit = new PendingLimit('backend', 2);
  const first = limit.tryAcquire();
  const second = limit.tryAcquire();
  t.equal(first.ok, true);
  t.equal(second.ok, true);
  t.equal(limit.pending, 2);
  t.strictSame(limit.tryAcquire(), {
    ok: false,
    code: 'WEFT_ERR_PENDING_LIMIT',
    status: 503,
    reason: 'weft: pending request limit 2 reached for service backend',
  });
  if (first.ok) first.release();
  t.equal(limit.pending, 1);
  t.equal(limit.tryAcquire().ok, true, 'a released slot is free again');
});

t.test('releasing twice frees only one slot', async (t) => {
  const limit = new PendingLimit('backend', 1);
  const a = limit.tryAcquire();
  t.ok(a.ok);
  if (!a.ok) return;
  a.release();
  a.release();
  t.equal(limit.pending, 0);
  t.equal(limit.tryAcquire().ok, true);
  t.equal(limit.tryAcquire().ok, false, 'the limit still holds after a double release');
});

t.test('the default limit is 1024', async (t) => {
  const limit = new PendingLimit('backend');
  t.equal(limit.limit, DEFAULT_PENDING_LIMIT);
  let admitted = 0;
  while (limit.tryAcquire().ok) admitted++;
  t.equal(admitted, 1024);
  const refused = limit.tryAcquire();
  t.equal(refused.ok, false);
  t.equal(refused.ok ? '' : refused.reason, 'weft: pending request limit 1024 reached for service backend');
});

t.test('services have separate limits, with per-service overrides', async (t) => {
  const limits = new PendingLimits({ defaultLimit: 1, perService: { big: 3 } });
  t.equal(limits.tryAcquire('a').ok, true);
  t.equal(limits.tryAcquire('a').ok, false);
  t.equal(limits.tryAcquire('b').ok, true, 'b is not held back by a');
  t.strictSame([1, 2, 3, 4].map(() => limits.tryAcquire('big').ok), [true, true, true, false]);
  t.equal(limits.for('big').limit, 3);
  t.equal(limits.for('big'), limits.for('big'), 'one limiter per service');
});

t.test('bad limits are refused, naming the key', async (t) => {
  t.throws(() => new PendingLimit('backend', 0), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'proxy.pendingLimit' });
  t.throws(() => new PendingLimits({ perService: { web: 2.5 } }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'proxy.pendingLimits.web' });
});
