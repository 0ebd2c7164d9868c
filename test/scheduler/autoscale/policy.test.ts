/**
 * The policy around the calculator: the spec's autoscale block compiled
 * (defaults, milliseconds, steps, the measured service), the step syntax,
 * the PromQL check, and the stored history document.
 */
import t from 'tap';
import { decide } from '../../../scheduler/autoscale/calculator.js';
import { clampToNow, emptyHistory, HISTORY_VERSION, MAX_RECOMMENDATIONS, parseHistory, pruneHistory, withRecommendation } from '../../../scheduler/autoscale/history.js';
import { compileAutoscale, formatScaleStep, parseScaleStep } from '../../../scheduler/autoscale/policy.js';
import { checkPromQL } from '../../../scheduler/autoscale/promql.js';
import type { AutoscalePolicy } from '../../../scheduler/model.js';
import { compileJob } from '../../../scheduler/spec/compile.js';
import type { GroupSpec } from '../../../scheduler/spec/schema.js';
import { parseJobSpec } from '../../../scheduler/spec/validate.js';

const NOW = 1_700_000_000_000;

const YAML = `
name: shop
groups:
  - name: web
    count: 2
    autoscale:
      min: 0
      max: 12
      metrics:
        - rps: 100
        - latency: { max: 250ms }
        - errors: { max: 0.05 }
        - promql: sum by (instance_id) (rate(shop_orders_total[1m]))
          target: 5
      scaleUp: { maxStep: "+3", period: 30s, cooldown: 10s }
      scaleDown: { maxStep: "50%" }
      idleToZero: 10m
    tasks:
      - name: web
        driver: process
        command: /usr/bin/web
        port: 0
`;

t.test('a policy compiles with its defaults, in milliseconds', async (t) => {
  const parsed = parseJobSpec(YAML);
  if (!parsed.ok) {
    t.fail(JSON.stringify(parsed.errors));
    return;
  }
  const expected: AutoscalePolicy = {
    min: 0,
    max: 12,
    metrics: [
      { kind: 'rps', target: 100 },
      { kind: 'latency', quantile: 0.99, maxMs: 250 },
      { kind: 'errors', maxRatio: 0.05 },
      { kind: 'promql', query: 'sum by (instance_id) (rate(shop_orders_total[1m]))', target: 5 },
    ],
    service: 'web',
    tolerance: 0.1,
    scaleUp: { stabilizationWindowMs: 0, cooldownMs: 10_000, maxStep: { unit: 'instances', value: 3 }, periodMs: 30_000 },
    scaleDown: { stabilizationWindowMs: 60_000, cooldownMs: 0, maxStep: { unit: 'percent', value: 50 }, periodMs: 15_000 },
    intervalMs: 1000,
    onError: 'hold',
    dryRun: false,
    idleToZeroMs: 600_000,
  };
  t.strictSame(compileJob(parsed.job, 1).groups[0]!.autoscale, expected);
});

t.test('a group without autoscale compiles without the key', async (t) => {
  const parsed = parseJobSpec(YAML.replace(/ {4}autoscale:[\s\S]*?idleToZero: 10m\n/, ''));
  t.ok(parsed.ok);
  if (parsed.ok) t.notOk('autoscale' in compileJob(parsed.job, 1).groups[0]!);
});

t.test('the service: the first task that registers one, its weft.service label, or the one named', async (t) => {
  const group = (over: Partial<GroupSpec>): GroupSpec => ({
    name: 'g',
    tasks: [
      { name: 'batch', driver: 'process', command: '/bin/batch' },
      { name: 'api', driver: 'process', command: '/bin/api', port: 0, labels: { 'weft.service': 'shop-api' } },
      { name: 'admin', driver: 'process', command: '/bin/admin', port: 0 },
    ],
    autoscale: { min: 1, max: 3, metrics: [{ rps: 10 }] },
    ...over,
  });
  t.equal(compileAutoscale(group({}))!.service, 'shop-api');
  t.equal(compileAutoscale(group({ autoscale: { min: 1, max: 3, metrics: [{ rps: 10 }], service: 'admin' } }))!.service, 'admin');
});

t.test('a stored spec with the placeholder form still compiles (to no metrics: the count holds)', async (t) => {
  // Specs stored before the policy existed had metric/target; compileJob runs on stored specs unvalidated.
  const legacy = { name: 'g', tasks: [{ name: 'a', driver: 'process', command: '/a', port: 0 }], autoscale: { min: 1, max: 5, metric: 'rps', target: 100 } } as unknown as GroupSpec;
  const policy = compileAutoscale(legacy)!;
  t.strictSame(policy.metrics, []);
  const d = decide({
    policy,
    current: 3,
    instances: [],
    metrics: { readings: [], traffic: undefined },
    activationRequested: false,
    history: emptyHistory(),
    nowMs: NOW,
  });
  t.equal(d.desired, 3);
  t.equal(d.reason, 'nothing to act on');
});

t.test('maxStep syntax', async (t) => {
  const cases: Array<[string, 'up' | 'down', string]> = [
    ['+3', 'up', 'instances 3'],
    ['3', 'up', 'instances 3'],
    ['+50%', 'up', 'percent 50'],
    ['200%', 'up', 'percent 200'],
    ['-2', 'down', 'instances 2'],
    ['50%', 'down', 'percent 50'],
    ['-100%', 'down', 'percent 100'],
    ['three', 'up', 'not a step: write +3 (instances) or +50% (of the count at the period\'s start) (got "three")'],
    ['+3 per 15s', 'up', 'not a step'],
    ['+1.5', 'up', 'not a step'],
    ['-3', 'up', 'scaleUp adds instances: write +3 (got "-3")'],
    ['+50%', 'down', 'scaleDown removes instances: write -50% (got "+50%")'],
    ['+0', 'up', 'must move at least 1 (got "+0"); to stop scaling up, set max'],
    ['-0%', 'down', 'must move at least 1 (got "-0%"); to stop scaling down, set min'],
    ['-101%', 'down', 'must be at most -100% (got "-101%")'],
  ];
  for (const [text, direction, expected] of cases) {
    const r = parseScaleStep(text, direction);
    const got = r.ok ? `${r.step.unit} ${r.step.value}` : r.message;
    t.ok(got.startsWith(expected), `${direction} ${text}: ${expected}`, { got });
  }
  t.equal(formatScaleStep({ unit: 'percent', value: 50 }, 'down'), '-50%');
  t.equal(formatScaleStep({ unit: 'instances', value: 3 }, 'up'), '+3');
});

t.test('PromQL is checked with the real grammar', async (t) => {
  const good = [
    'sum by (instance_id) (rate(http_requests_total{service="shop"}[1m]))',
    'histogram_quantile(0.99, sum by (le, instance_id) (rate(weft_proxy_request_duration_seconds_bucket[5m])))',
    'avg_over_time(queue_depth[30s]) / 10',
    'up offset 5m',
  ];
  for (const expr of good) t.equal(checkPromQL(expr), undefined, expr);
  const bad: Array<[string, string]> = [
    ['sum(rate(x[1m])', 'column 16: ends too early'],
    ['rate(x[5m]) by (a)', 'column 13: unexpected "by (a)"'],
    ['foo bar', 'column 5: unexpected "bar"'],
    ['up{job="a"', 'column 11: ends too early'],
    ['   ', 'column 1: is empty'],
  ];
  for (const [expr, expected] of bad) {
    const e = checkPromQL(expr);
    t.equal(e === undefined ? 'parsed' : `column ${e.column}: ${e.message}`, expected, expr);
  }
});

t.test('the history document round-trips through JSON', async (t) => {
  const h = {
    version: HISTORY_VERSION,
    recommendations: [{ atMs: NOW - 2000, desired: 3 }, { atMs: NOW, desired: 4 }],
    events: [{ atMs: NOW - 1000, from: 2, to: 3 }],
    lastTrafficAtMs: NOW,
  };
  t.strictSame(parseHistory(JSON.parse(JSON.stringify(h))), { history: h });
  t.strictSame(parseHistory(undefined), { history: emptyHistory() }, 'no document yet');
});

t.test('an unreadable history starts afresh and says why', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['x', 'not a JSON object'],
    [{ version: 2, recommendations: [], events: [] }, 'version 2 is not 1, the one this weft reads'],
    [{ version: 1, recommendations: [{ atMs: NOW, desired: -1 }], events: [] }, 'recommendations: not a list of { atMs, desired }'],
    [{ version: 1, recommendations: [], events: 'none' }, 'events: not a list of { atMs, from, to }'],
    [{ version: 1, recommendations: [], events: [], lastTrafficAtMs: 'now' }, 'lastTrafficAtMs: not a time'],
  ];
  for (const [doc, problem] of cases) t.strictSame(parseHistory(doc), { history: emptyHistory(), problem }, problem);
});

t.test('equal recommendations in a row fold into the newest', async (t) => {
  let list = withRecommendation([], { atMs: 1, desired: 3 });
  list = withRecommendation(list, { atMs: 2, desired: 3 });
  list = withRecommendation(list, { atMs: 3, desired: 5 });
  list = withRecommendation(list, { atMs: 4, desired: 5 });
  t.strictSame(list, [{ atMs: 2, desired: 3 }, { atMs: 4, desired: 5 }]);
});

t.test('the lists stay bounded whatever the windows', async (t) => {
  const recommendations = Array.from({ length: MAX_RECOMMENDATIONS + 10 }, (_, i) => ({ atMs: NOW - i, desired: i % 2 })).reverse();
  const pruned = pruneHistory({ ...emptyHistory(), recommendations }, NOW, { recommendationsMs: 3_600_000, eventsMs: 0 });
  t.equal(pruned.recommendations.length, MAX_RECOMMENDATIONS);
  t.equal(pruned.recommendations.at(-1)!.atMs, NOW, 'the newest are kept');
});

t.test('times from a clock ahead of ours count as now', async (t) => {
  const ahead = { ...emptyHistory(), recommendations: [{ atMs: NOW + 60_000, desired: 9 }], events: [{ atMs: NOW + 5000, from: 1, to: 2 }], lastTrafficAtMs: NOW + 1000 };
  t.strictSame(clampToNow(ahead, NOW), { ...emptyHistory(), recommendations: [{ atMs: NOW, desired: 9 }], events: [{ atMs: NOW, from: 1, to: 2 }], lastTrafficAtMs: NOW });
});
