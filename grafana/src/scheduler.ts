/**
 * Scheduler: who leads, how the control loop runs, the jobs' replicas
 * (desired, running, healthy: a deployment in progress or failing is a gap
 * between them), placement latency and failures, lost nodes and reschedules,
 * CSR signing, and the scheduler processes themselves.
 *
 * `weft_scheduler_replicas` has a label `job` (the weft job); Prometheus keeps
 * its own `job` (the scrape job) and stores weft's as `exported_job`.
 * Scheduler processes are told apart from proxies without naming a scrape job:
 * only a scheduler exports `weft_scheduler_leader` (0 on a standby).
 *
 * Only the datasource variable: service, version and host label proxy series,
 * and none of the scheduler's series carries them.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { datasourceVariable, finish, frame, labelTable, row, singleStat, timeSeries } from './common.js';

const RATE = '[$__rate_interval]';
/** Keeps the series of scheduler processes. */
const ON_SCHEDULERS = 'and on (job, instance) weft_scheduler_leader';

function quantiles(metric: string) {
  return [0.5, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket${RATE})))`, legend: `p${Math.round(q * 100)}` }));
}

/** The Scheduler dashboard. */
export function scheduler(): Dashboard {
  return finish(
    frame('weft-scheduler', 'weft / Scheduler', 'The weft scheduler: leadership, the control loop, jobs and replicas, placement.')
      .withVariable(datasourceVariable())

      .withRow(row('Leadership and the control loop'))
      .withPanel(singleStat({ title: 'Leaders', description: 'Schedulers holding the weft/leader lock: 1 is healthy, 0 means no control loop runs.', queries: [{ expr: 'sum(weft_scheduler_leader)' }] }))
      .withPanel(singleStat({ title: 'Schedulers reporting', description: 'Scheduler processes Prometheus scraped (leader and standbys).', queries: [{ expr: 'count(weft_scheduler_leader)' }] }))
      .withPanel(
        singleStat({ title: 'Reconciliations/s', description: 'Reconciliations per second, every result.', unit: 'ops', queries: [{ expr: `sum(rate(weft_scheduler_reconciles_total${RATE}))` }] }),
      )
      .withPanel(
        singleStat({
          title: 'Allocations not placed',
          description: 'Allocations that could not be placed, summed over the reconciliations of the time range (a group short of nodes counts at every reconciliation).',
          queries: [{ expr: 'sum(increase(weft_scheduler_placement_failures_total[$__range]))' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Leader per scheduler',
          description: '1 while a scheduler instance holds the lock; a failover shows as the 1 moving.',
          span: 8,
          queries: [{ expr: 'max by (instance) (weft_scheduler_leader)', legend: '{{instance}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Reconciliations by result',
          description: 'Reconciliations per second by result (ok, error, lock-lost).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (result) (rate(weft_scheduler_reconciles_total${RATE}))`, legend: '{{result}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Reconcile duration',
          description: 'p50 and p99 of one whole reconciliation: snapshot, plan, fenced KV writes.',
          unit: 's',
          span: 8,
          queries: quantiles('weft_scheduler_reconcile_duration_seconds'),
        }),
      )

      .withRow(row('Jobs'))
      .withPanel(
        labelTable(
          {
            title: 'Replicas per job',
            description: 'Per job and group, as of the leader\'s last reconciliation: desired count, allocations running, and running with passing checks.',
            span: 24,
            height: 7,
            queries: ['desired', 'running', 'healthy'].map((state) => ({ expr: `sum by (exported_job, group) (weft_scheduler_replicas{state="${state}"})` })),
          },
          { columns: ['desired', 'running', 'healthy'] },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'Replicas short of healthy',
          description: 'Desired minus healthy replicas per job and group: above 0 while a deployment rolls out, stays above 0 when it fails or nodes are short.',
          span: 12,
          queries: [
            {
              expr: 'sum by (exported_job, group) (weft_scheduler_replicas{state="desired"}) - sum by (exported_job, group) (weft_scheduler_replicas{state="healthy"})',
              legend: '{{exported_job}}/{{group}}',
            },
          ],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Replicas by state',
          description: 'Desired, running and healthy replicas per job.',
          span: 12,
          queries: [{ expr: 'sum by (exported_job, state) (weft_scheduler_replicas)', legend: '{{exported_job}} {{state}}' }],
        }),
      )

      .withRow(row('Placement'))
      .withPanel(
        timeSeries({
          title: 'Placement latency',
          description: 'p50 and p99 of the pure reconcile + placement step of one reconciliation.',
          unit: 's',
          span: 8,
          queries: quantiles('weft_scheduler_placement_latency_seconds'),
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Placement failures',
          description: 'Allocations not placed per second, summed over reconciliations (the reasons are in weft status <job>).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum(rate(weft_scheduler_placement_failures_total${RATE}))`, legend: 'not placed' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Placements by reason',
          description: 'Allocations placed per second, by reason (new, update, migrate, reschedule, replace-lost).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (reason) (rate(weft_scheduler_placements_total${RATE}))`, legend: '{{reason}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Lost nodes and reschedules',
          description: 'Allocations stopped because their node was lost, their replacements, and reschedules of failed allocations.',
          span: 8,
          queries: [
            { expr: `sum(increase(weft_scheduler_stops_total{reason="node-lost"}${RATE}))`, legend: 'stopped: node lost' },
            { expr: `sum by (reason) (increase(weft_scheduler_placements_total{reason=~"replace-lost|reschedule"}${RATE}))`, legend: 'placed: {{reason}}' },
          ],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Stops by reason',
          description: 'Allocations stopped per second, by reason (scale-down, updated, node-lost, duplicate, ...).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (reason) (rate(weft_scheduler_stops_total${RATE}))`, legend: '{{reason}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'CSR signing',
          description: 'Certificate signing requests the scheduler\'s CA handled per second, by result (signed or the refusal code).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (result) (rate(weft_ca_csr_total${RATE}))`, legend: '{{result}}' }],
        }),
      )

      .withRow(row('Scheduler processes'))
      .withPanel(
        timeSeries({
          title: 'Scheduler memory',
          description: 'Resident memory per scheduler process.',
          unit: 'bytes',
          queries: [{ expr: `weft_process_resident_memory_bytes ${ON_SCHEDULERS}`, legend: '{{instance}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Scheduler CPU',
          description: 'CPU per scheduler process (1 = one core busy).',
          unit: 'percentunit',
          queries: [{ expr: `rate(weft_process_cpu_seconds_total${RATE}) ${ON_SCHEDULERS}`, legend: '{{instance}}' }],
        }),
      ),
  );
}
