/**
 * The reconciler's decision for one task group: which of its allocations stop
 * and which new ones it wants placed, from its desired count and spec, its
 * allocations' states and their nodes' readiness. Placement happens afterwards
 * for all groups together (reconciler.ts), so this file never picks nodes.
 *
 * In order: allocations on lost nodes are replaced; failed ones are rescheduled
 * by policy; extra ones are stopped (cheapest first); missing ones are wanted;
 * allocations on draining nodes migrate and outdated ones are updated, both in
 * batches of update.parallelism (stop-first or start-first).
 */
import type { AllocInfo, GroupDemand } from '../model.js';
import type { Readiness } from '../nodes.js';
import type { PlaceReason, PlannedStop, StopReason } from './plan.js';
import { rescheduleDecision } from './reschedule.js';

/** A placement the group needs. */
export interface Want {
  index: number;
  reason: PlaceReason;
  replaces?: AllocInfo | undefined;
  /** Sticky host volumes: only this node. */
  pinTo?: string | undefined;
  /** A rescheduled allocation's failed node: scored down. */
  avoid?: string | undefined;
  reschedules: number[];
}

/** One group's decision plus what its deployment needs to know. */
export interface GroupDecision {
  stops: PlannedStop[];
  wants: Want[];
  followUps: number[];
  /** Allocations of the current spec that are healthy (for min_healthy_time). */
  healthyCurrent: number;
  /** Allocations still running an older spec. */
  outdated: number;
  /** A current-spec allocation failed, or missed its health deadline. */
  deploymentFailure?: string | undefined;
}

export interface GroupInput {
  /** undefined when the group should not run at all (`stopReason` says why). */
  demand: GroupDemand | undefined;
  stopReason?: StopReason;
  allocs: readonly AllocInfo[];
  readiness: (node: string) => Readiness;
  nowMs: number;
  /** Since when the current deployment runs: allocations created before do not fail it. */
  deploymentStartedAtMs: number;
  /** A failed deployment stops replacing outdated allocations. */
  deploymentFailed: boolean;
}

/** True when an allocation counts as healthy: running, checks passing, for min_healthy_time. */
export function isHealthy(a: AllocInfo, d: GroupDemand, nowMs: number): boolean {
  return a.status === 'running' && a.healthy === true && nowMs - (a.healthySinceMs ?? nowMs) >= d.update.minHealthyTimeMs;
}

/** Decides for one group. Pure: the same input gives the same decision. */
export function decideGroup(input: GroupInput): GroupDecision {
  const { demand: d, nowMs } = input;
  const out: GroupDecision = { stops: [], wants: [], followUps: [], healthyCurrent: 0, outdated: 0 };
  if (d === undefined) {
    for (const a of input.allocs) out.stops.push({ alloc: a, reason: input.stopReason ?? 'job-removed' });
    return out;
  }
  const sticky = d.hostVolumes.length > 0;
  const live: AllocInfo[] = [];
  const held: AllocInfo[] = []; // failed, waiting for a reschedule or out of attempts: they keep their slot
  for (const a of input.allocs) {
    const state = input.readiness(a.node);
    if (state === 'lost') {
      out.stops.push({ alloc: a, reason: 'node-lost' });
      out.wants.push({ index: a.index, reason: 'replace-lost', replaces: a, pinTo: sticky ? a.node : undefined, reschedules: [...a.reschedules] });
    } else if (a.status === 'failed' || a.status === 'stopped') {
      const decision = rescheduleDecision(a, d.reschedule, nowMs);
      if (decision.kind === 'now') {
        out.stops.push({ alloc: a, reason: 'rescheduled' });
        out.wants.push({
          index: a.index,
          reason: 'reschedule',
          replaces: a,
          pinTo: sticky ? a.node : undefined,
          avoid: sticky ? undefined : a.node,
          reschedules: [...a.reschedules, nowMs],
        });
      } else {
        if (decision.kind === 'later') out.followUps.push(decision.atMs);
        held.push(a);
      }
    } else live.push(a);
  }
  trimExcess(d, live, held, out, input);
  fillMissing(d, live, held, out);
  rollOut(d, live, out, input);
  deploymentHealth(d, live, held, out, input);
  return out;
}

/**
 * A slot is an index 0..count-1. During a start-first update a slot briefly
 * holds two allocations (the old spec and the new); anything else sharing a
 * slot is a duplicate. Beyond the count, whole slots go, cheapest first:
 * wanted-only slots, failed, on down nodes, outdated, unhealthy, then the
 * highest index.
 */
function trimExcess(d: GroupDemand, live: AllocInfo[], held: AllocInfo[], out: GroupDecision, input: GroupInput): void {
  const cost = (a: AllocInfo): number => {
    if (a.status === 'failed' || a.status === 'stopped') return 0;
    if (input.readiness(a.node) === 'down') return 1;
    if (a.fingerprint !== d.fingerprint) return a.healthy === true ? 3 : 2;
    return a.healthy === true ? 5 : 4;
  };
  // Dropped allocations leave `live` and `held` in one pass afterwards (a scale-down drops thousands).
  const dropped = new Set<AllocInfo>();
  const drop = (a: AllocInfo, reason: StopReason): void => {
    out.stops.push({ alloc: a, reason });
    dropped.add(a);
  };
  const compact = (): void => {
    for (const list of [live, held]) {
      let kept = 0;
      for (const a of list) if (!dropped.has(a)) list[kept++] = a;
      list.length = kept;
    }
  };
  const byKey = new Map<string, AllocInfo[]>();
  for (const a of [...live, ...held]) {
    const key = `${a.index}/${a.fingerprint === d.fingerprint ? 'current' : 'old'}`;
    const same = byKey.get(key);
    if (same === undefined) byKey.set(key, [a]);
    else same.push(a);
  }
  for (const same of byKey.values()) {
    if (same.length < 2) continue;
    same.sort((a, b) => cost(b) - cost(a) || a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
    for (const a of same.slice(1)) drop(a, 'duplicate');
  }
  compact();
  const slots = slotsOf(live, held, out.wants);
  let excess = slots.size - d.count;
  if (excess <= 0) return;
  const slotCost = (allocs: AllocInfo[]): number => (allocs.length === 0 ? -1 : Math.max(...allocs.map(cost)));
  const order = [...slots].sort(([ia, a], [ib, b]) => slotCost(a) - slotCost(b) || ib - ia);
  const emptied = new Set<number>();
  for (const [index, allocs] of order) {
    if (excess-- <= 0) break;
    emptied.add(index);
    for (const a of allocs) drop(a, 'scale-down');
  }
  out.wants = out.wants.filter((w) => !emptied.has(w.index));
  compact();
}

/** Occupied slots: index -> the allocations in it (wanted-only slots map to []). */
function slotsOf(live: readonly AllocInfo[], held: readonly AllocInfo[], wants: readonly Want[]): Map<number, AllocInfo[]> {
  const slots = new Map<number, AllocInfo[]>();
  for (const a of [...live, ...held]) {
    const slot = slots.get(a.index);
    if (slot === undefined) slots.set(a.index, [a]);
    else slot.push(a);
  }
  for (const w of wants) if (!slots.has(w.index)) slots.set(w.index, []);
  return slots;
}

/** Wants a new allocation for every free slot below the count (lowest free index first). */
function fillMissing(d: GroupDemand, live: AllocInfo[], held: AllocInfo[], out: GroupDecision): void {
  const used = slotsOf(live, held, out.wants);
  let missing = d.count - used.size;
  for (let index = 0; missing > 0; index++) {
    if (used.has(index)) continue;
    out.wants.push({ index, reason: 'new', reschedules: [] });
    missing--;
  }
}

/** Migrations off draining nodes and rolling updates, within update.parallelism. */
function rollOut(d: GroupDemand, live: AllocInfo[], out: GroupDecision, input: GroupInput): void {
  const { nowMs } = input;
  const sticky = d.hostVolumes.length > 0;
  const current = live.filter((a) => a.fingerprint === d.fingerprint);
  const outdated = live.filter((a) => a.fingerprint !== d.fingerprint);
  const healthy = current.filter((a) => isHealthy(a, d, nowMs));
  const isHealthyNow = new Set(healthy);
  out.healthyCurrent = healthy.length;
  out.outdated = outdated.length;
  for (const a of current) {
    if (a.status === 'running' && a.healthy === true && !isHealthyNow.has(a)) out.followUps.push((a.healthySinceMs ?? nowMs) + d.update.minHealthyTimeMs);
  }
  // New allocations not yet healthy are in flight; lost/failed replacements do not count against the batch.
  let budget = d.update.parallelism - (current.length - healthy.length) - out.wants.filter((w) => w.reason === 'migrate' || w.reason === 'update').length;

  // Draining nodes: sticky groups cannot take their data along, so they stay.
  for (const a of live) {
    if (budget <= 0) break;
    if (sticky || input.readiness(a.node) !== 'draining') continue;
    out.stops.push({ alloc: a, reason: 'migrated' });
    out.wants.push({ index: a.index, reason: 'migrate', replaces: a, reschedules: [...a.reschedules] });
    budget--;
  }
  const migrated = new Set(out.stops.filter((s) => s.reason === 'migrated').map((s) => s.alloc));
  const toUpdate = outdated.filter((a) => !migrated.has(a)).sort((a, b) => Number(a.healthy === true) - Number(b.healthy === true) || a.index - b.index);
  if (toUpdate.length === 0 || input.deploymentFailed) return;
  if (d.update.delayMs > 0) {
    const lastHealthy = Math.max(...healthy.map((a) => (a.healthySinceMs ?? 0) + d.update.minHealthyTimeMs), Number.NEGATIVE_INFINITY);
    const nextBatch = lastHealthy + d.update.delayMs;
    if (healthy.length > 0 && outdated.length > 0 && current.length > 0 && nowMs < nextBatch && budget > 0) {
      out.followUps.push(nextBatch);
      return;
    }
  }
  if (d.update.order === 'stop-first' || sticky) {
    for (const a of toUpdate.slice(0, Math.max(0, budget))) {
      out.stops.push({ alloc: a, reason: 'updated' });
      out.wants.push({ index: a.index, reason: 'update', replaces: a, pinTo: sticky ? a.node : undefined, reschedules: [] });
    }
    return;
  }
  // start-first, slot by slot: a new allocation starts beside the old one (up to `parallelism` at a
  // time), and the old one stops once the new one in its slot is healthy.
  const covered = new Set(healthy.map((a) => a.index));
  const started = new Set(current.map((a) => a.index).concat(out.wants.map((w) => w.index)));
  for (const a of toUpdate) {
    if (covered.has(a.index)) out.stops.push({ alloc: a, reason: 'updated' });
    else if (!started.has(a.index) && budget > 0) {
      out.wants.push({ index: a.index, reason: 'update', replaces: a, reschedules: [] });
      started.add(a.index);
      budget--;
    }
  }
}

/** A current-spec allocation of this deployment that failed or missed its health deadline fails the deployment. */
function deploymentHealth(d: GroupDemand, live: AllocInfo[], held: AllocInfo[], out: GroupDecision, input: GroupInput): void {
  const { nowMs } = input;
  for (const a of [...live, ...held, ...out.stops.map((s) => s.alloc)]) {
    if (a.fingerprint !== d.fingerprint || a.createdAtMs < input.deploymentStartedAtMs) continue;
    if (a.status === 'failed') {
      out.deploymentFailure ??= `allocation ${a.id} (${d.group}[${a.index}]) failed`;
      continue;
    }
    if (isHealthy(a, d, nowMs) || input.readiness(a.node) === 'lost') continue;
    const deadline = a.createdAtMs + d.update.healthDeadlineMs;
    if (nowMs >= deadline) out.deploymentFailure ??= `allocation ${a.id} (${d.group}[${a.index}]) not healthy within ${d.update.healthDeadlineMs} ms`;
    else out.followUps.push(deadline);
  }
}
