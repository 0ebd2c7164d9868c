import t from 'tap';
import { MIN_ESTIMATE_MS, PeakEwma } from '../../../proxy/balance/peak-ewma.js';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-9;

t.test('samples move the estimate: peaks jump, lows blend by elapsed time', async (t) => {
  // Each case: seed 30 at t=0, then samples [latency, at]; expected estimate after the last.
  const e1 = Math.exp(-1);
  const cases: { name: string; samples: [number, number][]; expected: number }[] = [
    { name: 'first sample replaces the seed, even below it', samples: [[10, 0]], expected: 10 },
    { name: 'first sample replaces the seed above it', samples: [[50, 0]], expected: 50 },
    { name: 'a higher sample jumps straight to it', samples: [[100, 0], [200, 5]], expected: 200 },
    { name: 'a lower sample at the same instant has no weight', samples: [[100, 0], [50, 0]], expected: 100 },
    { name: 'a lower sample one decay window later has weight 1 - 1/e', samples: [[100, 0], [10, 10_000]], expected: 100 * e1 + 10 * (1 - e1) },
    {
      name: 'blending compounds from the last sample',
      samples: [[100, 0], [10, 5_000], [10, 10_000]],
      expected: (100 * Math.exp(-0.5) + 10 * (1 - Math.exp(-0.5))) * Math.exp(-0.5) + 10 * (1 - Math.exp(-0.5)),
    },
    { name: 'negative latencies count as 0', samples: [[100, 0], [-5, 10_000]], expected: 100 * e1 },
  ];
  for (const c of cases) {
    const ewma = new PeakEwma(30, 0);
    let value = 0;
    for (const [latency, at] of c.samples) value = ewma.observe(latency, at);
    t.ok(close(value, c.expected), `${c.name}: got ${value}, expected ${c.expected}`);
    t.equal(ewma.samples, c.samples.length);
  }
});

t.test('reading decays toward zero and does not change what later samples do', async (t) => {
  const read = new PeakEwma(30, 0);
  const quiet = new PeakEwma(30, 0);
  read.observe(100, 0);
  quiet.observe(100, 0);
  t.equal(read.valueAt(0), 100);
  t.ok(close(read.valueAt(10_000), 100 * Math.exp(-1)));
  for (let at = 0; at < 10_000; at += 100) read.valueAt(at);
  t.equal(read.observe(20, 10_000), quiet.observe(20, 10_000));
});

t.test('the decay window is configurable', async (t) => {
  const fast = new PeakEwma(30, 0, 1_000);
  fast.observe(100, 0);
  t.ok(close(fast.observe(10, 1_000), 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1))));
});

t.test('estimates never read below the floor, so load still counts', async (t) => {
  const ewma = new PeakEwma(30, 0);
  ewma.observe(0, 0);
  t.equal(ewma.valueAt(0), MIN_ESTIMATE_MS);
  const old = new PeakEwma(30, 0);
  old.observe(1_000, 0);
  t.equal(old.valueAt(1e9), MIN_ESTIMATE_MS);
});

t.test('a clock that steps back neither rewinds nor inflates the decay', async (t) => {
  const ewma = new PeakEwma(30, 0);
  ewma.observe(100, 5_000);
  t.equal(ewma.observe(10, 1_000), 100, 'no time has passed as far as the estimate knows');
  t.ok(close(ewma.observe(10, 15_000), 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1))), 'decay measured from 5 s, not 1 s');
});

t.test('a window passed per call replaces decayMs when shorter, never when longer', async (t) => {
  const cases: { name: string; windowMs: number | undefined; effective: number }[] = [
    { name: 'default: decayMs', windowMs: undefined, effective: 10_000 },
    { name: 'shorter: used', windowMs: 10, effective: 10 },
    { name: 'longer: capped at decayMs', windowMs: 60_000, effective: 10_000 },
  ];
  for (const c of cases) {
    const ewma = new PeakEwma(30, 0);
    ewma.observe(100, 0);
    t.ok(close(ewma.valueAt(c.effective, c.windowMs), 100 * Math.exp(-1)), `${c.name}: reads`);
    t.ok(close(ewma.observe(10, c.effective, c.windowMs), 100 * Math.exp(-1) + 10 * (1 - Math.exp(-1))), `${c.name}: blends`);
  }
});
