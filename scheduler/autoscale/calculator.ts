/**
 * The replica calculator: one pure function from (policy, instances, metric
 * readings, history, now) to a Decision, as Kubernetes' HPA decides
 * (replica_calculator.go for the metrics, the horizontal controller's
 * behavior for the rest). No I/O, no clock: time comes in as `nowMs`.
 *
 *   at zero ───────── activation requested -> max(1, min); else stay (or min)
 *   idle ──────────── min 0, no traffic for idleToZero -> 0
 *   metrics ───────── each asks for a count (metrics.ts); the largest wins;
 *                     an unavailable one -> onError, unless another asks for more
 *   bounds ────────── clamp to max(min, 1)..max (only idleToZero reaches 0)
 *   stabilization ─── down: never below the highest recommendation in
 *                     scaleDown.stabilizationWindow; up: never above the
 *                     lowest in scaleUp.stabilizationWindow
 *   cooldown ──────── no move in a direction within its cooldown of the last one
 *                     (a start from zero is no scale-up for cooldown and maxStep:
 *                     load that follows an activation must not wait)
 *   maxStep ───────── at most +N / +P% (-N / -P%) per period, counted from
 *                     the count at the period's start
 *   bounds again ──── min..max always win (a count outside them moves at once)
 */
import type { AutoscalePolicy, ScaleBehavior } from '../model.js';
import { type AutoscaleHistory, clampToNow, pruneHistory, type ScaleEvent, withRecommendation } from './history.js';
import { DEFAULT_WARMUP_MS, fmt, type MetricOutcome, recommend } from './metrics.js';
import { formatScaleStep } from './policy.js';
import type { InstanceView, MetricSnapshot } from './source.js';

/** Everything one decision reads. */
export interface DecideInput {
  policy: AutoscalePolicy;
  /** The group's count now (what the reconciler holds it at). */
  current: number;
  /** The group's running instances (not those stopping). */
  instances: readonly InstanceView[];
  /** What the MetricSource read for this decision. */
  metrics: MetricSnapshot;
  /** A caller's proxy is holding a request for the service (it is at zero): the activation path. */
  activationRequested: boolean;
  /** As stored after the previous decision (parseHistory), or emptyHistory(). */
  history: AutoscaleHistory;
  /** Wall-clock ms since the epoch: the history crosses leaders. */
  nowMs: number;
  /** Ready instances younger than this count as unready (default DEFAULT_WARMUP_MS). */
  warmupMs?: number | undefined;
}

/** Which way a decision moves the count. */
export type ScaleDirection = 'up' | 'down' | 'none';

/** What the autoscaler decided, and why. */
export interface Decision {
  current: number;
  /** The count to set; equals `current` when nothing moves. */
  desired: number;
  direction: ScaleDirection;
  /** Set the count to `desired` now: a move, not a dry run, not a failure. */
  apply: boolean;
  /** onError fail: a needed metric was unavailable; report it (the count stays). */
  failed: boolean;
  /** One line: the metric values, targets, tolerance, and whatever held or capped the move. */
  reason: string;
  /** Each metric's conclusion, in policy order (empty on the zero and idle paths). */
  metrics: MetricOutcome[];
  /**
   * The history to store. It records this decision's recommendation and, when
   * the count moves (and this is no dry run), the scale event: store it only
   * once the count is written, so a lost write leaves no phantom event.
   */
  history: AutoscaleHistory;
}

/** Decides the group's count (see the file comment for the pipeline). */
export function decide(input: DecideInput): Decision {
  const { policy, current, nowMs } = input;
  const history0 = clampToNow(input.history, nowMs);
  const traffic = input.metrics.traffic;
  // Unknown traffic counts as traffic: never scale to zero on missing data.
  const sawTraffic = input.activationRequested || traffic === undefined || traffic.rps > 0 || traffic.inflight > 0;
  const lastTrafficAtMs = sawTraffic ? nowMs : (history0.lastTrafficAtMs ?? nowMs);
  let history: AutoscaleHistory = { ...history0, lastTrafficAtMs };
  const finish = (desired: number, reason: string, outcomes: MetricOutcome[], opts: { record?: number | undefined; failed?: boolean } = {}): Decision => {
    const direction: ScaleDirection = desired > current ? 'up' : desired < current ? 'down' : 'none';
    const failed = opts.failed ?? false;
    const apply = direction !== 'none' && !policy.dryRun && !failed;
    let next = history;
    if (opts.record !== undefined) next = { ...next, recommendations: withRecommendation(next.recommendations, { atMs: nowMs, desired: opts.record }) };
    if (apply) next = { ...next, events: [...next.events, { atMs: nowMs, from: current, to: desired }] };
    next = pruneHistory(next, nowMs, retention(policy));
    return {
      current,
      desired,
      direction,
      apply,
      failed,
      reason: `${policy.dryRun ? 'dry run: ' : ''}${reason}`,
      metrics: outcomes,
      history: next,
    };
  };

  const floor = Math.max(policy.min, 1);
  // min..max win over everything but the zero and idle paths (a count outside them: the bounds just changed).
  const bound = (n: number): number => Math.min(Math.max(n, floor), policy.max);
  const boundNote = (n: number): string => (bound(n) === n ? '' : `, ${bound(n) > n ? 'raised to autoscale.min' : 'lowered to autoscale.max'} ${bound(n)}`);
  if (current === 0) {
    if (input.activationRequested) {
      const to = Math.min(floor, policy.max);
      return finish(to, `activation: a request is waiting for the service at zero: 0 -> ${to}`, [], { record: to });
    }
    if (policy.min > 0) return finish(Math.min(policy.min, policy.max), `below autoscale.min ${policy.min}: 0 -> ${policy.min}`, [], { record: policy.min });
    return finish(0, 'at zero, no request waiting', []);
  }

  if (policy.min === 0 && policy.idleToZeroMs !== undefined && !sawTraffic && nowMs - lastTrafficAtMs >= policy.idleToZeroMs) {
    return finish(0, `no request for ${duration(nowMs - lastTrafficAtMs)} (idleToZero ${duration(policy.idleToZeroMs)}): ${current} -> 0`, [], { record: 0 });
  }

  // A fresh history (first decision, new policy, unreadable document) holds
  // scale-down for one window, as the HPA does after a restart.
  if (history.recommendations.length === 0 && policy.scaleDown.stabilizationWindowMs > 0) {
    history = { ...history, recommendations: [{ atMs: nowMs, desired: current }] };
  }

  const ctx = { current, instances: input.instances, tolerance: policy.tolerance, nowMs, warmupMs: input.warmupMs ?? DEFAULT_WARMUP_MS };
  const outcomes = policy.metrics.map((m, i) => recommend(m, i, input.metrics.readings[i], ctx));
  const wanting = outcomes.filter((o) => o.wants !== undefined);
  const broken = outcomes.filter((o) => o.unavailable !== undefined);
  const best = wanting.reduce<MetricOutcome | undefined>((a, o) => (a === undefined || o.wants! > a.wants! ? o : a), undefined);
  const onErrorPath = broken.length > 0 && (best === undefined || best.wants! <= current);
  // The other metrics' summaries, after the one the reason leads with.
  const others = outcomes.filter((o) => (onErrorPath ? o.unavailable === undefined : o !== best)).map((o) => o.summary);
  const also = others.length === 0 ? '' : ` [${others.join('; ')}]`;

  let raw: number;
  let why: string;
  if (onErrorPath) {
    // The HPA's rule: with a metric missing, only a scale-up the others agree on goes ahead.
    const what = broken.map((o) => o.summary).join('; ');
    if (policy.onError === 'hold') return finish(bound(current), `${what}: holding ${current} (onError hold)${boundNote(current)}${also}`, outcomes);
    if (policy.onError === 'fail') {
      return finish(current, `${what}: autoscaling failed (onError fail), holding ${current}${also}`, outcomes, { failed: true });
    }
    raw = floor;
    why = `${what}: going to autoscale.min (onError min)`;
  } else if (best === undefined) {
    return finish(bound(current), `nothing to act on${boundNote(current)}${also}`, outcomes);
  } else {
    raw = best.wants!;
    why = best.summary;
  }

  const caps: string[] = [];
  let rec = raw;
  if (rec > policy.max) {
    rec = policy.max;
    caps.push(`capped by autoscale.max ${policy.max}`);
  } else if (rec < floor) {
    rec = floor;
    caps.push(policy.min > 0 ? `held at autoscale.min ${policy.min}` : 'held at 1 (only idleToZero goes to 0)');
  }
  const wantsNote = rec !== current || raw !== current ? ` wants ${raw}` : '';

  let desired = stabilize(history, policy, current, rec, nowMs, caps);
  desired = cooldown(history.events, policy, current, desired, nowMs, caps);
  desired = maxStep(history.events, policy, current, desired, nowMs, caps);
  if (bound(desired) !== desired) caps.push(boundNote(desired).slice(2));
  desired = bound(desired);
  const capNote = caps.length === 0 ? '' : `, ${caps.join(', ')}`;
  return finish(desired, `${why}${wantsNote}: ${current} -> ${desired}${capNote}${also}`, outcomes, { record: rec });
}

/** The HPA's stabilization: the recommendation brought within the window's lowest (up) and highest (down). */
function stabilize(history: AutoscaleHistory, policy: AutoscalePolicy, current: number, rec: number, nowMs: number, caps: string[]): number {
  const upCutoff = nowMs - policy.scaleUp.stabilizationWindowMs;
  const downCutoff = nowMs - policy.scaleDown.stabilizationWindowMs;
  let upLimit = rec;
  let downLimit = rec;
  for (const r of history.recommendations) {
    if (r.atMs > upCutoff) upLimit = Math.min(upLimit, r.desired);
    if (r.atMs > downCutoff) downLimit = Math.max(downLimit, r.desired);
  }
  let out = current;
  if (out < upLimit) out = upLimit;
  if (out > downLimit) out = downLimit;
  if (rec > current && out < rec) caps.push(`held by scaleUp.stabilizationWindow ${duration(policy.scaleUp.stabilizationWindowMs)} (lowest recommendation in it: ${upLimit})`);
  if (rec < current && out > rec) caps.push(`held by scaleDown.stabilizationWindow ${duration(policy.scaleDown.stabilizationWindowMs)} (highest recommendation in it: ${downLimit})`);
  return out;
}

/** No move in a direction within that direction's cooldown of its last scale event. */
function cooldown(events: readonly ScaleEvent[], policy: AutoscalePolicy, current: number, desired: number, nowMs: number, caps: string[]): number {
  if (desired === current) return desired;
  const up = desired > current;
  const behavior = up ? policy.scaleUp : policy.scaleDown;
  const last = [...events].reverse().find((e) => e.from > 0 && (up ? e.to > e.from : e.to < e.from));
  if (last === undefined || nowMs - last.atMs >= behavior.cooldownMs) return desired;
  caps.push(`held by ${up ? 'scaleUp' : 'scaleDown'}.cooldown ${duration(behavior.cooldownMs)} (last scale-${up ? 'up' : 'down'} ${duration(nowMs - last.atMs)} ago)`);
  return current;
}

/**
 * The HPA's rate limit: the count at the period's start is the current one
 * less what this direction moved within the period; from there a step of N
 * instances or P percent (rounded up for scale-up, down for scale-down, and
 * always at least one instance, so a percent step can leave zero or one).
 */
function maxStep(events: readonly ScaleEvent[], policy: AutoscalePolicy, current: number, desired: number, nowMs: number, caps: string[]): number {
  if (desired === current) return desired;
  const up = desired > current;
  const behavior: ScaleBehavior = up ? policy.scaleUp : policy.scaleDown;
  const step = behavior.maxStep;
  if (step === undefined) return desired;
  const inPeriod = events.filter((e) => e.from > 0 && e.atMs > nowMs - behavior.periodMs && (up ? e.to > e.from : e.to < e.from));
  const moved = inPeriod.reduce((n, e) => n + Math.abs(e.to - e.from), 0);
  const start = up ? current - moved : current + moved;
  let limit: number;
  if (up) {
    limit = step.unit === 'instances' ? start + step.value : Math.max(start + 1, Math.ceil(start * (1 + step.value / 100) - 1e-9));
    if (desired <= limit) return desired;
  } else {
    limit = step.unit === 'instances' ? start - step.value : Math.min(start - 1, Math.floor(start * (1 - step.value / 100) + 1e-9));
    if (desired >= limit) return desired;
  }
  const direction = up ? 'up' : 'down';
  const periodNote = `per ${duration(behavior.periodMs)}${moved > 0 ? `, ${moved} already moved in this period` : ''}`;
  caps.push(`capped by scale${up ? 'Up' : 'Down'}.maxStep ${formatScaleStep(step, direction)} ${periodNote}`);
  // A limit already passed (the policy tightened mid-period) holds the count.
  return up ? Math.max(current, limit) : Math.min(current, limit);
}

/** How long history must remember for this policy's windows, cooldowns and periods. */
function retention(policy: AutoscalePolicy): { recommendationsMs: number; eventsMs: number } {
  return {
    recommendationsMs: Math.max(policy.scaleUp.stabilizationWindowMs, policy.scaleDown.stabilizationWindowMs),
    eventsMs: Math.max(policy.scaleUp.cooldownMs, policy.scaleDown.cooldownMs, policy.scaleUp.periodMs, policy.scaleDown.periodMs),
  };
}

/** Milliseconds as reasons print them: `60s`, `1m30s`, `250ms`. */
function duration(ms: number): string {
  if (ms < 1000) return `${fmt(ms)}ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
}
