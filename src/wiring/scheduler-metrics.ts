/**
 * weft_scheduler_* metrics on the process registry (base/metrics.ts), served
 * at the API's /metrics. Replica gauges are set from each reconciliation's
 * view, so a standby (which does not reconcile) reports leader = 0 and no
 * replica series of its own.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import { type AllocInfo, type Deployment, type JobState, type NodeInfo, readiness } from '../../scheduler/index.js';
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
  for (const g of clusterGauges) g.reset();
  healthSeen.clear();
}

/** The node readiness states, always all exported (0 when none), so a panel never has gaps. */
const NODE_STATES = ['ready', 'draining', 'down', 'lost'] as const;

const nodes = new Gauge({
  name: 'weft_scheduler_nodes',
  help: 'Nodes (weft-agent hosts) by readiness as the leader sees them: ready, draining, down (heartbeat failing), lost (down for lostAfterMs).',
  labelNames: ['state'] as const,
  registers: [registry],
});

const nodeCpuCapacity = new Gauge({
  name: 'weft_scheduler_node_cpu_capacity_cores',
  help: 'CPU a node offers to placement (Meta weft_cpu), in cores.',
  labelNames: ['node'] as const,
  registers: [registry],
});

const nodeCpuAllocated = new Gauge({
  name: 'weft_scheduler_node_cpu_allocated_cores',
  help: 'CPU reserved on a node by its pending and running allocations, in cores.',
  labelNames: ['node'] as const,
  registers: [registry],
});

const nodeMemoryCapacity = new Gauge({
  name: 'weft_scheduler_node_memory_capacity_bytes',
  help: 'Memory a node offers to placement (Meta weft_memory), in bytes.',
  labelNames: ['node'] as const,
  registers: [registry],
});

const nodeMemoryAllocated = new Gauge({
  name: 'weft_scheduler_node_memory_allocated_bytes',
  help: 'Memory reserved on a node by its pending and running allocations, in bytes.',
  labelNames: ['node'] as const,
  registers: [registry],
});

/** The deployment states a job is counted in; `none` before its first deployment, `stopped` for a stopped job. */
const JOB_STATES = ['running', 'successful', 'failed', 'none', 'stopped'] as const;

const jobsByState = new Gauge({
  name: 'weft_scheduler_jobs',
  help: "Jobs by the state of their latest deployment: running, successful, failed, none (no deployment yet) or stopped (the job is stopped).",
  labelNames: ['state'] as const,
  registers: [registry],
});

const healthChanges = new Counter({
  name: 'weft_scheduler_allocation_health_changes_total',
  help: 'Running allocations whose health (every check passing) changed, by job, group and the new state (healthy or unhealthy): flapping checks.',
  labelNames: ['job', 'group', 'to'] as const,
  registers: [registry],
});

/** Set each reconciliation; cleared with the replica gauges when leadership is lost. */
const clusterGauges = [nodes, nodeCpuCapacity, nodeCpuAllocated, nodeMemoryCapacity, nodeMemoryAllocated, jobsByState];

/** Each running allocation's health as last seen (to count changes, not states). */
const healthSeen = new Map<string, boolean>();

/**
 * Unix seconds of the last Consul call that succeeded (the leader key read
 * every second by every instance, leader or standby).
 */
export const consulLastSuccess = new Gauge({
  name: 'weft_scheduler_consul_last_success_timestamp_seconds',
  help: 'When this scheduler last completed a Consul call (Unix seconds); 0 before the first.',
  registers: [registry],
});

const MIB = 1024 * 1024;

/**
 * Sets the node, job and health series from one reconciliation: node
 * readiness and capacity, resources reserved by pending and running
 * allocations, jobs by deployment state, and health changes of running
 * allocations since the previous reconciliation.
 */
export function recordCluster(view: {
  nodes: readonly NodeInfo[];
  jobs: readonly JobState[];
  allocs: readonly AllocInfo[];
  deployments: readonly Deployment[];
  nowMs: number;
  lostAfterMs: number;
}): void {
  for (const g of clusterGauges) g.reset();
  const counts = new Map<string, number>(NODE_STATES.map((s) => [s, 0]));
  for (const n of view.nodes) {
    const state = readiness(n, view.nowMs, view.lostAfterMs);
    counts.set(state, (counts.get(state) ?? 0) + 1);
    nodeCpuCapacity.set({ node: n.name }, n.capacity.cpu / 1000);
    nodeMemoryCapacity.set({ node: n.name }, n.capacity.memory * MIB);
    nodeCpuAllocated.set({ node: n.name }, 0);
    nodeMemoryAllocated.set({ node: n.name }, 0);
  }
  for (const [state, count] of counts) nodes.set({ state }, count);
  const reserved = new Map<string, { cpu: number; memory: number }>();
  for (const a of view.allocs) {
    if (a.status !== 'pending' && a.status !== 'running') continue;
    const r = reserved.get(a.node) ?? { cpu: 0, memory: 0 };
    r.cpu += a.resources.cpu;
    r.memory += a.resources.memory;
    reserved.set(a.node, r);
  }
  for (const [node, r] of reserved) {
    nodeCpuAllocated.set({ node }, r.cpu / 1000);
    nodeMemoryAllocated.set({ node }, r.memory * MIB);
  }
  const latest = new Map<string, Deployment>();
  for (const d of view.deployments) {
    const seen = latest.get(d.job);
    if (seen === undefined || d.version >= seen.version) latest.set(d.job, d);
  }
  const jobCounts = new Map<string, number>(JOB_STATES.map((s) => [s, 0]));
  for (const job of view.jobs) {
    const state = job.stopped ? 'stopped' : (latest.get(job.name)?.status ?? 'none');
    jobCounts.set(state, (jobCounts.get(state) ?? 0) + 1);
  }
  for (const [state, count] of jobCounts) jobsByState.set({ state }, count);
  const current = new Set<string>();
  for (const a of view.allocs) {
    if (a.healthy === undefined) continue; // not running: no check state to compare
    current.add(a.id);
    const before = healthSeen.get(a.id);
    if (before !== undefined && before !== a.healthy) healthChanges.inc({ job: a.job, group: a.group, to: a.healthy ? 'healthy' : 'unhealthy' });
    healthSeen.set(a.id, a.healthy);
  }
  for (const id of [...healthSeen.keys()]) if (!current.has(id)) healthSeen.delete(id);
}
