/**
 * The reconciler: cluster state in, plan out. Pure: no clock (nowMs is an
 * input), no I/O, randomness and ids injected. Run it whenever anything
 * changes (and at plan.followUpAtMs); applying its plan and running it again
 * converges to an empty plan.
 *
 *   nodes ─ readiness ─┐
 *   jobs ──────────────┼─ per group: decideGroup ─▶ stops + wants ─┐
 *   allocs ────────────┘                                          ├─ Placer ─▶ places / failures
 *   deployments ─ status, auto-revert ◀── group health ────────────┘
 *
 * Placement runs in two passes so an update never costs capacity: first the
 * wants that replace nothing still running (new, lost, rescheduled), by job
 * priority; then updates and migrations, each releasing the allocation it
 * replaces just before placing, and keeping it running when no node fits.
 */
import { randomBytes } from 'node:crypto';
import type { AllocInfo, Deployment, GroupDemand, JobState, NodeInfo } from '../model.js';
import { DEFAULT_LOST_AFTER_MS, lostAtMs, type Readiness, readiness } from '../nodes.js';
import { ClusterState, type Random } from '../placement/cluster.js';
import { type Algorithm, Placer } from '../placement/placer.js';
import type { PlacementFailure } from '../placement/reasons.js';
import { decideGroup, type GroupDecision, type Want } from './group.js';
import { emptyPlan, type Plan, type PlannedStop } from './plan.js';

/** Everything the reconciler looks at. */
export interface ReconcileInput {
  nowMs: number;
  nodes: readonly NodeInfo[];
  jobs: readonly JobState[];
  allocs: readonly AllocInfo[];
  /** The latest deployment of each job. */
  deployments: readonly Deployment[];
}

export interface ReconcileOptions {
  /** How long a node's heartbeat may fail before its allocations are replaced (default 30 s). */
  lostAfterMs?: number;
  algorithm?: Algorithm;
  random?: Random;
  /** New allocation ids (default: 10 random hex digits). */
  newId?: () => string;
  dynamicPorts?: { min: number; max: number };
}

interface GroupWork {
  job: JobState;
  demand: GroupDemand;
  decision: GroupDecision;
  allocs: AllocInfo[];
}

/** Computes the plan for one moment of the cluster. */
export function reconcile(input: ReconcileInput, opts: ReconcileOptions = {}): Plan {
  const lostAfter = opts.lostAfterMs ?? DEFAULT_LOST_AFTER_MS;
  const newId = opts.newId ?? (() => randomBytes(5).toString('hex'));
  const plan = emptyPlan();
  const followUps: number[] = [];
  const states = new Map<string, Readiness>();
  for (const n of input.nodes) {
    states.set(n.name, readiness(n, input.nowMs, lostAfter));
    const lostAt = lostAtMs(n, input.nowMs, lostAfter);
    if (lostAt !== undefined && lostAt > input.nowMs) followUps.push(lostAt);
  }
  const readinessOf = (node: string): Readiness => states.get(node) ?? 'lost';

  const byGroup = new Map<string, AllocInfo[]>();
  for (const a of input.allocs) {
    const key = groupKey(a.job, a.group);
    const group = byGroup.get(key);
    if (group === undefined) byGroup.set(key, [a]);
    else group.push(a);
  }
  const jobs = [...input.jobs].sort((a, b) => priorityOf(b) - priorityOf(a) || (a.name < b.name ? -1 : 1));
  const work: GroupWork[] = [];
  const known = new Set<string>();
  for (const job of jobs) {
    const { deployment, isNew } = nextDeployment(job, input.deployments.find((d) => d.job === job.name), input.nowMs);
    const decisions: GroupDecision[] = [];
    for (const demand of job.groups) {
      const key = groupKey(job.name, demand.group);
      known.add(key);
      const allocs = byGroup.get(key) ?? [];
      const decision = decideGroup({
        demand: job.stopped ? undefined : demand,
        stopReason: 'job-stopped',
        allocs,
        readiness: readinessOf,
        nowMs: input.nowMs,
        deploymentStartedAtMs: deployment.startedAtMs,
        deploymentFailed: deployment.status === 'failed',
      });
      decisions.push(decision);
      for (const stop of decision.stops) plan.stop.push(stop); // not push(...): a scale-down stops thousands
      for (const at of decision.followUps) followUps.push(at);
      if (!job.stopped) work.push({ job, demand, decision, allocs });
    }
    if (!job.stopped) settleDeployment(job, deployment, isNew, decisions, plan);
  }
  for (const [key, allocs] of byGroup) {
    if (known.has(key)) continue;
    const jobExists = input.jobs.some((j) => j.name === allocs[0]!.job);
    for (const a of allocs) plan.stop.push({ alloc: a, reason: jobExists ? 'group-removed' : 'job-removed' });
  }

  place(input, opts, readinessOf, work, plan, newId);
  const due = followUps.filter((t) => t > input.nowMs);
  if (due.length > 0) plan.followUpAtMs = due.reduce((a, b) => Math.min(a, b));
  return plan;
}

function place(input: ReconcileInput, opts: ReconcileOptions, readinessOf: (n: string) => Readiness, work: GroupWork[], plan: Plan, newId: () => string): void {
  // Updates and migrations that stop a running allocation (stop-first) only do so once its replacement has
  // a node. A start-first want also names the allocation it replaces, but that one keeps running meanwhile.
  const swapping = new Set(plan.stop.filter((s) => s.reason === 'updated' || s.reason === 'migrated').map((s) => s.alloc.id));
  const isSwap = (want: Want): boolean => want.replaces !== undefined && swapping.has(want.replaces.id);
  const deferred = new Set<string>();
  for (const w of work) for (const want of w.decision.wants) if (isSwap(want)) deferred.add(want.replaces!.id);
  const stopped = new Set(plan.stop.filter((s) => !deferred.has(s.alloc.id)).map((s) => s.alloc.id));
  // Failed allocations hold no resources; everything else that stays does.
  const holding = input.allocs.filter((a) => !stopped.has(a.id) && a.status !== 'failed' && a.status !== 'stopped');
  const random = opts.random ?? Math.random;
  const cluster = new ClusterState(
    input.nodes,
    input.nodes.map((n) => readinessOf(n.name)),
    holding,
    { random, ...(opts.dynamicPorts === undefined ? {} : { dynamicPorts: opts.dynamicPorts }) },
  );
  const placer = new Placer(cluster, { random, ...(opts.algorithm === undefined ? {} : { algorithm: opts.algorithm }) });
  const failures = new Map<string, PlacementFailure>();
  const groupPlacers = new Map<GroupWork, ReturnType<Placer['group']>>();
  const placerOf = (w: GroupWork) => {
    let g = groupPlacers.get(w);
    if (g === undefined) {
      g = placer.group(w.demand, w.allocs.filter((a) => !stopped.has(a.id) && !deferred.has(a.id)));
      groupPlacers.set(w, g);
    }
    return g;
  };
  const unplaceable = new Set<GroupWork>();
  const tryPlace = (w: GroupWork, want: Want): boolean => {
    const key = groupKey(w.job.name, w.demand.group);
    if (want.pinTo === undefined && unplaceable.has(w)) {
      failures.get(key)!.missing++;
      return false;
    }
    const result = placerOf(w).place({ pinTo: want.pinTo, avoid: want.avoid });
    if ('message' in result) {
      const previous = failures.get(key);
      if (previous === undefined) failures.set(key, result);
      else previous.missing++;
      if (want.pinTo === undefined) unplaceable.add(w);
      return false;
    }
    plan.place.push({
      id: newId(),
      job: w.job.name,
      group: w.demand.group,
      index: want.index,
      node: result.node,
      version: w.job.version,
      fingerprint: w.demand.fingerprint,
      resources: { ...w.demand.resources },
      ports: result.ports,
      reason: want.reason,
      replaces: want.replaces?.id,
      reschedules: want.reschedules,
    });
    return true;
  };

  for (const w of work) for (const want of sortWants(w.decision.wants)) if (!isSwap(want)) tryPlace(w, want);
  const kept = new Set<string>();
  for (const w of work) {
    for (const want of sortWants(w.decision.wants)) {
      if (!isSwap(want)) continue;
      const old = want.replaces!;
      cluster.release(old);
      if (!tryPlace(w, want)) {
        const i = cluster.indexOf(old.node);
        if (i !== undefined) cluster.commit(i, old.resources.cpu, old.resources.memory, old.ports);
        kept.add(old.id);
      }
    }
  }
  if (kept.size > 0) plan.stop = plan.stop.filter((s: PlannedStop) => !kept.has(s.alloc.id));
  plan.failures.push(...failures.values());
}

function sortWants(wants: readonly Want[]): Want[] {
  // Pinned first: they cannot go elsewhere, unpinned ones can.
  return [...wants].sort((a, b) => Number(b.pinTo !== undefined) - Number(a.pinTo !== undefined) || a.index - b.index);
}

/** The deployment this reconciliation works under: the job's latest, or a new one when its version changed. */
function nextDeployment(job: JobState, latest: Deployment | undefined, nowMs: number): { deployment: Deployment; isNew: boolean } {
  if (latest !== undefined && latest.version === job.version) return { deployment: latest, isNew: false };
  const stableVersion = latest?.status === 'successful' ? latest.version : latest?.stableVersion;
  return { deployment: { job: job.name, version: job.version, status: 'running', startedAtMs: nowMs, stableVersion }, isNew: true };
}

/** Marks the deployment failed (reverting if asked) or successful, and records any change in the plan. */
function settleDeployment(job: JobState, deployment: Deployment, isNew: boolean, decisions: GroupDecision[], plan: Plan): void {
  let next = deployment;
  if (deployment.status === 'running') {
    const failure = decisions.find((d) => d.deploymentFailure !== undefined);
    if (failure !== undefined) {
      next = { ...deployment, status: 'failed', message: failure.deploymentFailure };
      const autoRevert = job.groups.some((g, i) => g.update.autoRevert && decisions[i]!.deploymentFailure !== undefined);
      if (autoRevert && deployment.stableVersion !== undefined && deployment.stableVersion !== job.version) {
        plan.reverts.push({ job: job.name, fromVersion: job.version, toVersion: deployment.stableVersion });
      }
    } else {
      const done = job.groups.every((g, i) => {
        const d = decisions[i]!;
        return d.outdated === 0 && d.wants.length === 0 && d.stops.length === 0 && d.healthyCurrent === g.count;
      });
      if (done) next = { ...deployment, status: 'successful', stableVersion: job.version, message: undefined };
    }
  }
  if (isNew || next !== deployment) plan.deployments.push(next);
}

function priorityOf(job: JobState): number {
  return job.groups[0]?.priority ?? 50;
}

function groupKey(job: string, group: string): string {
  return `${job}\u0000${group}`;
}
