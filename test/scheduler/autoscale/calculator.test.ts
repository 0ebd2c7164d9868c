/**
 * The replica calculator as named scenarios, one rule each (as Kubernetes
 * names TestReplicaCalcScaleUpUnreadyLessScale). Every expectation is worked
 * out by hand in the scenario's comment, not by restating the formula.
 */
import t from 'tap';
import { type DecideInput, decide } from '../../../scheduler/autoscale/calculator.js';
import { type AutoscaleHistory, emptyHistory } from '../../../scheduler/autoscale/history.js';
import type { InstanceView, MetricReading } from '../../../scheduler/autoscale/source.js';
import type { AutoscalePolicy, ScaleBehavior } from '../../../scheduler/model.js';

const NOW = 1_700_000_000_000;
const S = 1000;
const MIN = 60 * S;

const behavior = (over: Partial<ScaleBehavior> = {}): ScaleBehavior => ({ stabilizationWindowMs: 0, cooldownMs: 0, maxStep: undefined, periodMs: 15 * S, ...over });

/** rps 100 per instance, min 1, max 20, tolerance 0.1; no windows, cooldowns or caps unless a scenario sets them. */
function policy(over: Partial<AutoscalePolicy> = {}): AutoscalePolicy {
  return {
    min: 1,
    max: 20,
    metrics: [{ kind: 'rps', target: 100 }],
    service: 'web',
    tolerance: 0.1,
    scaleUp: behavior(),
    scaleDown: behavior(),
    intervalMs: S,
    onError: 'hold',
    dryRun: false,
    idleToZeroMs: undefined,
    ...over,
  };
}

/** `n` instances i0..i(n-1), ready, started ten minutes ago (past any warm-up). */
function instances(n: number, over: Partial<InstanceView> = {}, from = 0): InstanceView[] {
  return Array.from({ length: n }, (_, k) => ({ id: `i${from + k}`, ready: true, startedAtMs: NOW - 10 * MIN, ...over }));
}

/** Per-instance values by instance id, in order: values[k] belongs to i<k>; undefined leaves it missing. */
function each(values: Array<number | undefined>): MetricReading {
  const out: Record<string, number> = {};
  values.forEach((v, k) => {
    if (v !== undefined) out[`i${k}`] = v;
  });
  return { kind: 'instances', values: out };
}

const service = (value: number | null): MetricReading => ({ kind: 'service', value });
const down = (reason: string): MetricReading => ({ kind: 'unavailable', reason });

/** A decision input: traffic flowing, no activation, empty history, now = NOW. */
function input(p: AutoscalePolicy, current: number, inst: InstanceView[], readings: MetricReading[], over: Partial<DecideInput> = {}): DecideInput {
  return { policy: p, current, instances: inst, metrics: { readings, traffic: { rps: 50, inflight: 1 } }, activationRequested: false, history: emptyHistory(), nowMs: NOW, ...over };
}

const history = (over: Partial<AutoscaleHistory>): AutoscaleHistory => ({ ...emptyHistory(), ...over });

t.test('scale up: 3 instances at 250 rps each, target 100 -> 8', async (t) => {
  // 250/100 = 2.5 times the target on 3 instances: 7.5 instances' worth, rounded up to 8.
  const d = decide(input(policy(), 3, instances(3), [each([250, 250, 250])]));
  t.equal(d.desired, 8);
  t.equal(d.direction, 'up');
  t.equal(d.apply, true);
  t.equal(d.reason, 'rps 250/instance over target 100 (+10% tolerance) wants 8: 3 -> 8');
  t.strictSame(d.history.events, [{ atMs: NOW, from: 3, to: 8 }]);
});

t.test('scale down: 4 instances at 30 rps, target 100 -> 2', async (t) => {
  // 4 x 30 = 120 requests/s need 1.2 instances at 100 each: 2.
  const d = decide(input(policy(), 4, instances(4), [each([30, 30, 30, 30])]));
  t.equal(d.desired, 2);
  t.equal(d.direction, 'down');
  t.match(d.reason, /^rps 30\/instance under target 100 \(-10% tolerance\) wants 2: 4 -> 2$/);
});

t.test('within tolerance: ratio 1.08 -> no change', async (t) => {
  // 108/100 = 1.08, within 1 ± 0.1: keep 3 (the plain formula would say ceil(3.24) = 4).
  const d = decide(input(policy(), 3, instances(3), [each([108, 108, 108])]));
  t.equal(d.desired, 3);
  t.equal(d.direction, 'none');
  t.equal(d.apply, false);
  t.equal(d.reason, 'rps 108/instance within target 100 (±10% tolerance): 3 -> 3');
});

t.test('just outside tolerance: ratio 1.11 -> up by one', async (t) => {
  // 3 x 111 = 333 requests/s: 3.33 instances, rounded up to 4.
  t.equal(decide(input(policy(), 3, instances(3), [each([111, 111, 111])])).desired, 4);
});

t.test('unready instance does not inflate scale-up', async (t) => {
  // 3 ready at 200 (ratio 2) and one not ready that reports 900 (it is stuck
  // starting). Counted at 0 instead: 600 over 4 instances = 150/instance,
  // 1.5 x 4 = 6. Averaging its 900 in would have asked for 15.
  const inst = [...instances(3), ...instances(1, { ready: false }, 3)];
  const d = decide(input(policy(), 4, inst, [each([200, 200, 200, 900])]));
  t.equal(d.desired, 6);
  t.match(d.reason, /1 unready counted at 0: 150\/instance/);
});

t.test('unready instance is left out of a scale-down', async (t) => {
  // 3 ready at 40 = 120 requests/s: 1.2 instances' worth -> 2; the unready 4th is not counted.
  const inst = [...instances(3), ...instances(1, { ready: false }, 3)];
  const d = decide(input(policy(), 4, inst, [each([40, 40, 40, undefined])]));
  t.equal(d.desired, 2);
  t.match(d.reason, /1 unready left out/);
});

t.test('new instance in its warm-up counts at most at the target on a scale-up', async (t) => {
  // inflight target 10. Two old instances at 20 (ratio 2) and one started 10 s ago
  // at 60 (cold). The new one counts at the target, not its inflated 60: 50 over 3
  // = 16.7/instance, 1.67 x 3 = 5. Averaging its 60 in would say 100/3 = 33.3/instance -> 10.
  const p = policy({ metrics: [{ kind: 'inflight', target: 10 }] });
  const inst = [...instances(2), ...instances(1, { startedAtMs: NOW - 10 * S }, 2)];
  const d = decide(input(p, 3, inst, [each([20, 20, 60])]));
  t.equal(d.desired, 5);
  t.match(d.reason, /1 in warm-up counted at their value or the target, the lower: 16.67\/instance/);
  t.equal(decide(input(p, 3, inst, [each([20, 20, 60])], { warmupMs: 5 * S })).desired, 10, 'past a shorter warm-up it counts');
});

t.test('a new instance serving under the target counts with what it serves on a scale-up: the group catches up at once', async (t) => {
  // rps target 100, 500 requests/s: 2 -> 4 a moment ago. The old instance answers 200
  // and the three new ones (5 s old, healthy) 100 each. Counted at 0 they would make
  // 200 / 4 = 50/instance, the other side of the target: stuck at 4 until the warm-up
  // ends. Counted at what they serve (at most the target): 500 / 4 = 125/instance,
  // 1.25 x 4 = 5.
  const inst = [...instances(1), ...instances(3, { startedAtMs: NOW - 5 * S }, 1)];
  const d = decide(input(policy(), 4, inst, [each([200, 100, 100, 100])]));
  t.equal(d.desired, 5);
  t.match(d.reason, /3 in warm-up counted at their value or the target, the lower: 125\/instance wants 5: 4 -> 5/);
});

t.test('healthy instances in their warm-up count on a scale-down: no flap right after a scale-up', async (t) => {
  // Just scaled 1 -> 5 for 500 rps: the old instance answers 70, the four new ones (10 s old,
  // healthy) 107.5 each. Sized from the old one alone, 0.7 x 1 instance would be 1: back to 1
  // under unchanged load (bench/autoscale saw it). Counted at the higher of their value and
  // the target, the new ones make (70 + 4 x 107.5) / 5 = 100/instance: within tolerance, keep 5.
  const inst = [...instances(1), ...instances(4, { startedAtMs: NOW - 10 * S }, 1)];
  const d = decide(input(policy(), 5, inst, [each([70, 107.5, 107.5, 107.5, 107.5])]));
  t.equal(d.desired, 5);
  t.match(d.reason, /4 in warm-up counted at their value or the target, the higher: 100\/instance, within tolerance/);
  // The load really gone (10 each): the new ones count at the target 100, (10 + 400) / 5 = 82,
  // 0.82 x 5 = 4.1 -> 5: the scale-down waits for the warm-up; past it all five say 10 -> 1.
  const quiet = [each([10, 10, 10, 10, 10])];
  t.equal(decide(input(policy(), 5, inst, quiet)).desired, 5, 'held while the new ones warm up');
  t.equal(decide(input(policy(), 5, inst, quiet, { warmupMs: 5 * S })).desired, 1, 'past the warm-up, down to 1');
});

t.test('missing samples dampen scale-down', async (t) => {
  // 3 of 4 report 40 (ratio 0.4); the 4th, missing, is counted at the target:
  // (120 + 100) / 4 = 55/instance -> 2.2 instances -> 3. Ignoring it would say 2.
  const d = decide(input(policy(), 4, instances(4), [each([40, 40, 40, undefined])]));
  t.equal(d.desired, 3);
  t.match(d.reason, /1 missing counted at the target: 55\/instance/);
});

t.test('missing samples dampen scale-up: the rebalanced ratio within tolerance -> no change', async (t) => {
  // 3 of 4 report 140 (ratio 1.4, which alone says 5); the missing one at 0:
  // 420 / 4 = 105/instance, ratio 1.05: within tolerance, keep 4.
  const d = decide(input(policy(), 4, instances(4), [each([140, 140, 140, undefined])]));
  t.equal(d.desired, 4);
  t.match(d.reason, /1 missing counted at 0: 105\/instance, within tolerance/);
});

t.test('direction flip after rebalancing -> no change', async (t) => {
  // 2 ready at 120 (ratio 1.2: up), 2 unready counted at 0: 240 / 4 = 60/instance,
  // ratio 0.6: down. A scale-up that turns into a scale-down does nothing.
  const inst = [...instances(2), ...instances(2, { ready: false }, 2)];
  const d = decide(input(policy(), 4, inst, [each([120, 120])]));
  t.equal(d.desired, 4);
  t.match(d.reason, /would reverse the direction: no change/);
});

t.test('a rebalanced scale-down that would raise the count -> no change', async (t) => {
  // The count is 2 while 5 instances run (a surge). 3 report 50 (ratio 0.5), 2 are
  // missing, counted at the target: (150 + 200) / 5 = 70/instance, 0.7 x 5 = 3.5 -> 4,
  // more than 2 although the ratio says down: keep 2.
  const d = decide(input(policy(), 2, instances(5), [each([50, 50, 50])]));
  t.equal(d.desired, 2);
  t.match(d.reason, /4 instances would move against it: no change/);
});

t.test('the largest desired count wins', async (t) => {
  // rps: 3 at 200 -> 6. inflight (target 10): 3 at 30 -> 9. The HPA takes 9.
  const p = policy({ metrics: [{ kind: 'rps', target: 100 }, { kind: 'inflight', target: 10 }] });
  const d = decide(input(p, 3, instances(3), [each([200, 200, 200]), each([30, 30, 30])]));
  t.equal(d.desired, 9);
  t.match(d.reason, /^inflight 30\/instance over target 10 \(\+10% tolerance\) wants 9: 3 -> 9 \[rps 200\/instance over target 100/);
  t.strictSame(d.metrics.map((m) => [m.name, m.wants]), [['rps', 6], ['inflight', 9]]);
});

t.test('promql values are compared to their target like rps', async (t) => {
  // target 5 per instance, 2 instances at 15: ratio 3 -> 6.
  const p = policy({ metrics: [{ kind: 'promql', query: 'sum by (instance_id) (queue_depth)', target: 5 }] });
  const d = decide(input(p, 2, instances(2), [each([15, 15])]));
  t.equal(d.desired, 6);
  t.match(d.reason, /^promql\[0\] 15\/instance over target 5/);
});

t.test('latency ceiling breached -> up', async (t) => {
  // p99 400 ms against a 250 ms ceiling: 1.6 times over, on 4 ready instances: 6.4 -> 7.
  const p = policy({ metrics: [{ kind: 'latency', quantile: 0.99, maxMs: 250 }] });
  const d = decide(input(p, 4, instances(4), [service(400)]));
  t.equal(d.desired, 7);
  t.equal(d.reason, 'latency p99 400ms over max 250ms (+10% tolerance) wants 7: 4 -> 7');
});

t.test('a ceiling under its max has no opinion: a scale-down goes ahead', async (t) => {
  // rps: 4 at 30 -> 2; p95 100 ms is under 250 ms and does not hold the count up.
  const p = policy({ metrics: [{ kind: 'rps', target: 100 }, { kind: 'latency', quantile: 0.95, maxMs: 250 }] });
  const d = decide(input(p, 4, instances(4), [each([30, 30, 30, 30]), service(100)]));
  t.equal(d.desired, 2);
  t.match(d.reason, /\[latency p95 100ms under max 250ms\]$/);
});

t.test('a ceiling alone never scales down', async (t) => {
  const p = policy({ metrics: [{ kind: 'errors', maxRatio: 0.05 }] });
  const d = decide(input(p, 4, instances(4), [service(0.001)]));
  t.equal(d.desired, 4);
  t.equal(d.reason, 'nothing to act on [errors 0.1% under max 5%]');
});

t.test('a breached ceiling never asks for fewer than now, so it blocks a scale-down', async (t) => {
  // 4 instances, 2 of them unready. errors 6% vs 5%: 1.2 times over, on 2 ready:
  // 2.4 -> 3, less than the 4 there are: it asks for 4. rps (2 ready at 20) asks for 1.
  // The largest wins: 4, no scale-down while errors are over the ceiling.
  const p = policy({ metrics: [{ kind: 'rps', target: 100 }, { kind: 'errors', maxRatio: 0.05 }] });
  const inst = [...instances(2), ...instances(2, { ready: false }, 2)];
  const d = decide(input(p, 4, inst, [each([20, 20]), service(0.06)]));
  t.equal(d.desired, 4);
  t.strictSame(d.metrics.map((m) => m.wants), [1, 4]);
});

t.test('error ratio within tolerance of its ceiling -> no opinion', async (t) => {
  // 5.4% vs 5%: 1.08 times, within the 10% tolerance.
  const p = policy({ metrics: [{ kind: 'errors', maxRatio: 0.05 }] });
  const d = decide(input(p, 3, instances(3), [service(0.054)]));
  t.equal(d.desired, 3);
  t.equal(d.metrics[0]!.wants, undefined);
});

t.test('scale-down waits for the window', async (t) => {
  // Window 60 s; 50 s ago the recommendation was 5. Now rps says 2: the highest
  // recommendation in the window is 5, so the count stays 5.
  const p = policy({ scaleDown: behavior({ stabilizationWindowMs: 60 * S }) });
  const past = history({ recommendations: [{ atMs: NOW - 50 * S, desired: 5 }] });
  const first = decide(input(p, 5, instances(5), [each([30, 30, 30, 30, 30])], { history: past }));
  t.equal(first.desired, 5);
  t.match(first.reason, /wants 2: 5 -> 5, held by scaleDown\.stabilizationWindow 1m \(highest recommendation in it: 5\)/);
  // 11 s later the 5 is 61 s old and out of the window; what is left in it is the 2 recorded above.
  const later = decide(input(p, 5, instances(5), [each([30, 30, 30, 30, 30])], { history: first.history, nowMs: NOW + 11 * S }));
  t.equal(later.desired, 2);
});

t.test('scale-up window takes the lowest recommendation in it', async (t) => {
  // Window 30 s holding 6 (20 s ago) and 8 (10 s ago); now 3 at 300 asks for 9.
  // The lowest in the window, 6, is as far as it goes.
  const p = policy({ scaleUp: behavior({ stabilizationWindowMs: 30 * S }) });
  const past = history({ recommendations: [{ atMs: NOW - 20 * S, desired: 6 }, { atMs: NOW - 10 * S, desired: 8 }] });
  const d = decide(input(p, 3, instances(3), [each([300, 300, 300])], { history: past }));
  t.equal(d.desired, 6);
  t.match(d.reason, /held by scaleUp\.stabilizationWindow 30s \(lowest recommendation in it: 6\)/);
});

t.test('a fresh history holds scale-down for one window', async (t) => {
  // No history (a new policy, or a lost document): the current count is taken as
  // this instant's recommendation, so nothing scales down for the first 60 s.
  const p = policy({ scaleDown: behavior({ stabilizationWindowMs: 60 * S }) });
  const d = decide(input(p, 5, instances(5), [each([30, 30, 30, 30, 30])]));
  t.equal(d.desired, 5);
  t.strictSame(d.history.recommendations, [{ atMs: NOW, desired: 5 }, { atMs: NOW, desired: 2 }]);
});

t.test('scale-up step capped +3', async (t) => {
  // 2 instances at 412: 8.24 -> 9, but maxStep +3 per 15 s allows 2 + 3 = 5.
  const p = policy({ scaleUp: behavior({ maxStep: { unit: 'instances', value: 3 } }) });
  const d = decide(input(p, 2, instances(2), [each([412, 412])]));
  t.equal(d.desired, 5);
  t.equal(d.reason, 'rps 412/instance over target 100 (+10% tolerance) wants 9: 2 -> 5, capped by scaleUp.maxStep +3 per 15s');
});

t.test('the step counts what the period already moved', async (t) => {
  // 10 s ago the count went 2 -> 4; the period (15 s) started at 2, so +3 allows 5.
  // 6 s later that event is 16 s old: the period starts at 4 and allows 7.
  const p = policy({ scaleUp: behavior({ maxStep: { unit: 'instances', value: 3 } }) });
  const past = history({ events: [{ atMs: NOW - 10 * S, from: 2, to: 4 }] });
  const hot = each([400, 400, 400, 400]);
  t.equal(decide(input(p, 4, instances(4), [hot], { history: past })).desired, 5);
  t.equal(decide(input(p, 4, instances(4), [hot], { history: past, nowMs: NOW + 6 * S })).desired, 7);
});

t.test('percent steps: +50% of 4 -> 6 up, -50% of 10 -> 5 down', async (t) => {
  // Up: 4 at 300 asks for 12; 4 x 1.5 = 6. Down: 10 at 10 asks for 1; 10 x 0.5 = 5.
  const up = policy({ scaleUp: behavior({ maxStep: { unit: 'percent', value: 50 } }) });
  t.equal(decide(input(up, 4, instances(4), [each([300, 300, 300, 300])])).desired, 6);
  const dn = policy({ scaleDown: behavior({ maxStep: { unit: 'percent', value: 50 } }) });
  const d = decide(input(dn, 10, instances(10), [each(Array(10).fill(10))]));
  t.equal(d.desired, 5);
  t.match(d.reason, /capped by scaleDown\.maxStep -50% per 15s$/);
});

t.test('scale-up cooldown holds the next scale-up, not a scale-down', async (t) => {
  // Cooldown 30 s, last scale-up 10 s ago: 4 at 200 (asks for 8) stays at 4.
  const p = policy({ scaleUp: behavior({ cooldownMs: 30 * S }) });
  const past = history({ events: [{ atMs: NOW - 10 * S, from: 2, to: 4 }] });
  const up = decide(input(p, 4, instances(4), [each([200, 200, 200, 200])], { history: past }));
  t.equal(up.desired, 4);
  t.match(up.reason, /held by scaleUp\.cooldown 30s \(last scale-up 10s ago\)/);
  // 4 at 30 asks for 2: scaleDown has no cooldown.
  t.equal(decide(input(p, 4, instances(4), [each([30, 30, 30, 30])], { history: past })).desired, 2);
});

t.test('min and max clamp', async (t) => {
  // 10 at 500 asks for 50: max 20.
  const big = decide(input(policy(), 10, instances(10), [each(Array(10).fill(500))]));
  t.equal(big.desired, 20);
  t.match(big.reason, /wants 50: 10 -> 20, capped by autoscale\.max 20/);
  // 4 at 10 asks for 1: min 3.
  t.equal(decide(input(policy({ min: 3 }), 4, instances(4), [each([10, 10, 10, 10])])).desired, 3);
  // The max was lowered to 20 under 25 running at the target: down to 20 at once.
  const over = decide(input(policy(), 25, instances(25), [each(Array(25).fill(100))]));
  t.equal(over.desired, 20);
  t.match(over.reason, /within target 100 \(±10% tolerance\) wants 25: 25 -> 20, capped by autoscale\.max 20$/);
  // Even past a scale-down window that still holds 25.
  const windowed = policy({ scaleDown: behavior({ stabilizationWindowMs: MIN }) });
  const held = decide(input(windowed, 25, instances(25), [each(Array(25).fill(100))], { history: history({ recommendations: [{ atMs: NOW - S, desired: 25 }] }) }));
  t.equal(held.desired, 20);
  t.match(held.reason, /lowered to autoscale\.max 20$/);
});

t.test('metrics never take a group to zero; 1 is their floor', async (t) => {
  // min 0, no idleToZero: 2 at 0 rps asks for 0 instances, and gets 1.
  const d = decide(input(policy({ min: 0 }), 2, instances(2), [each([0, 0])]));
  t.equal(d.desired, 1);
  t.match(d.reason, /held at 1 \(only idleToZero goes to 0\)/);
});

t.test('idle to zero after idleToZero', async (t) => {
  // min 0, idleToZero 5m; the last request was seen exactly 5 minutes ago and none since.
  const p = policy({ min: 0, idleToZeroMs: 5 * MIN });
  const idle = { traffic: { rps: 0, inflight: 0 } };
  const past = history({ lastTrafficAtMs: NOW - 5 * MIN });
  const d = decide(input(p, 3, instances(3), [each([0, 0, 0])], { metrics: { readings: [each([0, 0, 0])], ...idle }, history: past }));
  t.equal(d.desired, 0);
  t.equal(d.direction, 'down');
  t.equal(d.reason, 'no request for 5m (idleToZero 5m): 3 -> 0');
  // One second short of it: the metrics decide (1, their floor).
  const early = history({ lastTrafficAtMs: NOW - 5 * MIN + S });
  t.equal(decide(input(p, 3, instances(3), [], { metrics: { readings: [each([0, 0, 0])], ...idle }, history: early })).desired, 1);
});

t.test('traffic, a request in flight or unknown traffic restart the idle clock', async (t) => {
  const p = policy({ min: 0, idleToZeroMs: 5 * MIN });
  const past = history({ lastTrafficAtMs: NOW - 10 * MIN });
  for (const [what, traffic] of [
    ['0.5 rps', { rps: 0.5, inflight: 0 }],
    ['one long request in flight', { rps: 0, inflight: 1 }],
    ['traffic unknown', undefined],
  ] as const) {
    const d = decide(input(p, 2, instances(2), [], { metrics: { readings: [each([0, 0])], traffic }, history: past }));
    t.equal(d.desired, 1, `${what}: not idle`);
    t.equal(d.history.lastTrafficAtMs, NOW, `${what}: the clock restarts`);
  }
});

t.test('activation: a request waiting at zero -> 1, past any cooldown', async (t) => {
  const p = policy({ min: 0, idleToZeroMs: 5 * MIN, scaleUp: behavior({ cooldownMs: 10 * MIN }) });
  const past = history({ events: [{ atMs: NOW - MIN, from: 1, to: 2 }], lastTrafficAtMs: NOW - 20 * MIN });
  const d = decide(input(p, 0, [], [], { activationRequested: true, history: past, metrics: { readings: [down('no instances')], traffic: { rps: 0, inflight: 0 } } }));
  t.equal(d.desired, 1);
  t.equal(d.apply, true);
  t.equal(d.reason, 'activation: a request is waiting for the service at zero: 0 -> 1');
  t.equal(d.history.lastTrafficAtMs, NOW, 'the idle clock restarts, so the new instance is not idled away');
});

t.test('the load that follows an activation scales up at once', async (t) => {
  // 0 -> 1 two seconds ago; with cooldown 1m and maxStep +1 per 15s a scale-up would
  // otherwise wait. The activation is no scale-up for either: 1 at 300 -> 2 (1 + 1).
  const p = policy({ min: 0, scaleUp: behavior({ cooldownMs: MIN, maxStep: { unit: 'instances', value: 1 } }) });
  const past = history({ events: [{ atMs: NOW - 2 * S, from: 0, to: 1 }] });
  t.equal(decide(input(p, 1, instances(1), [each([300])], { history: past })).desired, 2);
});

t.test('at zero without a request: stay at zero', async (t) => {
  const d = decide(input(policy({ min: 0 }), 0, [], [down('no instances')], { metrics: { readings: [], traffic: { rps: 0, inflight: 0 } } }));
  t.equal(d.desired, 0);
  t.equal(d.direction, 'none');
  t.equal(d.reason, 'at zero, no request waiting');
});

t.test('onError hold: a needed metric unavailable keeps the count', async (t) => {
  const d = decide(input(policy(), 6, instances(6), [down('prometheus: connection refused')]));
  t.equal(d.desired, 6);
  t.equal(d.failed, false);
  t.equal(d.reason, 'rps unavailable (prometheus: connection refused): holding 6 (onError hold)');
});

t.test('onError min: a needed metric unavailable goes to min, through the scale-down rules', async (t) => {
  // min 2, no window: 6 -> 2. With maxStep -3 per 15s: 6 -> 3.
  t.equal(decide(input(policy({ onError: 'min', min: 2 }), 6, instances(6), [down('timeout')])).desired, 2);
  const capped = policy({ onError: 'min', min: 2, scaleDown: behavior({ maxStep: { unit: 'instances', value: 3 } }) });
  const d = decide(input(capped, 6, instances(6), [down('timeout')]));
  t.equal(d.desired, 3);
  t.equal(d.reason, 'rps unavailable (timeout): going to autoscale.min (onError min) wants 2: 6 -> 3, capped by scaleDown.maxStep -3 per 15s');
});

t.test('onError fail: the count stays and the decision is a failure', async (t) => {
  const d = decide(input(policy({ onError: 'fail' }), 6, instances(6), [down('bad query')]));
  t.equal(d.desired, 6);
  t.equal(d.failed, true);
  t.equal(d.apply, false);
  t.match(d.reason, /autoscaling failed \(onError fail\)/);
});

t.test('an unavailable metric does not stop a scale-up the others ask for', async (t) => {
  // rps is down, but p99 500 ms on 4 instances against 250 ms asks for 8: the HPA scales up anyway.
  const p = policy({ onError: 'fail', metrics: [{ kind: 'rps', target: 100 }, { kind: 'latency', quantile: 0.99, maxMs: 250 }] });
  const d = decide(input(p, 4, instances(4), [down('scrape failed'), service(500)]));
  t.equal(d.desired, 8);
  t.equal(d.failed, false);
  t.match(d.reason, /\[rps unavailable \(scrape failed\)\]$/);
});

t.test('no value from any ready instance is an unavailable metric', async (t) => {
  const d = decide(input(policy(), 3, instances(3), [each([])]));
  t.equal(d.desired, 3);
  t.match(d.reason, /^rps unavailable \(no value for any of the 3 ready instances\): holding 3/);
});

t.test('bounds hold even when nothing else can be decided', async (t) => {
  // max lowered to 4 under 6 instances while the metric is down (onError hold): 6 -> 4.
  const d = decide(input(policy({ max: 4 }), 6, instances(6), [down('timeout')]));
  t.equal(d.desired, 4);
  t.equal(d.reason, 'rps unavailable (timeout): holding 6 (onError hold), lowered to autoscale.max 4');
});

t.test('no ready instance to measure: hold, not an error', async (t) => {
  const d = decide(input(policy({ onError: 'fail' }), 2, instances(2, { ready: false }), [each([])]));
  t.equal(d.desired, 2);
  t.equal(d.failed, false);
  t.equal(d.reason, 'nothing to act on [rps: no ready instance to measure]');
});

t.test('a reading of the wrong kind is unavailable', async (t) => {
  const d = decide(input(policy(), 3, instances(3), [service(250)]));
  t.match(d.reason, /^rps unavailable \(the source gave one value for the service, not one per instance\)/);
});

t.test('dry run decides, applies nothing and records no scale event', async (t) => {
  const d = decide(input(policy({ dryRun: true }), 3, instances(3), [each([250, 250, 250])]));
  t.equal(d.desired, 8);
  t.equal(d.direction, 'up');
  t.equal(d.apply, false);
  t.match(d.reason, /^dry run: rps 250/);
  t.strictSame(d.history.events, []);
});

t.test('the history keeps only what the windows, cooldowns and periods can read', async (t) => {
  // Windows 60 s, period 15 s, cooldown 30 s: a recommendation 61 s old and an event 31 s old go.
  const p = policy({ scaleDown: behavior({ stabilizationWindowMs: 60 * S }), scaleUp: behavior({ cooldownMs: 30 * S }) });
  const past = history({
    recommendations: [{ atMs: NOW - 61 * S, desired: 9 }, { atMs: NOW - 59 * S, desired: 3 }],
    events: [{ atMs: NOW - 31 * S, from: 1, to: 2 }, { atMs: NOW - 29 * S, from: 2, to: 3 }],
  });
  const d = decide(input(p, 3, instances(3), [each([100, 100, 100])], { history: past }));
  t.strictSame(d.history.recommendations, [{ atMs: NOW, desired: 3 }], 'the 3 of 59 s ago folds into the 3 of now');
  t.strictSame(d.history.events, [{ atMs: NOW - 29 * S, from: 2, to: 3 }]);
});
