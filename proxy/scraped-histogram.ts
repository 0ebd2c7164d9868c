/**
 * A Prometheus histogram whose observations are plain numbers owned by the
 * caller (`LatencyCounts`), read only when the registry is scraped.
 *
 * Why not prom-client's Histogram: its `observe` validates and hashes the
 * label set on every call (even through a `labels()` child), which was ~4%
 * of a saturated proxy's CPU (proxy/README.md, "Runtime and hot path").
 * prom-client has no way to hand it finished bucket counts, so this class
 * speaks the registry's metric interface itself: `getForPromString()` (what
 * `Registry.metrics()` prefers) and `get()` (JSON), in the same shape and
 * line order prom-client's Histogram produces, so the exposition is
 * byte-for-byte what it was.
 */
import type { Metric, Registry } from 'prom-client';

/** Bucket counts, sum and count of one label set. `observe` is the hot path: no allocation, no hashing. */
export class LatencyCounts {
  /** Non-cumulative count per upper bound (same order as the bounds); +Inf is `count` minus their sum. */
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.buckets = new Float64Array(bounds.length);
  }

  /** Records one value (seconds). */
  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.#bounds;
    // Linear: 15 bounds, and nearly every proxied request lands in the first few.
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.buckets[i]!++;
        return;
      }
    }
  }
}

type Labels = Record<string, string>;

interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
}

/** The histogram as the registry sees it; series are added with `series()` and kept (shown once observed). */
export class ScrapedHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly bounds: readonly number[];
  readonly #series: Array<{ labels: Labels; counts: LatencyCounts }> = [];

  constructor(opts: { name: string; help: string; buckets: readonly number[]; registers: readonly Registry[] }) {
    this.name = opts.name;
    this.help = opts.help;
    this.bounds = opts.buckets;
    // The registry only calls name, get/getForPromString and reset on a metric; its type names prom-client's classes.
    for (const r of opts.registers) r.registerMetric(this as unknown as Metric);
  }

  /** A new series for `labels` (the caller keeps it and deduplicates). */
  series(labels: Labels): LatencyCounts {
    const counts = new LatencyCounts(this.bounds);
    this.#series.push({ labels, counts });
    return counts;
  }

  /** Zeroes every series (prom-client's `reset` semantics; `Registry.resetMetrics` calls it). */
  reset(): void {
    for (const s of this.#series) {
      s.counts.buckets.fill(0);
      s.counts.sum = 0;
      s.counts.count = 0;
    }
  }

  /** What `Registry.metrics()` formats: `le` first, then the series' labels, as prom-client's Histogram does. */
  async getForPromString(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const values: Value[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, counts } of this.#series) {
      // As prom-client: a label set appears with its first observation (and leaves at reset).
      if (counts.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += counts.buckets[i]!;
        values.push({ labels: { le: this.bounds[i]! }, sharedLabels: labels, value: acc, metricName: bucketName });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: labels, value: counts.count, metricName: bucketName });
      values.push({ labels: {}, sharedLabels: labels, value: counts.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: labels, value: counts.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** The JSON form (`Registry.getMetricsAsJSON`): labels and series labels merged, as prom-client does. */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ labels, sharedLabels, value, metricName }) => ({ labels: { ...labels, ...sharedLabels }, value, metricName }));
    return data;
  }
}
