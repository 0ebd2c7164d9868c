/**
 * Test doubles for the proxy's pure core: a clock the test moves by hand, a
 * random source that replays given numbers, and terse endpoint builders.
 * (Not a *.test.ts file, so tap does not run it.)
 */
import type { Clock, Random } from '../../base/clock.js';
import type { Endpoint } from '../../proxy/balance/picker.js';

/** A clock at `startMs` that moves only when told. */
export interface FakeClock {
  readonly now: Clock;
  advance(ms: number): void;
  set(ms: number): void;
}

/** Creates a manual clock. */
export function fakeClock(startMs = 0): FakeClock {
  let t = startMs;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** A random source returning `values` in turn, cycling. */
export function replay(values: readonly number[]): Random {
  let i = 0;
  return () => {
    const v = values[i % values.length]!;
    i++;
    return v;
  };
}

/** Endpoint `id` with a weight (default 1) and optional version. */
export function ep(id: string, weight = 1, version?: string): Endpoint {
  return version === undefined ? { id, weight } : { id, weight, version };
}

/** Endpoints from "id:weight" or "id:weight:version" specs, e.g. eps('a:5', 'b:1'). */
export function eps(...specs: string[]): Endpoint[] {
  return specs.map((spec) => {
    const [id, weight, version] = spec.split(':');
    return ep(id!, weight === undefined ? 1 : Number(weight), version);
  });
}

/** Counts of each id over `n` calls of `pick`. */
export function tally(n: number, pick: () => { id: string } | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const id = pick()?.id ?? '(none)';
    out[id] = (out[id] ?? 0) + 1;
  }
  return out;
}

/** The ids of `n` picks in order. */
export function sequence(n: number, pick: () => { id: string } | undefined): string[] {
  return Array.from({ length: n }, () => pick()?.id ?? '(none)');
}

/** Load for simulate(): arrivals per millisecond and each endpoint's latency. */
export interface Load<E extends Endpoint> {
  readonly durationMs: number;
  readonly perMs: number;
  readonly latencyMs: (endpoint: E) => number;
  readonly ok?: (endpoint: E) => boolean;
}

/**
 * Drives a picker with open-loop traffic on the fake clock, a millisecond at
 * a time: finished requests report onEnd, then new ones pick and onStart.
 * Returns how many requests each endpoint got.
 */
export function simulate<E extends Endpoint>(
  picker: { pick(): E | undefined; onStart(e: E): void; onEnd(e: E, r: { latencyMs: number; ok: boolean }): void },
  clock: FakeClock,
  load: Load<E>,
): Record<string, number> {
  const counts: Record<string, number> = {};
  let inflight: { endpoint: E; start: number; end: number }[] = [];
  const start = clock.now();
  for (let t = start; t < start + load.durationMs; t++) {
    clock.set(t);
    const still: typeof inflight = [];
    for (const r of inflight) {
      if (r.end <= t) picker.onEnd(r.endpoint, { latencyMs: r.end - r.start, ok: load.ok?.(r.endpoint) ?? true });
      else still.push(r);
    }
    inflight = still;
    for (let k = 0; k < load.perMs; k++) {
      const endpoint = picker.pick();
      if (endpoint === undefined) continue;
      counts[endpoint.id] = (counts[endpoint.id] ?? 0) + 1;
      picker.onStart(endpoint);
      inflight.push({ endpoint, start: t, end: t + load.latencyMs(endpoint) });
    }
  }
  return counts;
}

/** Share of `id` in a tally. */
export function share(counts: Record<string, number>, id: string): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : (counts[id] ?? 0) / total;
}
