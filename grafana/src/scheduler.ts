/**
 * Scheduler: who leads, how the control loop runs and whether it reaches
 * Consul, the nodes (readiness, capacity against what is allocated), the
 * jobs' replicas (desired, running, healthy: a deployment in progress or
 * failing is a gap between them), jobs by deployment state and allocations
 * whose health flaps, placement latency and failures, lost nodes and
 * reschedules, CSR signing, and the scheduler processes themselves.
 *
 * `weft_scheduler_replicas` and `weft_scheduler_allocation_health_changes_total`
 * have a label `job` (the weft job); Prometheus keeps its own `job` (the
 * scrape job) and stores weft's as `exported_job`. The node, job and replica
 * series come from the leader only (a standby clears them), so a sum over
 * schedulers counts each once; node series are read with `max by (node)`
 * for the moment of a failover.
 * Scheduler processes are told apart from proxies without naming a scrape job:
 * only a scheduler exports `weft_scheduler_leader` (0 on a standby).
 *
 * Only the datasource variable: the cluster has one scheduler leader, and
 * service, version and host select proxies and agents.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { datasourceVariable, finish, frame, labelTable, row, singleStat, timeSeries } from './common.js';

const RATE = '[$__rate_interval]';
/** Keeps the series of scheduler processes. */
const ON_SCHEDULERS = 'and on (job, instance) weft_scheduler_leader';
/** Seconds since each scheduler's last Consul call (0 before the first: no series until then). */
const CONSUL_AGE = 'time() - (weft_scheduler_consul_last_success_timestamp_seconds > 0)';

function quantiles(metric: string) {
  return [0.5, 0.99].map((q) => ({ expr: `histogram_quantile(${q}, sum by (le) (rate(${metric}_bucket${RATE})))`, legend: `p${Math.round(q * 100)}` }));
}

/** The Scheduler dashboard. */
export function scheduler(): Dashboard {
  return finish(
    frame('weft-scheduler', 'weft / Scheduler', 'The weft scheduler: leadership, the control loop and its Consul contact, nodes, jobs and replicas, placement.')
      .withVariable(datasourceVariable())

      .withRow(row('Leadership and the control loop'))
      .withPanel(
        singleStat({ title: 'Leaders', description: 'Schedulers holding the weft/leader lock: 1 is healthy, 0 means no control loop runs.', span: 4, queries: [{ expr: 'sum(weft_scheduler_leader)' }] }),
      )
      .withPanel(
        singleStat({ title: 'Schedulers reporting', description: 'Scheduler processes Prometheus scraped (leader and standbys).', span: 4, queries: [{ expr: 'count(weft_scheduler_leader)' }] }),
      )
      .withPanel(
        singleStat({
          title: 'Reconciliations/s',
          description: 'Reconciliations per second, every result.',
          unit: 'ops',
          span: 4,
          queries: [{ expr: `sum(rate(weft_scheduler_reconciles_total${RATE}))` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Allocations not placed',
          description: 'Allocations that could not be placed, summed over the reconciliations of the time range (a group short of nodes counts at every reconciliation).',
          span: 4,
          queries: [{ expr: 'sum(increase(weft_scheduler_placement_failures_total[$__range]))' }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Nodes ready',
          description: 'Nodes whose weft-agent heartbeat passes and that are not draining, as the leader saw them at its last reconciliation.',
          span: 4,
          queries: [{ expr: 'sum(weft_scheduler_nodes{state="ready"})' }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Oldest Consul contact',
          description: "Seconds since a scheduler last completed a Consul call, the most out of touch of them (every scheduler reads the leader key every second: more than a few seconds means Consul does not answer it).",
          unit: 's',
          span: 4,
          queries: [{ expr: `max(${CONSUL_AGE})` }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Leader per scheduler',
          description: '1 while a scheduler instance holds the lock; a failover shows as the 1 moving.',
          span: 6,
          queries: [{ expr: 'max by (instance) (weft_scheduler_leader)', legend: '{{instance}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Reconciliations by result',
          description: 'Reconciliations per second by result (ok, error, lock-lost).',
          unit: 'ops',
          span: 6,
          queries: [{ expr: `sum by (result) (rate(weft_scheduler_reconciles_total${RATE}))`, legend: '{{result}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Reconcile duration',
          description: 'p50 and p99 of one whole reconciliation: snapshot, plan, fenced KV writes.',
          unit: 's',
          span: 6,
          queries: quantiles('weft_scheduler_reconcile_duration_seconds'),
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Consul reachability',
            description: 'Seconds since each scheduler last completed a Consul call (the leader key, read every second by leader and standbys): a line climbing past a few seconds is a scheduler cut off from Consul.',
            unit: 's',
            span: 6,
            queries: [{ expr: `max by (host, instance) (${CONSUL_AGE})`, legend: '{{host}} {{instance}}' }],
          },
          { min: 0 },
        ),
      )

      .withRow(row('Nodes'))
      .withPanel(
        timeSeries(
          {
            title: 'Nodes by state',
            description: 'Nodes by readiness as the leader sees them: ready, draining, down (heartbeat failing), lost (down for scheduler.lostAfterMs: its allocations are replaced elsewhere).',
            span: 8,
            queries: [{ expr: 'sum by (state) (weft_scheduler_nodes)', legend: '{{state}}' }],
          },
          { stacked: true, min: 0 },
        ),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Node CPU: capacity and allocated',
            description: 'Per node, the CPU it offers to placement (Meta weft_cpu) and the CPU its pending and running allocations reserve, in cores.',
            span: 8,
            queries: [
              { expr: 'max by (node) (weft_scheduler_node_cpu_capacity_cores)', legend: '{{node}} capacity' },
              { expr: 'max by (node) (weft_scheduler_node_cpu_allocated_cores)', legend: '{{node}} allocated' },
            ],
          },
          { min: 0 },
        ),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Node memory: capacity and allocated',
            description: 'Per node, the memory it offers to placement (Meta weft_memory) and the memory its pending and running allocations reserve.',
            unit: 'bytes',
            span: 8,
            queries: [
              { expr: 'max by (node) (weft_scheduler_node_memory_capacity_bytes)', legend: '{{node}} capacity' },
              { expr: 'max by (node) (weft_scheduler_node_memory_allocated_bytes)', legend: '{{node}} allocated' },
            ],
          },
          { min: 0 },
        ),
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
      .withPanel(
        timeSeries(
          {
            title: 'Jobs by state',
            description: 'Jobs by the state of their latest deployment: running (rolling out), successful, failed, none (no deployment yet), stopped.',
            span: 12,
            queries: [{ expr: 'sum by (state) (weft_scheduler_jobs)', legend: '{{state}}' }],
          },
          { stacked: true, min: 0 },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'Allocation health changes',
          description: 'Running allocations whose checks flipped, per job, group and the new state (healthy or unhealthy): a steady stream is a flapping check or an instance that keeps failing.',
          span: 12,
          queries: [
            {
              expr: `sum by (exported_job, group, to) (increase(weft_scheduler_allocation_health_changes_total${RATE}))`,
              legend: '{{exported_job}}/{{group}} to {{to}}',
            },
          ],
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
          description: 'Certificate signing requests the schedulers\' CA handled per second, by result (signed or the refusal code); an agent signing with a local CA is not counted here.',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (result) (rate(weft_ca_csr_total${RATE}) ${ON_SCHEDULERS})`, legend: '{{result}}' }],
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
