/**
 * What the reconciler decides: allocations to start (with their node and
 * ports), allocations to stop, groups short of placements with the counted
 * reasons, deployment changes, reverts, and when to look again. The edge
 * writes it to KV (fenced by the leader lock); tests read it directly.
 */
import type { AllocInfo, AllocPlacement, Deployment } from '../model.js';
import type { PlacementFailure } from '../placement/reasons.js';

/** Why an allocation is started. */
export type PlaceReason = 'new' | 'replace-lost' | 'reschedule' | 'migrate' | 'update';

/** Why an allocation is stopped. */
export type StopReason = 'job-stopped' | 'job-removed' | 'group-removed' | 'node-lost' | 'rescheduled' | 'migrated' | 'scale-down' | 'updated' | 'duplicate';

/** A new allocation, placed. */
export interface PlannedAlloc extends AllocPlacement {
  ports: number[];
  reason: PlaceReason;
  /** The allocation it takes over from (lost, failed, migrated or outdated). */
  replaces?: string | undefined;
  /** The reschedule tracker carried over (Nomad's RescheduleTracker). */
  reschedules: number[];
}

/** An allocation to stop (its KV document is deleted; the agent stops it). */
export interface PlannedStop {
  alloc: AllocInfo;
  reason: StopReason;
}

/** A job whose failed deployment goes back to its last successful version. */
export interface Revert {
  job: string;
  fromVersion: number;
  toVersion: number;
}

/** The whole decision of one reconciliation. */
export interface Plan {
  place: PlannedAlloc[];
  stop: PlannedStop[];
  /** One entry per group short of placements. */
  failures: PlacementFailure[];
  /** Deployments created or changed. */
  deployments: Deployment[];
  reverts: Revert[];
  /** The earliest moment something becomes due (a node turns lost, a delayed reschedule, ...). */
  followUpAtMs?: number | undefined;
}

/** A plan with nothing in it. */
export function emptyPlan(): Plan {
  return { place: [], stop: [], failures: [], deployments: [], reverts: [] };
}

/** True when the plan changes no allocation (deployment bookkeeping aside). */
export function changesNothing(plan: Plan): boolean {
  return plan.place.length === 0 && plan.stop.length === 0 && plan.reverts.length === 0;
}
