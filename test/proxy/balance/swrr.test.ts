import t from 'tap';
import { SwrrPicker } from '../../../proxy/balance/swrr.js';
import { ep, eps, sequence, tally } from '../fakes.js';

t.test('picks in the exact smooth order for each weight set', async (t) => {
  // Worked by hand from nginx's rule: add effective weights, take the largest, subtract the total.
  const cases: { weights: string[]; expected: string }[] = [
    { weights: ['a:5', 'b:1', 'c:1'], expected: 'a a b a c a a' },
    { weights: ['a:1', 'b:1', 'c:1'], expected: 'a b c a b c' },
    { weights: ['a:2', 'b:1'], expected: 'a b a' },
    { weights: ['a:3', 'b:2'], expected: 'a b a b a' },
    { weights: ['a:4', 'b:2', 'c:1'], expected: 'a b a c a b a' },
    { weights: ['a:1', 'b:0', 'c:1'], expected: 'a c a c' },
    { weights: ['a:3'], expected: 'a a a' },
  ];
  for (const c of cases) {
    const picker = new SwrrPicker(eps(...c.weights));
    const expected = c.expected.split(' ');
    t.strictSame(sequence(expected.length, () => picker.pick()), expected, c.weights.join(','));
  }
});

t.test('the sequence repeats with period sum(weights)', async (t) => {
  const picker = new SwrrPicker(eps('a:5', 'b:1', 'c:1'));
  const first = sequence(7, () => picker.pick());
  t.strictSame(sequence(7, () => picker.pick()), first);
  t.strictSame(sequence(7, () => picker.pick()), first);
});

t.test('shares match weights exactly over whole periods and within one pick otherwise', async (t) => {
  const cases: { weights: string[]; n: number }[] = [
    { weights: ['a:10', 'b:5', 'c:1'], n: 16_000 },
    { weights: ['a:7', 'b:3', 'c:2', 'd:1'], n: 9_999 },
    { weights: ['a:100', 'b:1'], n: 10_100 },
    { weights: ['a:1', 'b:1', 'c:1', 'd:1', 'e:1'], n: 1_003 },
  ];
  for (const c of cases) {
    const endpoints = eps(...c.weights);
    const total = endpoints.reduce((sum, e) => sum + e.weight, 0);
    const picker = new SwrrPicker(endpoints);
    const counts = tally(c.n, () => picker.pick());
    for (const e of endpoints) {
      const expected = (c.n * e.weight) / total;
      t.ok(Math.abs((counts[e.id] ?? 0) - expected) <= 1, `${c.weights.join(',')}: ${e.id} got ${counts[e.id]}, expected ${expected}`);
    }
  }
});

t.test('drained endpoints (weight 0) are never picked; all drained picks none', async (t) => {
  const picker = new SwrrPicker(eps('a:0', 'b:2', 'c:0'));
  t.strictSame(tally(100, () => picker.pick()), { b: 100 });
  picker.update(eps('a:0', 'b:0'));
  t.equal(picker.pick(), undefined);
  t.equal(new SwrrPicker([]).pick(), undefined);
});

t.test('update() keeps the rotation of endpoints that stay', async (t) => {
  const picker = new SwrrPicker(eps('a:5', 'b:1', 'c:1'));
  t.strictSame(sequence(3, () => picker.pick()), ['a', 'a', 'b']);
  // Fresh objects with the same ids, plus a drained newcomer: the sequence carries on.
  picker.update(eps('a:5', 'b:1', 'c:1', 'd:0'));
  t.strictSame(sequence(4, () => picker.pick()), ['a', 'c', 'a', 'a']);
});

t.test('update() returns the endpoint objects it was last given', async (t) => {
  const picker = new SwrrPicker([ep('a', 1)]);
  const fresh = { id: 'a', weight: 1, address: '127.0.0.2' };
  picker.update([fresh]);
  t.equal(picker.pick(), fresh);
});

t.test('a new endpoint joins the rotation and gets its share', async (t) => {
  const picker = new SwrrPicker(eps('a:1', 'b:1'));
  sequence(5, () => picker.pick());
  picker.update(eps('a:1', 'b:1', 'c:2'));
  t.strictSame(tally(400, () => picker.pick()), { a: 100, b: 100, c: 200 });
});

t.test('a failure zeroes the effective weight, which climbs back one per pick', async (t) => {
  const picker = new SwrrPicker(eps('a:3', 'b:1'));
  picker.onEnd(ep('a', 3), { latencyMs: 5, ok: false });
  t.equal(picker.effectiveWeight('a'), 0);
  t.equal(picker.pick()?.id, 'b', 'the failed endpoint sits out the next pick');
  t.equal(picker.effectiveWeight('a'), 1);
  picker.pick();
  t.equal(picker.effectiveWeight('a'), 2);
  picker.pick();
  t.equal(picker.effectiveWeight('a'), 3);
  picker.pick();
  t.equal(picker.effectiveWeight('a'), 3, 'never above the configured weight');
  picker.onEnd(ep('a', 3), { latencyMs: 5, ok: true });
  t.equal(picker.effectiveWeight('a'), 3, 'success changes nothing');
});

t.test('a failure penalty survives update(), and a weight change keeps the deficit', async (t) => {
  const picker = new SwrrPicker(eps('a:3', 'b:1'));
  picker.onEnd(ep('a', 3), { latencyMs: 5, ok: false });
  picker.update(eps('a:3', 'b:1'));
  t.equal(picker.effectiveWeight('a'), 0);
  picker.update(eps('a:6', 'b:1'));
  t.equal(picker.effectiveWeight('a'), 3);
  t.equal(picker.effectiveWeight('zzz'), undefined);
});

t.test('onEnd for an endpoint no longer present is ignored', async (t) => {
  const picker = new SwrrPicker(eps('a:1'));
  picker.onStart(ep('gone'));
  picker.onEnd(ep('gone'), { latencyMs: 1, ok: false });
  t.equal(picker.pick()?.id, 'a');
});

t.test('unavailable endpoints are skipped without losing their place', async (t) => {
  const hidden = new Set(['b']);
  const picker = new SwrrPicker(eps('a:5', 'b:1', 'c:1'), { available: (e) => !hidden.has(e.id) });
  // Only a:5 and c:1 take part: a a a c a a.
  t.strictSame(sequence(6, () => picker.pick()), ['a', 'a', 'a', 'c', 'a', 'a']);
  hidden.clear();
  t.strictSame(tally(7, () => picker.pick()), { a: 5, b: 1, c: 1 });
});

t.test('when every endpoint is unavailable, panic mode picks anyway (or not, if off)', async (t) => {
  const panicking = new SwrrPicker(eps('a:1', 'b:1'), { available: () => false });
  t.strictSame(sequence(4, () => panicking.pick()), ['a', 'b', 'a', 'b']);
  const strict = new SwrrPicker(eps('a:1', 'b:1'), { available: () => false, panic: false });
  t.equal(strict.pick(), undefined);
});

t.test('bad weights are refused with WEFT_ERR_WEIGHT_INVALID', async (t) => {
  for (const weight of [-1, 1.5, Number.NaN, 70_000]) {
    t.throws(() => new SwrrPicker([ep('a', weight)]), { code: 'WEFT_ERR_WEIGHT_INVALID', key: 'endpoint a: weight' }, `weight ${weight}`);
  }
});

t.test('duplicate ids collapse to the last one given', async (t) => {
  const picker = new SwrrPicker([ep('a', 1), ep('b', 1), ep('a', 3)]);
  t.strictSame(tally(8, () => picker.pick()), { a: 6, b: 2 });
});
