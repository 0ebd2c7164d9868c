/**
 * weft_scheduler_* metrics on the process registry (base/metrics.ts), served
 * at the API's /metrics. Replica gauges are set from each reconciliation's
 * view, so a standby (which does not reconcile) reports leader = 0 and no
 * replica series of its own.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AllocInfo, JobState } from '../../scheduler/index.js';
import { registry } from '../../base/metrics.js';

const replicas = new Gauge({
  name: 'weft_scheduler_replicas',
  help: 'Replicas per job and group: desired (count), running (agent reports running), healthy (running with passing checks).',
  labelNames: ['job', 'group', 'state'] as const,
  registers: [registry],
});

/** Placements (allocations started) by reason. */
export const placementsTotal = new Counter({
  name: 'weft_scheduler_placements_total',
  help: 'Allocations placed, by reason (new, replace-lost, reschedule, migrate, update).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** Stops by reason. */
export const stopsTotal = new Counter({
  name: 'weft_scheduler_stops_total',
  help: 'Allocations stopped, by reason (scale-down, node-lost, updated, duplicate, ...).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/** Placement failures (groups short of nodes) per reconciliation. */
export const placementFailuresTotal = new Counter({
  name: 'weft_scheduler_placement_failures_total',
  help: 'Allocations that could not be placed, summed over reconciliations.',
  registers: [registry],
});

/** The pure placement + reconcile step. */
export const placementLatency = new Histogram({
  name: 'weft_scheduler_placement_latency_seconds',
  help: 'Time of the pure reconcile + placement step of one reconciliation.',
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  registers: [registry],
});

/** A whole reconciliation: snapshot, reconcile, fenced writes. */
export const reconcileDuration = new Histogram({
  name: 'weft_scheduler_reconcile_duration_seconds',
  help: 'Time of one whole reconciliation (snapshot, plan, fenced KV writes).',
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

/** Reconciliations by result. */
export const reconcilesTotal = new Counter({
  name: 'weft_scheduler_reconciles_total',
  help: 'Reconciliations, by result (ok, error, lock-lost).',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** 1 while this instance holds weft/leader. */
export const leaderGauge = new Gauge({
  name: 'weft_scheduler_leader',
  help: '1 while this scheduler instance holds the weft/leader lock, else 0.',
  registers: [registry],
});
leaderGauge.set(0);

/** Sets the replica gauges from one reconciliation's jobs and allocations. */
export function recordReplicas(jobs: readonly JobState[], allocs: readonly AllocInfo[]): void {
  replicas.reset();
  for (const job of jobs) {
    for (const g of job.groups) {
      const mine = allocs.filter((a) => a.job === job.name && a.group === g.group);
      replicas.set({ job: job.name, group: g.group, state: 'desired' }, job.stopped ? 0 : g.count);
      replicas.set({ job: job.name, group: g.group, state: 'running' }, mine.filter((a) => a.status === 'running').length);
      replicas.set({ job: job.name, group: g.group, state: 'healthy' }, mine.filter((a) => a.status === 'running' && a.healthy === true).length);
    }
  }
}

/** Clears the per-job series (on losing leadership: a standby does not speak for the cluster). */
export function clearReplicas(): void {
  replicas.reset();
}
