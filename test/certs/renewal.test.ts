import t from 'tap';
import { LeafRenewer, type Timers, type Validity, renewalTime } from '../../certs/renewal.js';

const HOUR = 3600_000;
const leaf = (start: number, hours = 72): Validity => ({ notBefore: new Date(start), notAfter: new Date(start + hours * HOUR) });

t.test('renewalTime lies between 60% and 90% of the lifetime', async (t) => {
  const v = leaf(0, 100);
  const cases: Array<[number, number]> = [
    [0, 60],
    [0.5, 75],
    [0.9999, 89.997],
  ];
  for (const [random, hours] of cases) t.equal(Math.round(renewalTime(v, random).getTime() / 360) / 10_000, hours, `random ${random} -> ${hours} h`);
  for (let i = 0; i < 1000; i++) {
    const at = renewalTime(v).getTime();
    if (at < 60 * HOUR || at >= 90 * HOUR) t.fail(`out of range: ${at / HOUR} h`);
  }
  t.pass('1000 random draws all within [60%, 90%)');
});

/** Fake timers: records what is armed; the test fires them. */
function fakeTimers() {
  const armed = new Map<number, { fn: () => void; ms: number }>();
  let next = 0;
  const timers: Timers = {
    set: (fn, ms) => {
      armed.set(++next, { fn, ms });
      return next;
    },
    clear: (h) => {
      armed.delete(h as number);
    },
  };
  const only = () => {
    t.equal(armed.size, 1, 'exactly one timer armed');
    return [...armed.values()][0]!;
  };
  /** Fires the armed timer as the runtime would: it is no longer armed once it runs. */
  const fire = () => {
    const [id, timer] = [...armed.entries()][0]!;
    armed.delete(id);
    timer.fn();
  };
  return { timers, armed, only, fire };
}

t.test('LeafRenewer renews at the drawn point, then schedules from the new leaf', async (t) => {
  let now = 0;
  const ft = fakeTimers();
  const renewed: number[] = [];
  const r = new LeafRenewer({
    current: leaf(0),
    clock: () => now,
    random: () => 0.5,
    timers: ft.timers,
    renew: async () => {
      renewed.push(now);
      return leaf(now);
    },
  });
  r.start();
  t.equal(ft.armed.size, 1);
  t.equal(ft.only().ms, 54 * HOUR, '75% of 72 h');
  t.equal(r.nextRenewalAt, 54 * HOUR);
  now = 54 * HOUR;
  ft.fire();
  await new Promise((resolve) => setImmediate(resolve));
  t.strictSame(renewed, [54 * HOUR]);
  t.equal(ft.armed.size, 1, 'next renewal armed');
  t.equal(r.nextRenewalAt, 108 * HOUR);
  r.stop();
  t.equal(ft.armed.size, 0, 'stop clears the timer');
  t.equal(r.nextRenewalAt, undefined);
});

t.test('LeafRenewer retries failures with backoff, then recovers', async (t) => {
  let now = 0;
  const ft = fakeTimers();
  const errors: string[] = [];
  let fail = 3;
  const r = new LeafRenewer({
    current: leaf(0),
    clock: () => now,
    random: () => 0,
    timers: ft.timers,
    retryMs: 1000,
    maxRetryMs: 3000,
    onError: (e) => errors.push((e as Error).message),
    renew: async () => {
      if (fail-- > 0) throw new Error('CA unreachable');
      return leaf(now);
    },
  });
  r.start();
  now = ft.only().ms;
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    ft.fire();
    await new Promise((resolve) => setImmediate(resolve));
    delays.push(ft.only().ms);
    now += ft.only().ms;
  }
  t.strictSame(delays.slice(0, 3), [500, 1000, 1500], 'backoff doubles, capped, equal jitter (random 0: half the ceiling)');
  t.equal(delays[3], 72 * HOUR * 0.6, 'after success: 60% of the new leaf');
  t.equal(errors.length, 3);
  r.stop();
});

t.test('renewSoon pulls renewal forward within a window, never later', async (t) => {
  const now = 10 * HOUR;
  const ft = fakeTimers();
  const r = new LeafRenewer({ current: leaf(0), clock: () => now, random: () => 0.5, timers: ft.timers, renew: async () => leaf(now) });
  r.start();
  r.renewSoon(HOUR);
  t.equal(r.nextRenewalAt, now + HOUR / 2, 'jittered inside the window');
  r.renewSoon(100 * HOUR);
  t.equal(r.nextRenewalAt, now + HOUR / 2, 'a later point does not postpone');
  t.equal(ft.armed.size, 1, 'one timer at a time');
  r.stop();
});

t.test('long waits re-arm instead of overflowing setTimeout', async (t) => {
  const now = 0;
  const ft = fakeTimers();
  const r = new LeafRenewer({ current: leaf(0, 24 * 365), clock: () => now, random: () => 0, timers: ft.timers, renew: async () => leaf(now) });
  r.start();
  t.equal(ft.only().ms, 2 ** 31 - 1);
  ft.fire();
  t.equal(ft.armed.size, 1, 're-armed, not renewed');
  r.stop();
});
