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
  const used = trimExcess(d, live, held, out, input);
  fillMissing(d, live, held, out, used);
  rollOut(d, live, out, input);
  deploymentHealth(d, live, held, out, input);
  return out;
}

/**
 * A slot is an index 0..count-1. During a start-first update a slot briefly
 * holds two allocations (the old spec and the new); anything else sharing a
 * slot is a duplicate. Beyond the count, whole slots go, cheapest first:
 * wanted-only slots, failed, on down nodes, outdated, unhealthy, then the
 * highest index. Returns the occupied slot indexes when it stopped nothing
 * beyond duplicates (fillMissing reuses them).
 *
 * Ten thousand allocations go through here on every reconcile, so the common
 * case (one allocation per slot, no excess) builds no list per slot.
 */
function trimExcess(d: GroupDemand, live: AllocInfo[], held: AllocInfo[], out: GroupDecision, input: GroupInput): Set<number> | undefined {
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
  // Allocations of one slot and one spec (current or older): where the first of each was seen, and
  // lists only for those with more than one, handled in the order their first was seen.
  const firstOf = { current: new Map<number, number>(), old: new Map<number, number>() };
  const shared: Array<{ first: number; same: AllocInfo[] }> = [];
  const listOf = new Map<number, AllocInfo[]>();
  const all = live.length + held.length;
  const at = (i: number): AllocInfo => (i < live.length ? live[i]! : held[i - live.length]!);
  for (let i = 0; i < all; i++) {
    const a = at(i);
    const current = a.fingerprint === d.fingerprint;
    const seen = current ? firstOf.current : firstOf.old;
    const first = seen.get(a.index);
    if (first === undefined) {
      seen.set(a.index, i);
      continue;
    }
    const list = listOf.get(first);
    if (list !== undefined) list.push(a);
    else {
      const same = [at(first), a];
      listOf.set(first, same);
      shared.push({ first, same });
    }
  }
  shared.sort((x, y) => x.first - y.first);
  for (const { same } of shared) {
    same.sort((a, b) => cost(b) - cost(a) || a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
    for (const a of same.slice(1)) drop(a, 'duplicate');
  }
  compact();
  const used = slotIndexes(live, held, out.wants);
  let excess = used.size - d.count;
  if (excess <= 0) return used;
  const slots = slotsOf(live, held, out.wants);
  const slotCost = (allocs: AllocInfo[]): number => (allocs.length === 0 ? -1 : Math.max(...allocs.map(cost)));
  // Each slot's cost once, not once per comparison (a scale-down of thousands sorts thousands).
  const costOf = new Map<number, number>();
  for (const [index, allocs] of slots) costOf.set(index, slotCost(allocs));
  const order = [...slots].sort(([ia], [ib]) => costOf.get(ia)! - costOf.get(ib)! || ib - ia);
  const emptied = new Set<number>();
  for (const [index, allocs] of order) {
    if (excess-- <= 0) break;
    emptied.add(index);
    for (const a of allocs) drop(a, 'scale-down');
  }
  out.wants = out.wants.filter((w) => !emptied.has(w.index));
  compact();
  return undefined;
}

/** The indexes of the occupied slots (wanted-only ones included): slotsOf without the lists. */
function slotIndexes(live: readonly AllocInfo[], held: readonly AllocInfo[], wants: readonly Want[]): Set<number> {
  const used = new Set<number>();
  for (const a of live) used.add(a.index);
  for (const a of held) used.add(a.index);
  for (const w of wants) used.add(w.index);
  return used;
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

/** Wants a new allocation for every free slot below the count (lowest free index first); `known`: the occupied slots, when already counted. */
function fillMissing(d: GroupDemand, live: AllocInfo[], held: AllocInfo[], out: GroupDecision, known: Set<number> | undefined): void {
  const used = known ?? slotIndexes(live, held, out.wants);
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
  const check = (a: AllocInfo): void => {
    if (a.fingerprint !== d.fingerprint || a.createdAtMs < input.deploymentStartedAtMs) return;
    if (a.status === 'failed') {
      out.deploymentFailure ??= `allocation ${a.id} (${d.group}[${a.index}]) failed`;
      return;
    }
    if (isHealthy(a, d, nowMs) || input.readiness(a.node) === 'lost') return;
    const deadline = a.createdAtMs + d.update.healthDeadlineMs;
    if (nowMs >= deadline) out.deploymentFailure ??= `allocation ${a.id} (${d.group}[${a.index}]) not healthy within ${d.update.healthDeadlineMs} ms`;
    else out.followUps.push(deadline);
  };
  for (const a of live) check(a);
  for (const a of held) check(a);
  for (const s of out.stops) check(s.alloc);
}
