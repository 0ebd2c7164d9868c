/**
 * A reconciler plan -> the KV operations that carry it out, and the events
 * that tell `weft status` what happened. Pure: the loop (scheduler-loop.ts)
 * applies the operations in one fenced transaction per 63.
 *
 *   place  -> set weft/allocs/<node>/<instance>-<task> (one per task)
 *   stop   -> delete every task document of the instance (the agent drains and stops it)
 *             and its status record in the same transaction (the agent of a lost host never will)
 *   deployments, failures -> weft/job-status/<job> (only when it changed)
 *
 * The allocation documents are signed afterwards, in slices (signAllocationOps):
 * hosts run only what verifies (docs/security.md, "Signed desired state").
 */
import { ALLOCS_PREFIX, allocKey, allocStatusKey } from '../../base/contracts/alloc.js';
import type { JobEvent } from '../../base/contracts/scheduler-api.js';
import { allocationDocs, type JobSpec, type ObservedTask, type PlacementFailure, type Plan } from '../../scheduler/index.js';
import { pushEvents, type StatusRecord, statusKey } from './scheduler-store.js';
import type { TxnOp } from '../../discovery/index.js';
import type { SignedEnvelope } from '../../base/signing.js';

/** What one plan turns into. */
export interface PlanOps {
  ops: TxnOp[];
  /** Status records after the plan, for jobs whose record changed. */
  statuses: Map<string, StatusRecord>;
  placed: number;
  stopped: number;
}

/** Builds the operations and the new status records. `statuses` are the current records (not modified). */
export function planOps(plan: Plan, ctx: { specs: ReadonlyMap<string, JobSpec>; tasks: readonly ObservedTask[]; statuses: ReadonlyMap<string, StatusRecord>; nowMs: number }): PlanOps {
  const ops: TxnOp[] = [];
  const events = new Map<string, JobEvent[]>();
  const at = new Date(ctx.nowMs).toISOString();
  const event = (job: string, e: Omit<JobEvent, 'at'>): void => {
    const list = events.get(job);
    if (list === undefined) events.set(job, [{ at, ...e }]);
    else list.push({ at, ...e });
  };
  let placed = 0;
  for (const p of plan.place) {
    const spec = ctx.specs.get(p.job);
    if (spec === undefined) continue;
    for (const doc of allocationDocs(p, spec, ctx.nowMs)) ops.push({ verb: 'set', key: allocKey(p.node, doc.id), value: doc });
    placed++;
    event(p.job, {
      type: 'placed',
      message: `${p.group}[${p.index}] placed on ${p.node} (${p.reason}${p.replaces === undefined ? '' : `, replaces ${p.replaces}`})`,
      alloc: p.id,
      node: p.node,
      version: p.version,
    });
  }
  let stopped = 0;
  // The task documents of each instance, found once (a scale-down stops thousands).
  const byInstance = new Map<string, ObservedTask[]>();
  if (plan.stop.length > 0) {
    for (const t of ctx.tasks) {
      const id = `${t.host}\u0000${t.doc.placement?.instance ?? t.doc.id}`;
      const list = byInstance.get(id);
      if (list === undefined) byInstance.set(id, [t]);
      else list.push(t);
    }
  }
  for (const s of plan.stop) {
    const docs = byInstance.get(`${s.alloc.node}\u0000${s.alloc.id}`) ?? [];
    for (const t of docs) ops.push({ verb: 'delete', key: allocKey(t.host, t.doc.id) }, { verb: 'delete', key: allocStatusKey(t.host, t.doc.id) });
    stopped++;
    event(s.alloc.job, { type: 'stopped-alloc', message: `${s.alloc.group}[${s.alloc.index}] on ${s.alloc.node} stopped (${s.reason})`, alloc: s.alloc.id, node: s.alloc.node });
  }

  const statuses = new Map<string, StatusRecord>();
  const touched = new Set<string>([...events.keys(), ...plan.deployments.map((d) => d.job), ...ctx.specs.keys()]);
  for (const job of touched) {
    const before = ctx.statuses.get(job) ?? { failures: [], events: [], stableVersions: [] };
    let next: StatusRecord = { ...before };
    const deployment = plan.deployments.find((d) => d.job === job);
    if (deployment !== undefined) {
      next.deployment = deployment;
      if (deployment.status === 'successful' && !next.stableVersions.includes(deployment.version)) next.stableVersions = [...next.stableVersions, deployment.version].slice(-50);
      if (before.deployment?.status !== deployment.status || before.deployment?.version !== deployment.version) {
        event(job, { type: 'deployment', message: `version ${deployment.version}: ${deployment.status}${deployment.message === undefined ? '' : ` (${deployment.message})`}`, version: deployment.version });
      }
    }
    if (ctx.specs.has(job)) {
      const failures = plan.failures.filter((f) => f.job === job);
      if (!sameFailures(before.failures, failures)) {
        next.failures = failures;
        for (const f of failures) event(job, { type: 'placement-failed', message: `${f.group}: ${f.missing} not placed: ${f.message}` });
      }
    }
    next = pushEvents(next, events.get(job) ?? []);
    if (JSON.stringify(next) !== JSON.stringify(before)) {
      statuses.set(job, next);
      ops.push({ verb: 'set', key: statusKey(job), value: next });
    }
  }
  return { ops, statuses, placed, stopped };
}

function sameFailures(a: readonly PlacementFailure[], b: readonly PlacementFailure[]): boolean {
  const key = (fs: readonly PlacementFailure[]): string => JSON.stringify(fs.map((f) => [f.group, f.missing, f.message]));
  return key(a) === key(b);
}

/** Documents signed between two yields to I/O (about 30 us each: 10,000 at once would hold the API 0.3 s). */
const SIGN_SLICE = 256;

/**
 * Replaces the value of every allocation document `set` among `ops` by its
 * signed envelope (`sign(key, the document's JSON text)`), in place, letting
 * I/O run between slices.
 */
export async function signAllocationOps(ops: TxnOp[], sign: (key: string, doc: string) => SignedEnvelope): Promise<void> {
  let signed = 0;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.verb !== 'set' || !op.key.startsWith(ALLOCS_PREFIX)) continue;
    ops[i] = { verb: 'set', key: op.key, value: sign(op.key, JSON.stringify(op.value)) };
    if (++signed % SIGN_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
  }
}
