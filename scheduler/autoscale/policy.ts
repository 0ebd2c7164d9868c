/**
 * A group's `autoscale` block -> the AutoscalePolicy the calculator reads:
 * defaults applied (SPEC_DEFAULTS.autoscale), durations in milliseconds,
 * steps parsed, the measured service resolved. Also the pieces the validator
 * shares with it (step syntax, the group's services), so what is checked is
 * what runs.
 */
import { parseDuration } from '../../base/duration.js';
import { LABEL } from '../../base/contracts/labels.js';
import type { AutoscaleMetric, AutoscalePolicy, ScaleBehavior, ScaleStep } from '../model.js';
import { registersService, taskLabels } from '../spec/labels.js';
import { type AutoscaleMetricSpec, AUTOSCALE_METRICS, type AutoscaleMetricKind, type GroupSpec, type ScaleBehaviorSpec, SPEC_DEFAULTS } from '../spec/schema.js';

/** Scale direction of a behavior block. */
export type Direction = 'up' | 'down';

/** The largest maxStep in instances, and in percent for scale-up (scale-down stops at 100%). */
export const MAX_STEP_INSTANCES = 100_000;
export const MAX_STEP_PERCENT_UP = 10_000;

const STEP = /^([+-]?)([0-9]{1,6})(%?)$/;

/**
 * Parses a maxStep: `+3` or `3` (instances), `+50%` (percent of the count at
 * the period's start) for scale-up; `-3`, `-50%` for scale-down. The sign is
 * optional and must match the direction. Returns the step or why not.
 */
export function parseScaleStep(text: string, direction: Direction): { ok: true; step: ScaleStep } | { ok: false; message: string } {
  const sign = direction === 'up' ? '+' : '-';
  const example = `${sign}3 (instances) or ${sign}50% (of the count at the period's start)`;
  const m = STEP.exec(text.trim());
  if (m === null) return { ok: false, message: `not a step: write ${example} (got ${JSON.stringify(text)})` };
  if (m[1] !== '' && m[1] !== sign) return { ok: false, message: `scale${direction === 'up' ? 'Up adds' : 'Down removes'} instances: write ${sign}${m[2]}${m[3]} (got ${JSON.stringify(text)})` };
  const value = Number(m[2]);
  const unit = m[3] === '%' ? 'percent' : 'instances';
  if (value < 1) return { ok: false, message: `must move at least 1 (got ${JSON.stringify(text)}); to stop scaling ${direction}, set ${direction === 'up' ? 'max' : 'min'}` };
  const limit = unit === 'instances' ? MAX_STEP_INSTANCES : direction === 'up' ? MAX_STEP_PERCENT_UP : 100;
  if (value > limit) return { ok: false, message: `must be at most ${sign}${limit}${unit === 'percent' ? '%' : ''} (got ${JSON.stringify(text)})` };
  return { ok: true, step: { unit, value } };
}

/** A step as the spec writes it: { instances, 3 } up -> `+3`; { percent, 50 } down -> `-50%`. */
export function formatScaleStep(step: ScaleStep, direction: Direction): string {
  return `${direction === 'up' ? '+' : '-'}${step.value}${step.unit === 'percent' ? '%' : ''}`;
}

/** The services a group's tasks register, in task order (a task's `weft.service` label, else its name). */
export function groupServices(group: GroupSpec): string[] {
  return group.tasks.filter(registersService).map((task) => taskLabels(task)[LABEL.service] ?? task.name);
}

/** The single metric an entry of `autoscale.metrics` names, or every one it names (the validator reports 0 or 2+). */
export function metricKinds(entry: AutoscaleMetricSpec): AutoscaleMetricKind[] {
  return AUTOSCALE_METRICS.filter((k) => entry[k] !== undefined);
}

/** Compiles a validated group's autoscale block; undefined when it has none. */
export function compileAutoscale(group: GroupSpec): AutoscalePolicy | undefined {
  const spec = group.autoscale;
  if (spec === undefined) return undefined;
  const d = SPEC_DEFAULTS.autoscale;
  return {
    min: spec.min,
    max: spec.max,
    // `?? []`: compileJob also runs on stored specs, which were validated by an earlier weft.
    metrics: (spec.metrics ?? []).flatMap(compileMetric),
    service: spec.service ?? groupServices(group)[0],
    tolerance: spec.tolerance ?? d.tolerance,
    scaleUp: compileBehavior(spec.scaleUp, d.scaleUp, 'up'),
    scaleDown: compileBehavior(spec.scaleDown, d.scaleDown, 'down'),
    intervalMs: ms(spec.interval ?? d.interval),
    onError: spec.onError ?? d.onError,
    dryRun: spec.dryRun ?? d.dryRun,
    idleToZeroMs: spec.idleToZero === undefined ? undefined : ms(spec.idleToZero),
  };
}

function compileMetric(entry: AutoscaleMetricSpec): AutoscaleMetric[] {
  if (entry.rps !== undefined) return [{ kind: 'rps', target: entry.rps }];
  if (entry.inflight !== undefined) return [{ kind: 'inflight', target: entry.inflight }];
  if (entry.promql !== undefined && entry.target !== undefined) return [{ kind: 'promql', query: entry.promql, target: entry.target }];
  if (entry.latency !== undefined) return [{ kind: 'latency', quantile: entry.latency.quantile ?? SPEC_DEFAULTS.autoscale.latencyQuantile, maxMs: ms(entry.latency.max) }];
  if (entry.errors !== undefined) return [{ kind: 'errors', maxRatio: entry.errors.max }];
  return [];
}

function compileBehavior(spec: ScaleBehaviorSpec | undefined, defaults: { stabilizationWindow: string; cooldown: string; period: string }, direction: Direction): ScaleBehavior {
  const step = spec?.maxStep === undefined ? undefined : parseScaleStep(spec.maxStep, direction);
  return {
    stabilizationWindowMs: ms(spec?.stabilizationWindow ?? defaults.stabilizationWindow),
    cooldownMs: ms(spec?.cooldown ?? defaults.cooldown),
    maxStep: step?.ok === true ? step.step : undefined,
    periodMs: ms(spec?.period ?? defaults.period),
  };
}

/** Durations were checked by the validator; 0 is a safe floor should one slip through. */
function ms(text: string): number {
  return Math.max(0, parseDuration(text) ?? 0);
}
