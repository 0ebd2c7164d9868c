/**
 * What one metric asks for, from its reading: the replica calculation of
 * Kubernetes' HPA (pkg/controller/podautoscaler/replica_calculator.go) for
 * per-instance targets, and weft's ceilings for service-level values.
 *
 * Per-instance targets (rps, inflight, promql):
 *   ratio = average over ready instances / target
 *   |ratio - 1| <= tolerance            -> the current count
 *   no unready or missing instance      -> ceil(ratio * ready)
 *   else, counted against the change: a missing instance at the target when
 *   scaling down and at 0 when scaling up, an unready one at 0 when scaling up
 *   and left out when scaling down, a healthy one in its warm-up (it serves
 *   its share, but a cold value may be inflated) at min(value, target) when
 *   scaling up and max(value, target) when scaling down; the ratio
 *   recomputed over them; within
 *   tolerance, or on the other side of 1 than before -> the current count;
 *   else ceil(new ratio * counted), unless that moves against the ratio.
 * Ceilings (latency, errors): value / max above 1 + tolerance ->
 *   max(current, ceil(ratio * ready)); else no opinion (they never scale down).
 */
import type { AutoscaleMetric } from '../model.js';
import type { InstanceView, MetricReading } from './source.js';

/**
 * A ready instance younger than this counts as unready: a fresh process
 * (cold caches, JIT) is no sample of the steady state. Kubernetes' HPA
 * waits 30 s the same way (--horizontal-pod-autoscaler-initial-readiness-delay).
 */
export const DEFAULT_WARMUP_MS = 30_000;

/**
 * ceil() that forgives floating-point noise: 0.1 * 30 is 3.0000000000000004,
 * which is 3 instances, not 4.
 */
export function ceilCount(x: number): number {
  return Math.ceil(x - 1e-9);
}

/** What one metric concluded. */
export interface MetricOutcome {
  /** The metric as reasons name it: `rps`, `inflight`, `promql[2]`, `latency p99`, `errors`. */
  name: string;
  /** The count it asks for; undefined when it has no opinion (a ceiling under its max, nothing to measure) or is unavailable. */
  wants: number | undefined;
  /** Why the reading could not be used; `onError` applies unless another metric asks for more. */
  unavailable?: string | undefined;
  /** For the reason: `rps 412/instance over target 100 (+10% tolerance)`. */
  summary: string;
}

/** The group as the metrics see it. */
export interface MetricContext {
  current: number;
  instances: readonly InstanceView[];
  tolerance: number;
  nowMs: number;
  warmupMs: number;
}

/** A number as a reason prints it: at most two decimals, no trailing zeros. */
export function fmt(n: number): string {
  return String(Math.round(n * 100) / 100);
}

/** `10%` for a tolerance of 0.1. */
function pct(ratio: number): string {
  return `${fmt(ratio * 100)}%`;
}

/** A metric's name in reasons; promql entries carry their index in `metrics`. */
export function metricName(metric: AutoscaleMetric, index: number): string {
  switch (metric.kind) {
    case 'latency':
      return `latency p${Math.round(metric.quantile * 100)}`;
    case 'promql':
      return `promql[${index}]`;
    default:
      return metric.kind;
  }
}

/** What `metric` asks for given its reading. */
export function recommend(metric: AutoscaleMetric, index: number, reading: MetricReading | undefined, ctx: MetricContext): MetricOutcome {
  const name = metricName(metric, index);
  if (reading === undefined) return unavailable(name, 'no reading');
  if (reading.kind === 'unavailable') return unavailable(name, reading.reason);
  switch (metric.kind) {
    case 'rps':
    case 'inflight':
    case 'promql':
      if (reading.kind !== 'instances') return unavailable(name, 'the source gave one value for the service, not one per instance');
      return perInstance(name, metric.target, reading.values, ctx);
    case 'latency':
      if (reading.kind !== 'service') return unavailable(name, 'the source gave values per instance, not one for the service');
      return ceiling(name, reading.value, metric.maxMs, (v) => `${fmt(v)}ms`, ctx);
    case 'errors':
      if (reading.kind !== 'service') return unavailable(name, 'the source gave values per instance, not one for the service');
      return ceiling(name, reading.value, metric.maxRatio, pct, ctx);
  }
}

function unavailable(name: string, reason: string): MetricOutcome {
  return { name, wants: undefined, unavailable: reason, summary: `${name} unavailable (${reason})` };
}

/** The HPA's calculation for a per-instance target (see the file comment). */
function perInstance(name: string, target: number, values: Readonly<Record<string, number>>, ctx: MetricContext): MetricOutcome {
  const { current, tolerance } = ctx;
  let readySum = 0;
  let ready = 0;
  let unready = 0;
  let missing = 0;
  // Healthy instances in their warm-up serve their share, but a cold one's value may be inflated:
  // each counts at its value bounded by the target against the direction of change.
  let warming = 0;
  let warmingUp = 0;
  let warmingDown = 0;
  for (const inst of ctx.instances) {
    const value = Object.hasOwn(values, inst.id) ? values[inst.id] : undefined;
    const usable = value !== undefined && Number.isFinite(value) && value >= 0;
    if (!inst.ready) unready++;
    else if (!usable) missing++;
    else if (ctx.nowMs - inst.startedAtMs < ctx.warmupMs) {
      warming++;
      warmingUp += Math.min(value, target);
      warmingDown += Math.max(value, target);
    } else {
      readySum += value;
      ready++;
    }
  }
  if (ready === 0) {
    if (missing > 0) return unavailable(name, `no value for any of the ${missing} ready instance${missing === 1 ? '' : 's'}`);
    return { name, wants: undefined, summary: `${name}: no ready instance to measure` };
  }
  const average = readySum / ready;
  const ratio = average / target;
  const seen = `${name} ${fmt(average)}/instance`;
  const within = (r: number): boolean => Math.abs(1 - r) <= tolerance;
  const side = (r: number): string =>
    within(r) ? `within target ${fmt(target)} (±${pct(tolerance)} tolerance)` : r > 1 ? `over target ${fmt(target)} (+${pct(tolerance)} tolerance)` : `under target ${fmt(target)} (-${pct(tolerance)} tolerance)`;
  const scaleUpWithUnready = unready + warming > 0 && ratio > 1;
  // A count sized from the older instances alone would drop the warming ones' traffic: they count too.
  const scaleDownWithWarming = warming > 0 && ratio < 1 && !within(ratio);
  if (!scaleUpWithUnready && !scaleDownWithWarming && missing === 0) {
    const unreadyNote = unready + warming > 0 ? ` (${unready + warming} unready left out)` : '';
    if (within(ratio)) return { name, wants: current, summary: `${seen} ${side(ratio)}${unreadyNote}` };
    return { name, wants: ceilCount(ratio * ready), summary: `${seen} ${side(ratio)}${unreadyNote}` };
  }
  // Count the instances without a usable value against the direction of change.
  let sum = readySum;
  let counted = ready;
  const notes: string[] = [];
  if (missing > 0) {
    const as = ratio < 1 ? target : 0;
    sum += as * missing;
    counted += missing;
    notes.push(`${missing} missing counted at ${ratio < 1 ? 'the target' : '0'}`);
  }
  if (scaleUpWithUnready) {
    counted += unready + warming;
    sum += warmingUp;
    if (unready > 0) notes.push(`${unready} unready counted at 0`);
    if (warming > 0) notes.push(`${warming} in warm-up counted at their value or the target, the lower`);
  } else {
    if (warming > 0) {
      sum += ratio < 1 ? warmingDown : 0;
      counted += ratio < 1 ? warming : 0;
      notes.push(ratio < 1 ? `${warming} in warm-up counted at their value or the target, the higher` : `${warming} unready left out`);
    }
    if (unready > 0) notes.push(`${unready} unready left out`);
  }
  const newRatio = sum / counted / target;
  const rebalanced = `${seen} ${side(ratio)}; ${notes.join(', ')}: ${fmt(sum / counted)}/instance`;
  if (within(newRatio)) return { name, wants: current, summary: `${rebalanced}, within tolerance` };
  if ((ratio > 1 && newRatio < 1) || (ratio < 1 && newRatio > 1)) return { name, wants: current, summary: `${rebalanced}, which would reverse the direction: no change` };
  const wants = ceilCount(newRatio * counted);
  if ((newRatio < 1 && wants > current) || (newRatio > 1 && wants < current)) {
    return { name, wants: current, summary: `${rebalanced}; ${wants} instances would move against it: no change` };
  }
  return { name, wants, summary: rebalanced };
}

/**
 * A ceiling on a service-level value. Over max (plus tolerance) it asks for
 * ratio times the ready instances, and never fewer than now: a breached
 * ceiling also blocks a scale-down another metric asks for. Under it, no opinion.
 */
function ceiling(name: string, value: number | null, max: number, show: (v: number) => string, ctx: MetricContext): MetricOutcome {
  if (value === null || !Number.isFinite(value)) return { name, wants: undefined, summary: `${name}: no request to measure` };
  const ratio = value / max;
  if (ratio <= 1 + ctx.tolerance) return { name, wants: undefined, summary: `${name} ${show(value)} ${ratio <= 1 ? 'under' : 'within tolerance of'} max ${show(max)}` };
  const ready = ctx.instances.filter((i) => i.ready).length;
  return {
    name,
    wants: Math.max(ctx.current, ceilCount(ratio * ready)),
    summary: `${name} ${show(value)} over max ${show(max)} (+${pct(ctx.tolerance)} tolerance)`,
  };
}
