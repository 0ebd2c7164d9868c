/**
 * What the API's route handlers share: the Consul client, the observer's
 * view, the secret store, the operator token and who leads. Plus the views
 * both `status` and `plan` build from a snapshot.
 */
import { AllocTranslator, type NodeInfo, type observeAllocs, observeNodes, type SecretStore } from '../../scheduler/index.js';
import type { DiscoveryClient } from '../../discovery/index.js';
import type { Config } from '../config/load.js';
import type { Logger } from '../../base/log.js';
import type { GroupAutoscaleState } from './scheduler-autoscaler.js';
import type { ClusterObserver, ClusterSnapshot } from './scheduler-observer.js';

export interface SchedulerContext {
  client: DiscoveryClient;
  observer: ClusterObserver;
  config: Readonly<Config>;
  logger: Logger;
  secrets: SecretStore;
  token: string;
  isLeader(): boolean;
  leaderAddress(): string | undefined;
  /** The leader loop's nodes (with lost_after memory) when this instance leads. */
  leaderNodes(): readonly NodeInfo[] | undefined;
  /** The leader's autoscaler view of a group once it has decided on it; undefined on a standby. */
  autoscaleState?(job: string, group: string): GroupAutoscaleState | undefined;
}

/** Nodes as the leader sees them, or as a fresh observation on a standby. */
export function currentNodes(ctx: SchedulerContext, snap: ClusterSnapshot, nowMs: number): NodeInfo[] {
  const known = ctx.leaderNodes();
  return observeNodes(snap.agents, known ?? [], snap.drained, nowMs);
}

/** Allocations per observed task list: every API call between two changes shares one translation. */
const allocsOf = new WeakMap<ClusterSnapshot['tasks'], ReturnType<typeof observeAllocs>['allocs']>();

/** The leader loop's translation of a snapshot's tasks (with its healthy-since memory): the API reuses it. */
export function rememberAllocs(tasks: ClusterSnapshot['tasks'], allocs: ReturnType<typeof observeAllocs>['allocs']): void {
  allocsOf.set(tasks, allocs);
}

/**
 * The API's own translation when the loop has none (a standby, or a change the
 * loop has not reached yet). One per process: two schedulers in one process
 * (tests) only lose the reuse, never the exact result.
 */
const translator = new AllocTranslator();

/**
 * The core's allocations of a snapshot (healthy-since unknown: counted from
 * the first call after a change). Computed once per observed change: the
 * snapshot's task list is shared until the observer sees something new, and
 * only the instances whose tasks changed are translated again.
 */
export function currentAllocs(snap: ClusterSnapshot, nowMs: number): ReturnType<typeof observeAllocs>['allocs'] {
  let allocs = allocsOf.get(snap.tasks);
  if (allocs === undefined) {
    allocs = translator.translate(snap.tasks, new Map(), nowMs).allocs;
    allocsOf.set(snap.tasks, allocs);
  }
  return allocs;
}
