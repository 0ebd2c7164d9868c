/**
 * P2C over identical endpoints must share the load, take a new endpoint in at
 * once, and give a slow endpoint less and then its share back. Simulated time
 * and seeded noise (fairness-sim.ts), so every figure here is exact and
 * repeatable; the same cases over real sockets are in
 * test/proxy/outbound/balance-fairness.test.ts.
 *
 * Before the fix (Linkerd's fixed 10 s window, a 30 ms guess for unmeasured
 * endpoints), 1,000 sequential picks over three endpoints answering in
 * 1 ms ± 10% went 0/469/531, 0/521/479, 0/564/436, 450/0/550, 0/452/548 for
 * seeds 1-5, and an endpoint 5x slower for 2 s got its share back 18 s after
 * it recovered (4 in flight).
 */
import t from 'tap';
import { seededRandom } from '../../../base/clock.js';
import { P2cPicker } from '../../../proxy/balance/p2c.js';
import type { Endpoint } from '../../../proxy/balance/picker.js';
import { eps } from '../fakes.js';
import { between, countIds, fakeClock, identical, type LatencyModel, type PickRecord, run, withTail } from './fairness-sim.js';

const SEEDS = [1, 2, 3, 4, 5];

/** Three identical endpoints on a fresh picker and clock. */
function three(seed: number) {
  const clock = fakeClock();
  const picker = new P2cPicker<Endpoint>(eps('a', 'b', 'c'), { now: clock.now, random: seededRandom(seed) });
  return { clock, picker };
}

/** Share of `id` among `picks`, 0 when there are none. */
function share(picks: readonly PickRecord[], id: string): number {
  return picks.length === 0 ? 0 : (countIds(picks)[id] ?? 0) / picks.length;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

/** The first request to each endpoint also opens its connection (TCP + mTLS): 20 ms, then `base`. */
function coldFirst(base: LatencyModel, firstMs: number): LatencyModel {
  const seen = new Set<string>();
  return (id, at, u) => {
    if (seen.has(id)) return base(id, at, u);
    seen.add(id);
    return firstMs;
  };
}

t.test('three identical endpoints: each gets 25% to 42% of the picks, sequential and concurrent', async (t) => {
  const cases: { name: string; latency: () => LatencyModel; concurrency: number; requests: number }[] = [];
  for (const [name, latency] of [
    ['1 ms ± 10%', () => identical(1, 0.1)],
    ['20 ms ± 10%', () => identical(20, 0.1)],
    ['1 ms ± 10%, first request 20 ms', () => coldFirst(identical(1, 0.1), 20)],
  ] as const) {
    for (const concurrency of [1, 4, 16]) cases.push({ name, latency, concurrency, requests: 1_000 });
  }
  // One response in 100 twenty times slower (a GC pause, a descheduled process):
  // each pause takes its endpoint out for a moment, so with many in flight the
  // shares even out over a longer run.
  const tail = () => withTail(1, 0.1, 100, 20);
  cases.push({ name: '1 ms ± 10%, 1 in 100 x20', latency: tail, concurrency: 1, requests: 1_000 });
  cases.push({ name: '1 ms ± 10%, 1 in 100 x20', latency: tail, concurrency: 4, requests: 10_000 });
  cases.push({ name: '1 ms ± 10%, 1 in 100 x20', latency: tail, concurrency: 16, requests: 10_000 });
  for (const c of cases) {
    for (const seed of SEEDS) {
      const { clock, picker } = three(seed);
      const picks = run({ picker, clock, concurrency: c.concurrency, requests: c.requests, latency: c.latency(), seed: seed + 100 });
      const shares = ['a', 'b', 'c'].map((id) => share(picks, id));
      t.ok(
        shares.every((s) => s >= 0.25 && s <= 0.42),
        `${c.name}, ${c.concurrency} in flight, seed ${seed}: ${shares.map(pct).join(' / ')} of ${c.requests}`,
      );
    }
  }
});

t.test('a fourth endpoint added after 500 picks takes at least 20% of the next simulated second', async (t) => {
  const cases: { name: string; latency: () => LatencyModel; concurrency: number }[] = [
    { name: '1 ms ± 10%', latency: () => identical(1, 0.1), concurrency: 1 },
    { name: '1 ms ± 10%', latency: () => identical(1, 0.1), concurrency: 16 },
    { name: '20 ms ± 10%', latency: () => identical(20, 0.1), concurrency: 16 },
    // Its first request is slow (a new connection): that must not keep it out.
    { name: '1 ms ± 10%, first request 20 ms', latency: () => coldFirst(identical(1, 0.1), 20), concurrency: 1 },
    { name: '1 ms ± 10%, first request 20 ms', latency: () => coldFirst(identical(1, 0.1), 20), concurrency: 16 },
    { name: '1 ms ± 10%, 1 in 100 x20', latency: () => withTail(1, 0.1, 100, 20), concurrency: 4 },
  ];
  for (const c of cases) {
    for (const seed of SEEDS) {
      const { clock, picker } = three(seed);
      let addedAt = Number.NaN;
      const picks = run({
        picker,
        clock,
        concurrency: c.concurrency,
        untilMs: 60_000,
        stopWhen: (_i, now) => now >= addedAt + 1_000,
        latency: c.latency(),
        seed: seed + 100,
        beforePick: (i, now) => {
          if (i !== 500) return;
          addedAt = now;
          picker.update(eps('a', 'b', 'c', 'd'));
        },
      });
      const second = between(picks, addedAt, addedAt + 1_000);
      const firstPick = picks.find((p) => p.id === 'd');
      t.ok(
        second.length >= 200 && share(second, 'd') >= 0.2,
        `${c.name}, ${c.concurrency} in flight, seed ${seed}: d took ${pct(share(second, 'd'))} of ${second.length} picks in its first second, the first ${
          firstPick === undefined ? 'never' : `${(firstPick.atMs - addedAt).toFixed(1)} ms after it was added`
        }`,
      );
    }
  }
});

t.test('an endpoint that turns slow gets less, and its share back once it recovers', async (t) => {
  // c is `factor` times slower from 1 s to 3 s.
  const cases: { factor: number; concurrency: number; maxWhileSlow: number }[] = [
    { factor: 5, concurrency: 1, maxWhileSlow: 0.1 },
    { factor: 5, concurrency: 4, maxWhileSlow: 0.1 },
    { factor: 2, concurrency: 1, maxWhileSlow: 0.2 },
    { factor: 2, concurrency: 4, maxWhileSlow: 0.2 },
  ];
  for (const c of cases) {
    for (const seed of SEEDS) {
      const { clock, picker } = three(seed);
      const base = identical(1, 0.1);
      const latency: LatencyModel = (id, at, u) => base(id, at, u) * (id === 'c' && at >= 1_000 && at < 3_000 ? c.factor : 1);
      const picks = run({ picker, clock, concurrency: c.concurrency, untilMs: 5_000, latency, seed: seed + 100 });
      const name = `${c.factor}x slower, ${c.concurrency} in flight, seed ${seed}`;
      const before = share(between(picks, 500, 1_000), 'c');
      const slow = share(between(picks, 1_200, 3_000), 'c');
      // Its share back within 100 ms of simulated time: judged over the 900 ms after that.
      const after = share(between(picks, 3_100, 4_000), 'c');
      t.ok(before >= 0.25 && slow <= c.maxWhileSlow && after >= 0.25 && after <= 0.42, `${name}: c got ${pct(before)} before, ${pct(slow)} while slow, ${pct(after)} after`);
    }
  }
});
