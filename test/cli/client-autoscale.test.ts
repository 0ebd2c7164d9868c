/**
 * `weft autoscale JOB`'s rendering of GET /v1/jobs/:job/autoscale: pure text
 * from the answer and a pinned clock (the command itself runs against a real
 * scheduler in test/src/wiring/scheduler-autoscaler.test.ts).
 */
import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { type JobAutoscaleResponse, JobAutoscaleResponseSchema } from '../../base/contracts/scheduler-api.js';
import { renderAutoscale } from '../../src/cli/client/views.js';

const NOW = Date.parse('2030-01-01T12:00:00Z');
const at = (secondsAgo: number): string => new Date(NOW - secondsAgo * 1000).toISOString();

const answer: JobAutoscaleResponse = {
  job: 'shop',
  live: true,
  groups: [
    {
      group: 'web',
      service: 'web',
      policy: { min: 2, max: 20, intervalMs: 1000, tolerance: 0.1, onError: 'hold', dryRun: false, scaleUpWindowMs: 0, scaleDownWindowMs: 60_000 },
      current: 5,
      desired: 5,
      instances: { total: 5, ready: 4 },
      metrics: [
        { name: 'rps', kind: 'rps', value: 104.5, target: 100, unit: 'req/s', wants: 5, summary: 'rps 104.5/instance within target 100 (±10% tolerance)' },
        { name: 'latency p99', kind: 'latency', value: 412, target: 250, unit: 'ms', wants: 8, summary: 'latency p99 412ms over max 250ms (+10% tolerance)' },
        { name: 'errors', kind: 'errors', value: null, target: 0.05, unit: 'ratio', unavailable: 'scrape failed', summary: 'errors unavailable (scrape failed)' },
      ],
      last: { at: at(1), from: 5, to: 5, direction: 'none', applied: false, dryRun: false, failed: false, activation: false, reason: 'rps 104.5/instance within target 100 (±10% tolerance): 5 -> 5' },
      decisions: [
        { at: at(90), from: 2, to: 5, direction: 'up', applied: true, dryRun: false, failed: false, activation: false, reason: 'rps 250/instance over target 100 (+10% tolerance) wants 5: 2 -> 5' },
        { at: at(30), from: 5, to: 5, direction: 'none', applied: false, dryRun: false, failed: true, activation: false, reason: 'rps unavailable (scrape failed): holding 5 (onError hold)' },
      ],
    },
  ],
};

t.test('a group: the count, each metric against its target, the last decision, the recent ones', async (t) => {
  t.ok(Value.Check(JobAutoscaleResponseSchema, answer), 'the sample answer is the contract');
  t.equal(
    renderAutoscale(answer, { color: false, now: NOW }),
    [
      'shop: live from the leader',
      '',
      'web: 5 (min 2, max 20, every 1s; 4/5 instances ready)',
      'METRIC             VALUE      TARGET  WANTS  NOTE',
      'rps          104.5 req/s   100 req/s      5  -',
      'latency p99       412 ms  max 250 ms      8  -',
      'errors                 -      max 5%      -  unavailable: scrape failed',
      'last decision 1s ago: rps 104.5/instance within target 100 (±10% tolerance): 5 -> 5',
      'recent decisions',
      '  90s ago   2 -> 5    applied  rps 250/instance over target 100 (+10% tolerance) wants 5: 2 -> 5',
      '  30s ago   5 -> 5    failed   rps unavailable (scrape failed): holding 5 (onError hold)',
    ].join('\n'),
  );
});

t.test('a dry run, a group not decided on yet, a job without a policy', async (t) => {
  const g = answer.groups[0]!;
  const dry: JobAutoscaleResponse = {
    job: 'shop',
    live: false,
    groups: [{ ...g, policy: { ...g.policy, dryRun: true }, current: 2, desired: 5, decisions: [{ ...g.decisions[0]!, applied: false, dryRun: true, reason: 'dry run: rps 250/instance over target 100 (+10% tolerance) wants 5: 2 -> 5' }] }],
  };
  const out = renderAutoscale(dry, { color: false, now: NOW });
  t.match(out, /^shop: as the leader last stored it\n\nweb: 2 -> 5 \(min 2, max 20, every 1s, dry run; 4\/5 instances ready\)\n/);
  t.match(out, /\n {2}90s ago {3}2 -> 5 {4}dry run {2}dry run: rps 250/);
  const fresh: JobAutoscaleResponse = { job: 'shop', live: false, groups: [{ ...g, instances: undefined, last: undefined, decisions: [], metrics: [{ name: 'rps', kind: 'rps', value: null, target: 100, unit: 'req/s', summary: 'rps: not measured yet' }] }] } as never;
  t.equal(renderAutoscale(fresh, { color: false, now: NOW }), ['shop: as the leader last stored it', '', 'web: 5 (min 2, max 20, every 1s)', 'METRIC  VALUE     TARGET  WANTS', 'rps         -  100 req/s      -'].join('\n'));
  t.equal(renderAutoscale({ job: 'batch', live: false, groups: [] }, { color: false }), 'batch: no group has an autoscale policy');
});

t.test('colour only when asked: over target yellow, unavailable red, applied green', async (t) => {
  const out = renderAutoscale(answer, { color: true, now: NOW });
  const sgr = (code: number, text: string): string => `\u001b[${code}m${text}\u001b[0m`;
  t.ok(out.includes(sgr(33, '     412 ms')), 'latency over its ceiling: yellow');
  t.ok(out.includes(sgr(31, 'unavailable: scrape failed')), 'unavailable: red');
  t.ok(out.includes(sgr(32, 'applied')), 'applied: green');
  t.notOk(renderAutoscale(answer, { color: false, now: NOW }).includes('\u001b'), 'no colour when not asked');
});
