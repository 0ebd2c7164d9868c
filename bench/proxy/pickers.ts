/**
 * Picks per second of the proxy's pickers at 10, 100 and 1000 endpoints, next
 * to a peer measured in the same run: a bare uniform random pick from an
 * array, the cheapest possible "balancer". The ratio says what the algorithm
 * costs on this machine, which is more stable across machines than raw rates.
 *
 *   npx tsx bench/proxy/pickers.ts [msPerCase]
 *
 * "pick" calls pick() alone; "cycle" adds onStart + onEnd, what the proxy does
 * per request (P2C's latency bookkeeping lives in onEnd). The real clock is
 * used, as in production: P2C reads it on every pick. Every endpoint has
 * answered once before timing starts (P2C reads an unmeasured endpoint as the
 * service's typical latency, which skips the decay a measured one pays), and
 * latencies vary (10-14 ms, seeded), so both the peak and the blend paths run.
 */
import { P2cPicker } from '../../proxy/balance/p2c.js';
import type { Endpoint, Picker } from '../../proxy/balance/picker.js';
import { SwrrPicker } from '../../proxy/balance/swrr.js';
import { seededRandom, systemClock } from '../../base/clock.js';

const msPerCase = Number(process.argv[2] ?? 300);
const sizes = [10, 100, 1000];

function endpoints(n: number): Endpoint[] {
  // Mixed weights 1..4, as a fleet with a few bigger instances would have.
  return Array.from({ length: n }, (_, i) => ({ id: `host${i}-svc-${i}`, weight: 1 + (i % 4) }));
}

/** Runs `op` in batches for about `ms`; returns operations per second. */
function rate(op: () => void, ms: number): number {
  const batch = 1_000;
  for (let i = 0; i < batch * 20; i++) op(); // warm the JIT
  let count = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < batch; i++) op();
    count += batch;
    elapsed = performance.now() - start;
  }
  return (count / elapsed) * 1000;
}

/** Every endpoint answers once, as in a proxy that has been serving for a while. */
function measured<P extends Picker>(picker: P, list: readonly Endpoint[], random: () => number): P {
  for (const e of list) {
    picker.onStart(e);
    picker.onEnd(e, { latencyMs: 10 + 4 * random(), ok: true });
  }
  return picker;
}

function cycle(picker: Picker, random: () => number): () => void {
  return () => {
    const e = picker.pick();
    if (e === undefined) return;
    picker.onStart(e);
    picker.onEnd(e, { latencyMs: 10 + 4 * random(), ok: true });
  };
}

let sink = 0;
const fmt = (n: number) => `${(n / 1e6).toFixed(2)}M/s`.padStart(10);

console.log(`node ${process.version}, ${msPerCase} ms per case`);
console.log(`${'endpoints'.padEnd(10)}${'picker'.padEnd(16)}${'pick'.padStart(10)}${'cycle'.padStart(10)}${'pick vs peer'.padStart(14)}`);
for (const n of sizes) {
  const list = endpoints(n);
  const random = seededRandom(n);
  const peer = rate(() => {
    sink ^= list[Math.floor(random() * n)]!.weight;
  }, msPerCase);
  console.log(`${String(n).padEnd(10)}${'uniform (peer)'.padEnd(16)}${fmt(peer)}${''.padStart(10)}${'1.00x'.padStart(14)}`);
  const latency = seededRandom(n + 1);
  const cases: [string, () => Picker][] = [
    ['swrr', () => new SwrrPicker(list)],
    ['p2c', () => measured(new P2cPicker(list, { now: systemClock, random: seededRandom(n) }), list, latency)],
  ];
  for (const [name, make] of cases) {
    const picker = make();
    const pick = rate(() => {
      sink ^= picker.pick()?.weight ?? 0;
    }, msPerCase);
    const full = rate(cycle(make(), latency), msPerCase);
    console.log(`${String(n).padEnd(10)}${name.padEnd(16)}${fmt(pick)}${fmt(full)}${`${(pick / peer).toFixed(3)}x`.padStart(14)}`);
  }
}
if (sink === Number.MIN_SAFE_INTEGER) console.log(sink); // keep the work observable
