/**
 * What the replica calculator reads, and the interface of whatever fetches
 * it: types only. The leader's loop (src/wiring) asks a MetricSource for a
 * snapshot each `policy.intervalMs`, hands it to `decide` (calculator.ts)
 * with the group's instances and stored history, and applies the Decision.
 *
 * Sources live at the edges (the proxies' /metrics scraped directly, or
 * Prometheus through PromQL); the calculator never does I/O.
 */
import type { AutoscalePolicy } from '../model.js';

/** The group being scaled and the service its metrics describe. */
export interface ScaleTarget {
  job: string;
  group: string;
  /** AutoscalePolicy.service: undefined when the group registers none (promql metrics only). */
  service: string | undefined;
}

/** One running instance of the group, as the calculator needs it. */
export interface InstanceView {
  /** The weft instance id (`weft_instance` Meta): the key of per-instance readings. */
  id: string;
  /** Running with its checks passing (the scheduler's `healthy`). */
  ready: boolean;
  /** When it started, ms since the epoch: a ready instance younger than the warm-up counts as unready. */
  startedAtMs: number;
}

/**
 * The reading of one metric, aligned by index with `policy.metrics`:
 * - `instances` for rps, inflight and promql: instance id -> value (requests/s,
 *   concurrent requests, the expression's value). An instance without a value
 *   is *missing* (the calculator counts it against the direction of change).
 * - `service` for latency (ms, the policy's quantile) and errors (5xx ratio,
 *   0..1); `null` when there was nothing to measure (no request in the window).
 * - `unavailable` when the source could not read it (Prometheus down, query
 *   failed, scrape failed): `policy.onError` applies unless another metric
 *   asks for more instances.
 */
export type MetricReading =
  | { kind: 'instances'; values: Readonly<Record<string, number>> }
  | { kind: 'service'; value: number | null }
  | { kind: 'unavailable'; reason: string };

/** The service's traffic totals over the source's window: idleToZero waits for both to be 0. */
export interface Traffic {
  /** Requests/s answered by the service's inbound proxies, all instances together. */
  rps: number;
  /** Requests in flight now, all instances together. */
  inflight: number;
}

/** Everything a source read for one decision. */
export interface MetricSnapshot {
  /** One per `policy.metrics` entry, same order. */
  readings: readonly MetricReading[];
  /** undefined when unknown: the calculator then counts it as traffic (never scales to zero on missing data). */
  traffic: Traffic | undefined;
}

/**
 * Fetches a snapshot for one group. Implementations must not throw for a
 * metric they cannot read: they return an `unavailable` reading with the
 * reason, so one broken query does not hide the others.
 */
export interface MetricSource {
  fetch(target: ScaleTarget, policy: AutoscalePolicy, instances: readonly InstanceView[], nowMs: number): Promise<MetricSnapshot>;
}
