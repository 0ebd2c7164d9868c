import t from 'tap';
import type { Endpoint } from '../../../proxy/balance/picker.js';
import { ServicePicker, type ServicePickerOptions } from '../../../proxy/balance/service-picker.js';
import { parseSplit } from '../../../proxy/balance/split.js';
import { seededRandom } from '../../../base/clock.js';
import { ep, eps, fakeClock, sequence, tally } from '../fakes.js';

/** Picks per version over n picks. */
function byVersion(picker: ServicePicker, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const v = picker.pick()?.version ?? '(none)';
    out[v] = (out[v] ?? 0) + 1;
  }
  return out;
}

function make(endpoints: Endpoint[], options: ServicePickerOptions = {}): ServicePicker {
  const clock = fakeClock();
  return new ServicePicker(endpoints, { now: clock.now, random: seededRandom(3), ...options });
}

const fleet = eps('a1:1:v1', 'a2:1:v1', 'a3:1:v1', 'b1:1:v2', 'c1:1:v3', 'c2:1:v3');

t.test('a split holds exactly over 10,000 requests, for both algorithms', async (t) => {
  const cases: { split: string; expected: Record<string, number> }[] = [
    { split: '{"v1": 90, "v2": 10}', expected: { v1: 9_000, v2: 1_000 } },
    { split: '{"v1": 50, "v2": 30, "v3": 20}', expected: { v1: 5_000, v2: 3_000, v3: 2_000 } },
    { split: '{"v1": 1, "v2": 1, "v3": 2}', expected: { v1: 2_500, v2: 2_500, v3: 5_000 } },
    { split: '{"v2": 1}', expected: { v2: 10_000 } },
  ];
  for (const algorithm of ['swrr', 'p2c'] as const) {
    for (const c of cases) {
      const picker = make(fleet, { algorithm, split: parseSplit('backend', c.split) });
      const got = byVersion(picker, 10_000);
      t.strictSame(got, c.expected, `${algorithm} ${c.split}`);
    }
  }
});

t.test('a 90/10 split sends the canary one request in ten, spread out', async (t) => {
  const picker = make(fleet, { algorithm: 'swrr', split: parseSplit('backend', '{"v1": 90, "v2": 10}') });
  const versions = sequence(100, () => picker.pick()).map((id) => (id === 'b1' ? 'v2' : 'v1'));
  const canary = versions.flatMap((v, i) => (v === 'v2' ? [i] : []));
  t.equal(canary.length, 10);
  for (let k = 1; k < canary.length; k++) t.equal(canary[k]! - canary[k - 1]!, 10, 'evenly spaced');
});

t.test('within a version, the instance algorithm spreads the load', async (t) => {
  const picker = make(fleet, { algorithm: 'swrr', split: parseSplit('backend', '{"v1": 90, "v2": 10}') });
  t.strictSame(tally(1_000, () => picker.pick()), { a1: 300, a2: 300, a3: 300, b1: 100 });
});

t.test('a split version without instances hands its share to the others in proportion', async (t) => {
  const split = parseSplit('backend', '{"v1": 60, "v2": 30, "v4": 10}');
  const picker = make(fleet, { split });
  t.strictSame(byVersion(picker, 9_000), { v1: 6_000, v2: 3_000 });
  t.strictSame(picker.versionWeights(), new Map([['v1', 60], ['v2', 30]]));
});

t.test('instances of versions the split does not list get nothing', async (t) => {
  const picker = make(fleet, { split: parseSplit('backend', '{"v1": 1, "v2": 1}') });
  t.equal(byVersion(picker, 1_000)['v3'], undefined);
});

t.test('a split matching no live version is ignored: every instance serves', async (t) => {
  const picker = make(fleet, { algorithm: 'swrr', split: parseSplit('backend', '{"v9": 100}') });
  t.equal(picker.versionWeights(), undefined);
  t.strictSame(tally(600, () => picker.pick()), { a1: 100, a2: 100, a3: 100, b1: 100, c1: 100, c2: 100 });
});

t.test('no split: every instance serves, including ones without a version', async (t) => {
  const picker = make([...eps('a:1:v1', 'b:1:v2'), ep('x')], { algorithm: 'swrr' });
  t.strictSame(tally(300, () => picker.pick()), { a: 100, b: 100, x: 100 });
});

t.test('a version whose instances are all drained counts as absent', async (t) => {
  const picker = make(eps('a:1:v1', 'b:0:v2'), { split: parseSplit('backend', '{"v1": 50, "v2": 50}') });
  t.strictSame(byVersion(picker, 100), { v1: 100 });
});

t.test('setSplit() and update() keep the version rotation and instance state', async (t) => {
  const picker = make(fleet, { algorithm: 'swrr', split: parseSplit('backend', '{"v1": 3, "v2": 1}') });
  const before = sequence(2, () => picker.pick());
  picker.update(fleet.map((e) => ({ ...e })));
  picker.setSplit(parseSplit('backend', '{"v1": 3, "v2": 1}'));
  const fresh = make(fleet, { algorithm: 'swrr', split: parseSplit('backend', '{"v1": 3, "v2": 1}') });
  t.strictSame([...before, ...sequence(6, () => picker.pick())], sequence(8, () => fresh.pick()));
  picker.setSplit(undefined);
  t.equal(picker.versionWeights(), undefined);
  t.equal(Object.keys(tally(600, () => picker.pick())).length, 6);
});

t.test('when every instance of a version is ejected, its share goes to the other versions', async (t) => {
  const hidden = new Set(['b1']);
  const picker = make(fleet, {
    algorithm: 'swrr',
    split: parseSplit('backend', '{"v1": 90, "v2": 10}'),
    available: (e) => !hidden.has(e.id),
  });
  t.strictSame(byVersion(picker, 1_000), { v1: 1_000 });
  hidden.clear();
  t.strictSame(byVersion(picker, 1_000), { v1: 900, v2: 100 });
});

t.test('when every split version is ejected, the all-instances picker decides (panic included)', async (t) => {
  const hidden = new Set(['a1', 'a2', 'a3', 'b1']);
  const picker = make(fleet, { split: parseSplit('backend', '{"v1": 90, "v2": 10}'), available: (e) => !hidden.has(e.id) });
  t.strictSame(byVersion(picker, 100), { v3: 100 }, 'the only available instances');
  hidden.add('c1').add('c2');
  t.equal(byVersion(picker, 100)['(none)'], undefined, 'panic: still picks');
});

t.test('onStart/onEnd reach the instance state used under any split', async (t) => {
  const a = ep('a', 1, 'v1');
  const b = ep('b', 1, 'v1');
  const picker = make([a, b], { algorithm: 'swrr' });
  picker.onStart(a);
  picker.onEnd(a, { latencyMs: 3, ok: false });
  // The failure zeroed a's effective weight in the all-instances picker...
  t.equal(picker.pick()?.id, 'b');
  // ...and in the v1 picker used once a split applies.
  picker.setSplit(parseSplit('backend', '{"v1": 1}'));
  t.equal(picker.pick()?.id, 'b');
});
