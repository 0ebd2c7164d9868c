/**
 * weft_autoscaler_* metrics on the process registry (base/metrics.ts), served
 * at the scheduler API's /metrics beside weft_scheduler_*. Set by the leader's
 * autoscaler (scheduler-autoscaler.ts) at every decision; a standby decides
 * nothing and reports no per-group series (the leader clears them when it
 * steps down), so a dashboard summing over schedulers counts each group once.
 *
 * Units are Prometheus' base units: rps in requests/s, inflight in requests,
 * latency in seconds (the policy writes milliseconds), errors as a 0..1 ratio,
 * a PromQL metric in whatever its expression returns.
 */
import { Counter, Gauge } from 'prom-client';
import { registry } from '../../base/metrics.js';

const desired = new Gauge({
  name: 'weft_autoscaler_desired_replicas',
  help: "The count the autoscaler's last decision set (or, in a dry run, would set).",
  labelNames: ['job', 'group'] as const,
  registers: [registry],
});

const current = new Gauge({
  name: 'weft_autoscaler_current_replicas',
  help: "The group's count (the job document's) when the autoscaler last decided.",
  labelNames: ['job', 'group'] as const,
  registers: [registry],
});

const maxReplicas = new Gauge({
  name: 'weft_autoscaler_max_replicas',
  help: "The group's autoscale.max.",
  labelNames: ['job', 'group'] as const,
  registers: [registry],
});

const metricValue = new Gauge({
  name: 'weft_autoscaler_metric_value',
  help: 'What the autoscaler last read per metric: per-instance metrics averaged over ready instances, ceilings for the whole service (latency in seconds). No sample while unavailable or unmeasured.',
  labelNames: ['job', 'group', 'metric'] as const,
  registers: [registry],
});

const metricTarget = new Gauge({
  name: 'weft_autoscaler_metric_target',
  help: "Each metric's per-instance target, or its ceiling's max (latency in seconds).",
  labelNames: ['job', 'group', 'metric'] as const,
  registers: [registry],
});

const decisions = new Counter({
  name: 'weft_autoscaler_decisions_total',
  help: 'Autoscaler decisions, by direction (up, down, none) and reason (metrics, held, capped, activation, idle, min, zero, on-error, failed, no-data, dry-run).',
  labelNames: ['job', 'group', 'direction', 'reason'] as const,
  registers: [registry],
});

/** One decision as the metrics show it. */
export interface DecisionSample {
  current: number;
  desired: number;
  max: number;
  direction: 'up' | 'down' | 'none';
  /** A short, bounded category (decisionCategory in scheduler-autoscaler.ts). */
  reason: string;
  /** Per policy metric: its name as reasons print it, value (undefined: no sample) and target, in base units. */
  metrics: ReadonlyArray<{ name: string; value: number | undefined; target: number }>;
}

/** The metric names each group has series for, so a group that leaves takes all of its series along. */
const named = new Map<string, { job: string; group: string; metrics: Set<string> }>();

/** Records one decision of a group. */
export function recordDecision(job: string, group: string, s: DecisionSample): void {
  const id = `${job}\u0000${group}`;
  const labels = { job, group };
  desired.set(labels, s.desired);
  current.set(labels, s.current);
  maxReplicas.set(labels, s.max);
  decisions.inc({ job, group, direction: s.direction, reason: s.reason });
  const entry = named.get(id) ?? { job, group, metrics: new Set<string>() };
  named.set(id, entry);
  const now = new Set(s.metrics.map((m) => m.name));
  for (const gone of entry.metrics) {
    if (now.has(gone)) continue;
    metricValue.remove({ job, group, metric: gone });
    metricTarget.remove({ job, group, metric: gone });
  }
  entry.metrics = now;
  for (const m of s.metrics) {
    metricTarget.set({ job, group, metric: m.name }, m.target);
    if (m.value === undefined || !Number.isFinite(m.value)) metricValue.remove({ job, group, metric: m.name });
    else metricValue.set({ job, group, metric: m.name }, m.value);
  }
}

/** Drops a group's gauges (its job or its autoscale block is gone). The decision counter keeps its totals. */
export function forgetGroup(job: string, group: string): void {
  const id = `${job}\u0000${group}`;
  const labels = { job, group };
  desired.remove(labels);
  current.remove(labels);
  maxReplicas.remove(labels);
  for (const metric of named.get(id)?.metrics ?? []) {
    metricValue.remove({ job, group, metric });
    metricTarget.remove({ job, group, metric });
  }
  named.delete(id);
}

/** Clears every per-group gauge (on losing leadership: a standby does not speak for the cluster). */
export function clearAutoscaleGauges(): void {
  desired.reset();
  current.reset();
  maxReplicas.reset();
  metricValue.reset();
  metricTarget.reset();
  named.clear();
}
