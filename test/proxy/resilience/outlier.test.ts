import t from 'tap';
import { SwrrPicker } from '../../../proxy/balance/swrr.js';
import { OutlierDetector, type OutlierOptions } from '../../../proxy/resilience/outlier.js';
import { eps, fakeClock, tally } from '../fakes.js';

function setup(ids: string[], options: OutlierOptions = {}) {
  const clock = fakeClock();
  return { clock, detector: new OutlierDetector(ids, { now: clock.now, ...options }) };
}

/** Reports `n` failures for `id`; returns the last result. */
function fail(detector: OutlierDetector, id: string, n: number) {
  let last: ReturnType<OutlierDetector['onResult']>;
  for (let i = 0; i < n; i++) last = detector.onResult(id, false);
  return last;
}

t.test('five consecutive failures eject for 30 s; the host returns by itself', async (t) => {
  const { clock, detector } = setup(['a', 'b', 'c', 'd']);
  t.equal(fail(detector, 'a', 4), undefined, 'four failures: still in');
  t.strictSame(detector.onResult('a', false), { id: 'a', ejections: 1, durationMs: 30_000, untilMs: 30_000 });
  t.equal(detector.isEjected('a'), true);
  t.strictSame(detector.ejected(), ['a']);
  clock.set(29_999);
  t.equal(detector.isEjected('a'), true);
  clock.set(30_000);
  t.equal(detector.isEjected('a'), false, 'back after exactly 30 s');
  t.strictSame(detector.ejected(), []);
});

t.test('each re-ejection lasts 30 s longer, up to 300 s', async (t) => {
  const { clock, detector } = setup(['a', 'b']);
  const durations: number[] = [];
  for (let i = 0; i < 12; i++) {
    const ejection = fail(detector, 'a', 5);
    durations.push(ejection?.durationMs ?? 0);
    clock.set(ejection?.untilMs ?? clock.now()); // fail again the moment it returns
  }
  t.strictSame(durations, [30_000, 60_000, 90_000, 120_000, 150_000, 180_000, 210_000, 240_000, 270_000, 300_000, 300_000, 300_000]);
});

t.test('the sequence eject -> return -> re-eject for 60 s', async (t) => {
  const { clock, detector } = setup(['a', 'b', 'c']);
  t.equal(fail(detector, 'a', 5)?.durationMs, 30_000);
  clock.set(45_000);
  t.equal(detector.isEjected('a'), false);
  t.strictSame(fail(detector, 'a', 5), { id: 'a', ejections: 2, durationMs: 60_000, untilMs: 105_000 });
  clock.set(104_999);
  t.equal(detector.isEjected('a'), true);
  clock.set(105_000);
  t.equal(detector.isEjected('a'), false);
});

t.test('the ejection count steps down by one per 300 s back in service', async (t) => {
  const { clock, detector } = setup(['a', 'b']);
  fail(detector, 'a', 5); // out until 30 s
  clock.set(30_000);
  fail(detector, 'a', 5); // second: out until 90 s
  t.equal(detector.ejectionCount('a'), 2);
  clock.set(90_000 + 299_999);
  t.equal(detector.ejectionCount('a'), 2);
  clock.set(90_000 + 300_000);
  t.equal(detector.ejectionCount('a'), 1);
  clock.set(90_000 + 600_000);
  t.equal(detector.ejectionCount('a'), 0);
  t.equal(fail(detector, 'a', 5)?.durationMs, 30_000, 'a reformed host starts over at 30 s');
  t.equal(detector.ejectionCount('zzz'), undefined);
});

t.test('a step-down earned before a re-ejection shortens it', async (t) => {
  const { clock, detector } = setup(['a', 'b']);
  fail(detector, 'a', 5);
  clock.set(30_000);
  fail(detector, 'a', 5); // count 2, back at 90 s
  clock.set(90_000 + 300_000);
  t.equal(fail(detector, 'a', 5)?.durationMs, 60_000, 'count 2 - 1 + 1 = 2');
});

t.test('never more than half the hosts are ejected', async (t) => {
  const cases: { hosts: number; maxEjected: number }[] = [
    { hosts: 1, maxEjected: 0 },
    { hosts: 2, maxEjected: 1 },
    { hosts: 3, maxEjected: 1 },
    { hosts: 4, maxEjected: 2 },
    { hosts: 5, maxEjected: 2 },
    { hosts: 10, maxEjected: 5 },
  ];
  for (const c of cases) {
    const ids = Array.from({ length: c.hosts }, (_, i) => `h${i}`);
    const { detector } = setup(ids);
    for (const id of ids) fail(detector, id, 5);
    t.equal(detector.ejected().length, c.maxEjected, `${c.hosts} hosts`);
  }
  const { detector } = setup(['a'], { maxEjectionPercent: 100 });
  t.equal(fail(detector, 'a', 5)?.durationMs, 30_000, 'at 100% even a lone host may go');
});

t.test('a host refused by the cap is ejected on its next failure once there is room', async (t) => {
  const { clock, detector } = setup(['a', 'b', 'c', 'd']);
  fail(detector, 'a', 5);
  clock.set(10_000);
  fail(detector, 'b', 5);
  t.equal(fail(detector, 'c', 5), undefined, 'cap reached: c stays in');
  t.strictSame(detector.ejected(), ['a', 'b']);
  clock.set(30_000); // a returns
  t.strictSame(detector.onResult('c', false), { id: 'c', ejections: 1, durationMs: 30_000, untilMs: 60_000 });
  t.strictSame(detector.ejected(), ['b', 'c']);
});

t.test('a success resets the consecutive count', async (t) => {
  const { detector } = setup(['a', 'b']);
  fail(detector, 'a', 4);
  detector.onResult('a', true);
  t.equal(fail(detector, 'a', 4), undefined);
  t.equal(detector.onResult('a', false)?.ejections, 1);
});

t.test('results that arrive while ejected do not count; a returned host needs five fresh failures', async (t) => {
  const { clock, detector } = setup(['a', 'b']);
  fail(detector, 'a', 5);
  clock.set(10_000);
  t.equal(fail(detector, 'a', 20), undefined, 'late failures neither extend nor re-eject');
  clock.set(30_000);
  t.equal(fail(detector, 'a', 4), undefined);
  t.equal(detector.onResult('a', false)?.durationMs, 60_000);
});

t.test('update() keeps history of hosts that stay, forgets the rest; unknown ids are ignored', async (t) => {
  const { detector } = setup(['a', 'b', 'c', 'd']);
  fail(detector, 'a', 5);
  fail(detector, 'b', 3);
  detector.update(['a', 'b', 'e', 'f']);
  t.equal(detector.isEjected('a'), true);
  t.equal(fail(detector, 'b', 2)?.id, 'b', 'b kept its three earlier failures');
  detector.update(['b', 'e', 'f', 'g']);
  t.equal(detector.isEjected('a'), false);
  t.equal(detector.onResult('nobody', false), undefined);
  t.equal(detector.isEjected('nobody'), false);
});

t.test('plugged into a picker, ejected hosts get no traffic until they return', async (t) => {
  const { clock, detector } = setup(['a', 'b', 'c']);
  const picker = new SwrrPicker(eps('a', 'b', 'c'), { available: detector.available });
  fail(detector, 'b', 5);
  t.strictSame(tally(100, () => picker.pick()), { a: 50, c: 50 });
  clock.set(30_000);
  const counts = tally(99, () => picker.pick());
  t.equal(counts['b'], 33);
});

t.test('bad options are refused, naming the option', async (t) => {
  t.throws(() => setup([], { consecutiveFailures: 0 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'outlier.consecutiveFailures' });
  t.throws(() => setup([], { maxEjectionPercent: 101 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'outlier.maxEjectionPercent' });
  t.throws(() => setup([], { baseEjectionMs: 60_000, maxEjectionMs: 30_000 }), {
    code: 'WEFT_ERR_CONFIG_INVALID',
    key: 'outlier.maxEjectionMs',
  });
});
