/**
 * A deterministic load simulation for fairness tests of the pickers: closed-loop
 * clients (k requests always in flight; k = 1 is sequential) against endpoints
 * whose latency is a function of the endpoint, the simulated time and a seeded
 * random source. Events run in time order on a fake clock, so a run is a pure
 * function of its inputs. (Not a *.test.ts file, so tap does not run it.)
 */
import { type Random, seededRandom } from '../../../base/clock.js';
import type { Endpoint, Picker } from '../../../proxy/balance/picker.js';
import { type FakeClock, fakeClock } from '../fakes.js';

/** Latency of one request to `id` sent at `atMs`; `u` is a fresh uniform [0, 1) draw. */
export type LatencyModel = (id: string, atMs: number, u: number) => number;

/** Identical endpoints: `baseMs` x (1 ± noise), uniform. */
export function identical(baseMs: number, noise: number): LatencyModel {
  return (_id, _at, u) => baseMs * (1 + noise * (2 * u - 1));
}

/**
 * Like identical(), but one request in `every` (by the same draw) takes
 * `factor` times as long: a GC pause or a descheduled process, the tail a real
 * machine adds to identical instances.
 */
export function withTail(baseMs: number, noise: number, every: number, factor: number): LatencyModel {
  return (_id, _at, u) => {
    const slow = u < 1 / every;
    const v = slow ? u * every : u;
    return baseMs * (1 + noise * (2 * v - 1)) * (slow ? factor : 1);
  };
}

/** One pick as the simulation saw it. */
export interface PickRecord {
  readonly atMs: number;
  readonly id: string;
}

/** A run's inputs. */
export interface SimRun<E extends Endpoint> {
  readonly picker: Picker<E>;
  readonly clock: FakeClock;
  /** Requests kept in flight (1 = sequential: each completes before the next starts). */
  readonly concurrency: number;
  /** Requests to send in all (default: no limit; then `untilMs` must be set). */
  readonly requests?: number | undefined;
  /** No request starts at or after this simulated time (default: no limit). */
  readonly untilMs?: number | undefined;
  /** No request starts once this says so (checked before each pick). */
  readonly stopWhen?: ((index: number, nowMs: number) => boolean) | undefined;
  readonly latency: LatencyModel;
  /** Seeds the latency noise (the picker has its own random source). */
  readonly seed: number;
  /** Called before pick number `index` (0-based): change endpoints or latencies here. */
  readonly beforePick?: ((index: number, nowMs: number) => void) | undefined;
}

interface InFlight<E> {
  readonly endpoint: E;
  readonly start: number;
  readonly end: number;
}

/** Runs the load; returns every pick in order. */
export function run<E extends Endpoint>(sim: SimRun<E>): PickRecord[] {
  if (sim.requests === undefined && sim.untilMs === undefined) throw new Error('set requests or untilMs');
  const noise: Random = seededRandom(sim.seed);
  const picks: PickRecord[] = [];
  const inflight: InFlight<E>[] = [];
  const start = (): boolean => {
    const now = sim.clock.now();
    if (picks.length >= (sim.requests ?? Number.POSITIVE_INFINITY) || now >= (sim.untilMs ?? Number.POSITIVE_INFINITY)) return false;
    if (sim.stopWhen?.(picks.length, now) === true) return false;
    sim.beforePick?.(picks.length, now);
    const endpoint = sim.picker.pick();
    if (endpoint === undefined) throw new Error('no endpoint picked');
    picks.push({ atMs: now, id: endpoint.id });
    sim.picker.onStart(endpoint);
    const latency = Math.max(0.001, sim.latency(endpoint.id, now, noise()));
    // Kept sorted by end time (ties: the earlier start first); k is small.
    const entry = { endpoint, start: now, end: now + latency };
    let i = inflight.length;
    while (i > 0 && inflight[i - 1]!.end > entry.end) i--;
    inflight.splice(i, 0, entry);
    return true;
  };
  for (let k = 0; k < sim.concurrency; k++) start();
  while (inflight.length > 0) {
    const done = inflight.shift()!;
    sim.clock.set(done.end);
    sim.picker.onEnd(done.endpoint, { latencyMs: done.end - done.start, ok: true });
    start();
  }
  return picks;
}

/** Picks per id among `picks` (ids in `ids` start at 0). */
export function countIds(picks: readonly PickRecord[], ids: readonly string[] = []): Record<string, number> {
  const out: Record<string, number> = {};
  for (const id of ids) out[id] = 0;
  for (const p of picks) out[p.id] = (out[p.id] ?? 0) + 1;
  return out;
}

/** The picks made in [fromMs, toMs). */
export function between(picks: readonly PickRecord[], fromMs: number, toMs: number): PickRecord[] {
  return picks.filter((p) => p.atMs >= fromMs && p.atMs < toMs);
}

/** A fake clock at 0, re-exported so tests build runs from one import. */
export { fakeClock };
