/**
 * A fake cluster for the reconciler (as Nomad tests its scheduler through a
 * Harness): holds nodes, jobs, allocations and deployments, runs reconcile(),
 * applies the plan as agents would (placed allocations start, stopped ones
 * vanish), and moves a fake clock. Tests assert on plans and on the state.
 */
import type { AllocInfo, Deployment, JobState, NodeInfo, Resources } from '../../../scheduler/model.js';
import { seededRandom } from '../../../base/clock.js';
import type { Plan } from '../../../scheduler/reconcile/plan.js';
import { changesNothing } from '../../../scheduler/reconcile/plan.js';
import { type ReconcileOptions, reconcile } from '../../../scheduler/reconcile/reconciler.js';

/** What happens to a placed allocation when the harness applies a plan. */
export type Outcome = 'healthy' | 'pending' | 'failed' | 'unhealthy';

export class Harness {
  nowMs = 1_000_000;
  nodes: NodeInfo[];
  jobs: JobState[] = [];
  allocs: AllocInfo[] = [];
  deployments: Deployment[] = [];
  plans: Plan[] = [];
  /** Every version of every job, for reverts. */
  readonly history = new Map<string, Map<number, JobState>>();
  /** Decides how each new allocation turns out (default healthy at once). */
  outcome: (a: AllocInfo) => Outcome = () => 'healthy';
  private ids = 0;
  private readonly opts: ReconcileOptions;

  constructor(nodes: NodeInfo[], opts: ReconcileOptions = {}) {
    this.nodes = nodes;
    this.opts = { random: seededRandom(42), newId: () => `a${++this.ids}`, lostAfterMs: 30_000, ...opts };
  }

  /** Registers (or replaces) a job version. */
  submit(job: JobState): void {
    this.jobs = [...this.jobs.filter((j) => j.name !== job.name), job];
    const versions = this.history.get(job.name) ?? new Map<number, JobState>();
    versions.set(job.version, job);
    this.history.set(job.name, versions);
  }

  /** One reconciliation, without applying it. */
  plan(): Plan {
    const plan = reconcile({ nowMs: this.nowMs, nodes: this.nodes, jobs: this.jobs, allocs: this.allocs, deployments: this.deployments }, this.opts);
    this.plans.push(plan);
    return plan;
  }

  /** Applies a plan as the agents and the API would. */
  apply(plan: Plan): void {
    const stopped = new Set(plan.stop.map((s) => s.alloc.id));
    this.allocs = this.allocs.filter((a) => !stopped.has(a.id));
    for (const p of plan.place) {
      const a: AllocInfo = {
        id: p.id,
        job: p.job,
        group: p.group,
        index: p.index,
        node: p.node,
        version: p.version,
        fingerprint: p.fingerprint,
        resources: p.resources,
        ports: p.ports,
        status: 'pending',
        createdAtMs: this.nowMs,
        reschedules: p.reschedules,
      };
      const outcome = this.outcome(a);
      if (outcome === 'healthy') Object.assign(a, { status: 'running', healthy: true, healthySinceMs: this.nowMs });
      if (outcome === 'unhealthy') Object.assign(a, { status: 'running', healthy: false });
      if (outcome === 'failed') Object.assign(a, { status: 'failed', failedAtMs: this.nowMs });
      this.allocs.push(a);
    }
    for (const d of plan.deployments) this.deployments = [...this.deployments.filter((x) => x.job !== d.job), d];
    for (const r of plan.reverts) {
      const stable = this.history.get(r.job)?.get(r.toVersion);
      const latest = Math.max(...(this.history.get(r.job)?.keys() ?? [0]));
      if (stable !== undefined) this.submit({ ...stable, version: latest + 1, groups: stable.groups.map((g) => ({ ...g, version: latest + 1 })) });
    }
  }

  /** plan() + apply(). */
  step(): Plan {
    const plan = this.plan();
    this.apply(plan);
    return plan;
  }

  /** Steps until a plan changes nothing (advancing the clock by `tickMs` each round); returns the rounds taken. */
  converge(maxRounds = 50, tickMs = 1_000): number {
    for (let round = 1; round <= maxRounds; round++) {
      if (changesNothing(this.step())) return round;
      this.advance(tickMs);
    }
    throw new Error(`no convergence after ${maxRounds} rounds`);
  }

  advance(ms: number): void {
    this.nowMs += ms;
  }

  /** The node's heartbeat goes critical now. */
  kill(name: string): void {
    this.nodes = this.nodes.map((n) => (n.name === name ? { ...n, heartbeat: 'critical', downSinceMs: this.nowMs } : n));
  }

  /** The node's heartbeat passes again. */
  revive(name: string): void {
    this.nodes = this.nodes.map((n) => (n.name === name ? { ...n, heartbeat: 'passing', downSinceMs: undefined } : n));
  }

  drain(name: string): void {
    this.nodes = this.nodes.map((n) => (n.name === name ? { ...n, drain: true } : n));
  }

  /** Marks matching allocations' state (an agent reporting). */
  set(filter: (a: AllocInfo) => boolean, change: Partial<AllocInfo>): void {
    this.allocs = this.allocs.map((a) => (filter(a) ? { ...a, ...change } : a));
  }

  /** Allocations of a job (and group). */
  of(job: string, group?: string): AllocInfo[] {
    return this.allocs.filter((a) => a.job === job && (group === undefined || a.group === group));
  }

  /** What a node's allocations use (failed ones hold nothing). */
  usage(node: string): Resources {
    const on = this.allocs.filter((a) => a.node === node && a.status !== 'failed' && a.status !== 'stopped');
    return { cpu: on.reduce((s, a) => s + a.resources.cpu, 0), memory: on.reduce((s, a) => s + a.resources.memory, 0) };
  }

  deployment(job: string): Deployment | undefined {
    return this.deployments.find((d) => d.job === job);
  }
}

/** A job of one group from a demand. */
export function job(name: string, groups: JobState['groups'], over: Partial<JobState> = {}): JobState {
  return { name, version: groups[0]?.version ?? 1, stopped: false, groups, ...over };
}
