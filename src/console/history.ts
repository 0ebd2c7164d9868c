/**
 * The page's rolling memory: the last /v1/stats answers (at most MAX_POINTS,
 * 10 minutes at one every 2 s) and the replica counts the autoscaler
 * reported, turned into the column arrays uPlot draws.
 */
import type { GroupAutoscaleView, StatsResponse } from '../../base/contracts/scheduler-api.js';

/** Points kept per series. */
export const MAX_POINTS = 300;

/** Columns for uPlot: x (Unix seconds), then one array per series. */
export type Columns = [number[], ...Array<Array<number | null>>];

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > MAX_POINTS) list.splice(0, list.length - MAX_POINTS);
}

export class History {
  readonly #stats: Array<{ t: number; s: StatsResponse }> = [];
  readonly #replicas = new Map<string, Array<{ t: number; current: number; desired: number }>>();

  addStats(s: StatsResponse): void {
    const t = Date.parse(s.at) / 1000;
    const last = this.#stats[this.#stats.length - 1];
    if (last !== undefined && last.t >= t) return; // the same round again (the server's cache)
    push(this.#stats, { t, s });
  }

  addAutoscale(job: string, g: GroupAutoscaleView, atMs: number): void {
    const key = `${job}/${g.group}`;
    let list = this.#replicas.get(key);
    if (list === undefined) {
      if (this.#replicas.size >= 100) return;
      list = [];
      this.#replicas.set(key, list);
    }
    push(list, { t: atMs / 1000, current: g.current, desired: g.desired });
  }

  /** The newest answer. */
  latest(): StatsResponse | undefined {
    return this.#stats[this.#stats.length - 1]?.s;
  }

  /** Requests/s of each version of `service` over time. */
  versionRates(service: string): { names: string[]; data: Columns } {
    const names = [...new Set(this.#stats.flatMap((p) => p.s.services.find((x) => x.service === service)?.versions.map((v) => v.version) ?? []))].sort();
    const xs = this.#stats.map((p) => p.t);
    const ys = names.map((v) => this.#stats.map((p) => p.s.services.find((x) => x.service === service)?.versions.find((x) => x.version === v)?.rps ?? null));
    return { names, data: [xs, ...ys] };
  }

  /** p50 and p99 latency of `service` over time (ms). */
  latency(service: string): Columns {
    const of = (p: { s: StatsResponse }) => p.s.services.find((x) => x.service === service);
    return [this.#stats.map((p) => p.t), this.#stats.map((p) => of(p)?.p50Ms ?? null), this.#stats.map((p) => of(p)?.p99Ms ?? null)];
  }

  /** The share of 5xx answers of `service` over time (%). */
  errors(service: string): Columns {
    return [
      this.#stats.map((p) => p.t),
      this.#stats.map((p) => {
        const r = p.s.services.find((x) => x.service === service)?.successRate;
        return r === null || r === undefined ? null : (1 - r) * 100;
      }),
    ];
  }

  /** A group's replicas (current, desired) over time. */
  replicas(job: string, group: string): Columns {
    const list = this.#replicas.get(`${job}/${group}`) ?? [];
    return [list.map((p) => p.t), list.map((p) => p.current), list.map((p) => p.desired)];
  }
}
