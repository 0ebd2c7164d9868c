import t from 'tap';
import { DEFAULT_DECAY_ROUND_TRIPS, DEFAULT_RTT_MS, P2cPicker, type P2cOptions, TYPICAL_CLAMP, TYPICAL_WEIGHT } from '../../../proxy/balance/p2c.js';
import type { Endpoint } from '../../../proxy/balance/picker.js';
import { seededRandom } from '../../../base/clock.js';
import { ep, eps, fakeClock, replay, sequence, share, simulate, tally } from '../fakes.js';

/** A picker on a fake clock at t=0 with a seeded random source. */
function setup(endpoints: Endpoint[], options: P2cOptions = {}) {
  const clock = fakeClock();
  const picker = new P2cPicker(endpoints, { now: clock.now, random: seededRandom(7), ...options });
  return { clock, picker };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

/** Gives `id` a measured latency (its first sample replaces the seed). */
function measure(picker: P2cPicker, endpoint: Endpoint, latencyMs: number): void {
  picker.onStart(endpoint);
  picker.onEnd(endpoint, { latencyMs, ok: true });
}

t.test('with two endpoints the cheaper always wins: latency x (outstanding + 1) / weight', async (t) => {
  const cases: {
    name: string;
    a: { weight: number; latency: number; outstanding: number };
    b: { weight: number; latency: number; outstanding: number };
    expected: string;
  }[] = [
    { name: 'faster idle endpoint', a: { weight: 1, latency: 10, outstanding: 0 }, b: { weight: 1, latency: 20, outstanding: 0 }, expected: 'a' },
    { name: 'faster but busy (30 > 20)', a: { weight: 1, latency: 10, outstanding: 2 }, b: { weight: 1, latency: 20, outstanding: 0 }, expected: 'b' },
    { name: 'equal latency, less loaded', a: { weight: 1, latency: 20, outstanding: 3 }, b: { weight: 1, latency: 20, outstanding: 1 }, expected: 'b' },
    { name: 'weight 2 halves the cost (15 < 20)', a: { weight: 2, latency: 10, outstanding: 2 }, b: { weight: 1, latency: 20, outstanding: 0 }, expected: 'a' },
    { name: 'weight 2 busy (20 > 15)', a: { weight: 2, latency: 10, outstanding: 3 }, b: { weight: 1, latency: 15, outstanding: 0 }, expected: 'b' },
    { name: 'heavier weight beats slower latency (40/4 < 20)', a: { weight: 4, latency: 40, outstanding: 0 }, b: { weight: 1, latency: 20, outstanding: 0 }, expected: 'a' },
  ];
  for (const c of cases) {
    for (const order of [[0, 0], [0.9, 0.1]]) {
      const a = ep('a', c.a.weight);
      const b = ep('b', c.b.weight);
      const { picker } = setup([a, b], { random: replay(order) });
      measure(picker, a, c.a.latency);
      measure(picker, b, c.b.latency);
      for (let i = 0; i < c.a.outstanding; i++) picker.onStart(a);
      for (let i = 0; i < c.b.outstanding; i++) picker.onStart(b);
      t.equal(picker.pick()?.id, c.expected, `${c.name} (random ${order})`);
    }
  }
});

t.test('a tie goes to the first of the two sampled', async (t) => {
  const [a, b] = eps('a', 'b');
  t.equal(setup([a!, b!], { random: replay([0, 0]) }).picker.pick()?.id, 'a');
  t.equal(setup([a!, b!], { random: replay([0.9, 0.1]) }).picker.pick()?.id, 'b');
});

t.test('under load the faster endpoint takes most requests', async (t) => {
  const { clock, picker } = setup(eps('a', 'b'));
  const latency: Record<string, number> = { a: 10, b: 100 };
  const counts = simulate(picker, clock, { durationMs: 5_000, perMs: 1, latencyMs: (e) => latency[e.id]! });
  // a reaches b's cost only with ~9 requests in flight, i.e. around 90% of arrivals or more.
  t.ok(share(counts, 'a') > 0.9, `a share ${share(counts, 'a')}`);
  t.ok((counts['b'] ?? 0) > 0, 'the slow endpoint is still probed');
});

t.test('one slow endpoint among ten is all but avoided; the rest share evenly', async (t) => {
  const endpoints = eps('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j');
  const { clock, picker } = setup(endpoints);
  const counts = simulate(picker, clock, { durationMs: 5_000, perMs: 2, latencyMs: (e) => (e.id === 'a' ? 200 : 20) });
  t.ok(share(counts, 'a') < 0.01, `slow share ${share(counts, 'a')}`);
  for (const e of endpoints.slice(1)) t.ok(Math.abs(share(counts, e.id) - 1 / 9) < 0.01, `${e.id} share ${share(counts, e.id)}`);
});

t.test('at equal latency, load follows weight', async (t) => {
  const cases: { specs: string[]; expected: Record<string, number> }[] = [
    { specs: ['a:1', 'b:1'], expected: { a: 0.5, b: 0.5 } },
    { specs: ['a:3', 'b:1'], expected: { a: 0.75, b: 0.25 } },
    { specs: ['a:2', 'b:1', 'c:1'], expected: { a: 0.5, b: 0.25, c: 0.25 } },
  ];
  for (const c of cases) {
    const { clock, picker } = setup(eps(...c.specs));
    const counts = simulate(picker, clock, { durationMs: 5_000, perMs: 2, latencyMs: () => 20 });
    for (const [id, want] of Object.entries(c.expected)) {
      t.ok(Math.abs(share(counts, id) - want) < 0.03, `${c.specs.join(',')}: ${id} share ${share(counts, id)}, want ${want}`);
    }
  }
});

t.test('drained endpoints are never picked; all drained or none picks nothing', async (t) => {
  const { picker } = setup(eps('a:0', 'b:1', 'c:1'));
  const counts = tally(1_000, () => picker.pick());
  t.equal(counts['a'], undefined);
  t.equal((counts['b'] ?? 0) + (counts['c'] ?? 0), 1_000);
  t.equal(setup(eps('a:0', 'b:0')).picker.pick(), undefined);
  t.equal(setup([]).picker.pick(), undefined);
  t.strictSame(sequence(3, () => setup(eps('a:0', 'b:5')).picker.pick()), ['b', 'b', 'b']);
  t.equal(picker.cost('a'), Number.POSITIVE_INFINITY);
});

t.test("an endpoint nothing is known about reads as the service's typical latency", async (t) => {
  const [a, b] = eps('a', 'b');
  const { picker } = setup([a!, b!]);
  t.equal(picker.estimateMs('a'), DEFAULT_RTT_MS, 'nothing measured: the default RTT');
  measure(picker, a!, 10);
  t.equal(picker.estimateMs('b'), 10, 'the first response replaces the default for every endpoint not yet measured');
  measure(picker, b!, 50);
  // An EWMA of responses, each counted as at most TYPICAL_CLAMP x the typical (50 -> 40).
  const typical = 10 + TYPICAL_WEIGHT * (TYPICAL_CLAMP * 10 - 10);
  t.ok(close(picker.typicalMs(), typical), `typical latency ${picker.typicalMs()}, expected ${typical}`);
  picker.onEnd(b!, { latencyMs: 5, ok: false });
  t.ok(close(picker.typicalMs(), typical), 'failures do not move it');
  picker.update(eps('a', 'b', 'c'));
  t.equal(picker.estimateMs('c'), picker.typicalMs());
  // So it is tried: it beats the slower peer whenever the two are sampled together.
  const counts = tally(300, () => picker.pick());
  t.ok((counts['c'] ?? 0) > 50, `new endpoint picked ${counts['c']} times`);
  t.equal(setup(eps('a'), { defaultRttMs: 5 }).picker.estimateMs('a'), 5);
});

t.test('a new endpoint beside a faster measured one gets a probe at once, then competes on its own figure', async (t) => {
  const [a, b] = eps('a', 'b');
  const { clock, picker } = setup([a!]);
  // a was slow once, then fast: the typical latency (slow to move) stays above a's own estimate.
  measure(picker, a!, 10);
  for (let i = 0; i < 20; i++) {
    clock.advance(50);
    measure(picker, a!, 1);
  }
  picker.update([a!, b!]);
  t.ok(picker.estimateMs('a')! < picker.estimateMs('b')!, `a reads ${picker.estimateMs('a')} ms, b (unmeasured) ${picker.estimateMs('b')} ms`);
  // Sequential requests, as health probes or a single client make them.
  const picks: string[] = [];
  for (let i = 0; i < 200; i++) {
    const e = picker.pick()!;
    picks.push(e.id);
    picker.onStart(e);
    picker.onEnd(e, { latencyMs: 1, ok: true });
  }
  t.equal(picks[0], 'b', 'the first request goes to the endpoint never measured');
  t.ok(picks.filter((id) => id === 'b').length > 20, `b keeps a share at equal latency (${picks.filter((id) => id === 'b').length} of 200)`);
  // Busy, it is no longer new: it competes on cost like any other.
  const c = ep('c', 1);
  const { picker: other } = setup([a!, c], { random: replay([0, 0]) });
  other.onStart(c);
  measure(other, a!, 1);
  t.equal(other.pick()?.id, 'a', 'an unmeasured endpoint with a request in flight gets no second probe ahead of its peer');
});

t.test('update() keeps latency estimates and outstanding counts of endpoints that stay', async (t) => {
  const [a, b] = eps('a', 'b');
  const { picker } = setup([a!, b!]);
  measure(picker, a!, 10);
  picker.onStart(a!);
  picker.update(eps('a:2', 'c'));
  t.equal(picker.estimateMs('a'), 10);
  t.equal(picker.outstanding('a'), 1);
  t.equal(picker.cost('a'), 10, '10 x (1 + 1) / 2');
  t.equal(picker.estimateMs('b'), undefined, 'removed endpoints are forgotten');
  picker.update(eps('a:2', 'b', 'c'));
  t.equal(picker.estimateMs('b'), 10, 'and come back unmeasured (the typical latency), not with their old state');
});

t.test('outstanding counts follow onStart/onEnd and never go negative', async (t) => {
  const a = ep('a');
  const { picker } = setup([a]);
  picker.onStart(a);
  picker.onStart(a);
  t.equal(picker.outstanding('a'), 2);
  picker.onEnd(a, { latencyMs: 5, ok: true });
  picker.onEnd(a, { latencyMs: 5, ok: true });
  picker.onEnd(a, { latencyMs: 5, ok: true });
  t.equal(picker.outstanding('a'), 0);
  picker.onEnd(ep('ghost'), { latencyMs: 5, ok: true });
  t.equal(picker.outstanding('ghost'), undefined);
});

t.test('a fast failure counts as slow (failure penalty)', async (t) => {
  const [a, b] = eps('a', 'b');
  const { picker } = setup([a!, b!]);
  picker.onStart(a!);
  picker.onEnd(a!, { latencyMs: 2, ok: false });
  t.equal(picker.estimateMs('a'), 1_000);
  measure(picker, b!, 40);
  t.equal(picker.pick()?.id, 'b');
  const custom = setup([a!], { failurePenaltyMs: 250 }).picker;
  custom.onEnd(a!, { latencyMs: 2, ok: false });
  t.equal(custom.estimateMs('a'), 250);
  custom.onEnd(a!, { latencyMs: 900, ok: false });
  t.equal(custom.estimateMs('a'), 900, 'a slower failure counts at its own latency');
});

t.test('a once-slow endpoint is tried again as its estimate decays', async (t) => {
  const [a, b] = eps('a', 'b');
  const { clock, picker } = setup([a!, b!]);
  measure(picker, a!, 10);
  measure(picker, b!, 1_000);
  t.equal(picker.pick()?.id, 'a');
  // 1000 ms decays below a fresh 10 ms after ln(100) x 10 s ~ 46 s without samples;
  // a keeps being measured at 10 ms.
  clock.advance(50_000);
  measure(picker, a!, 10);
  t.equal(picker.pick()?.id, 'b');
});

t.test('estimates decay over a window of ten typical round trips, at most 10 s', async (t) => {
  const cases: { name: string; typical: number; slow: number; windowMs: number }[] = [
    { name: '1 ms service', typical: 1, slow: 20, windowMs: 10 },
    { name: '20 ms service', typical: 20, slow: 400, windowMs: 200 },
    { name: '2 s service: capped at 10 s', typical: 2_000, slow: 40_000, windowMs: 10_000 },
  ];
  for (const c of cases) {
    const [a, b] = eps('a', 'b');
    const { clock, picker } = setup([a!, b!]);
    measure(picker, a!, c.typical);
    measure(picker, b!, c.slow);
    // The typical latency moved a little towards the slow response; put it back.
    for (let i = 0; i < 400; i++) measure(picker, a!, c.typical);
    t.ok(Math.abs(picker.typicalMs() / c.typical - 1) < 1e-6, `${c.name}: typical ${picker.typicalMs()}`);
    t.equal(c.windowMs, Math.min(10_000, DEFAULT_DECAY_ROUND_TRIPS * c.typical));
    clock.advance(c.windowMs);
    t.ok(Math.abs(picker.estimateMs('b')! / (c.slow / Math.E) - 1) < 1e-6, `${c.name}: b reads ${picker.estimateMs('b')} after one window`);
    // Twenty times slower than usual: back in front after ln 20 windows (30 round trips for the fast services).
    clock.advance(c.windowMs * (Math.log(20) - 1) + 1);
    measure(picker, a!, c.typical);
    t.equal(picker.pick()?.id, 'b', `${c.name}: tried again after ln 20 windows`);
  }
});

t.test('unavailable endpoints are skipped; all unavailable falls back to panic', async (t) => {
  const hidden = new Set(['a', 'b', 'c']);
  const endpoints = eps('a', 'b', 'c', 'd', 'e', 'f');
  const { picker } = setup(endpoints, { available: (e) => !hidden.has(e.id) });
  const counts = tally(3_000, () => picker.pick());
  t.strictSame(Object.keys(counts).sort(), ['d', 'e', 'f']);
  for (const id of ['d', 'e', 'f']) t.ok(Math.abs(counts[id]! / 3_000 - 1 / 3) < 0.05, `${id}: ${counts[id]}`);
  hidden.add('d').add('e');
  t.strictSame(tally(20, () => picker.pick()), { f: 20 }, 'one available endpoint takes everything');
  hidden.add('f');
  t.equal(Object.keys(tally(100, () => picker.pick())).length, 6, 'panic: all six are used again');
  const strict = setup(endpoints, { available: () => false, panic: false }).picker;
  t.equal(strict.pick(), undefined);
});

t.test('the same seed gives the same picks', async (t) => {
  const a = setup(eps('a', 'b', 'c', 'd')).picker;
  const b = setup(eps('a', 'b', 'c', 'd')).picker;
  t.strictSame(sequence(50, () => a.pick()), sequence(50, () => b.pick()));
});

t.test('bad options are refused with WEFT_ERR_CONFIG_INVALID naming the option', async (t) => {
  t.throws(() => setup([], { decayMs: 0 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'balance.decayMs' });
  t.throws(() => setup([], { decayRoundTrips: 0 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'balance.decayRoundTrips' });
  t.throws(() => setup([], { defaultRttMs: Number.NaN }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'balance.defaultRttMs' });
  t.throws(() => setup([], { failurePenaltyMs: -1 }), { code: 'WEFT_ERR_CONFIG_INVALID', key: 'balance.failurePenaltyMs' });
});
