/**
 * What the scheduler observes -> the core's view. Consul's weft-agent entries
 * become NodeInfo (heartbeat from the TTL check, `downSinceMs` carried over
 * between observations so `lost_after` counts from the first failure); the
 * allocation documents of a group instance, their agents' statuses and their
 * Consul health become one AllocInfo.
 *
 * Meta keys are the weft-agent contract's (base/contracts/meta.ts).
 */
import type { Allocation, AllocStatus } from '../../base/contracts/alloc.js';
import type { AllocInfo, AllocStatus as CoreStatus, Driver, Heartbeat, NodeInfo } from '../model.js';
import { ATTR_META_PREFIX, NODE_META } from '../../base/contracts/meta.js';

/** The Consul health entry of one weft-agent (the fields used). */
export interface AgentEntry {
  Node: { Node: string; Address: string };
  Service: { ID: string; Address?: string; Meta?: Record<string, string> };
  Checks: Array<{ Status: string; ServiceID?: string }>;
}

const DRIVERS: readonly Driver[] = ['docker', 'process'];

/**
 * Nodes from the current weft-agent entries. A node seen before but absent now
 * is kept as `missing` (its allocations wait out lost_after like a critical one).
 */
export function observeNodes(entries: readonly AgentEntry[], previous: readonly NodeInfo[], drained: ReadonlySet<string>, nowMs: number): NodeInfo[] {
  const before = new Map(previous.map((n) => [n.name, n]));
  const seen = new Set<string>();
  const out: NodeInfo[] = [];
  for (const e of entries) {
    const meta = e.Service.Meta ?? {};
    const name = meta[NODE_META.host] ?? e.Node.Node;
    if (seen.has(name)) continue;
    seen.add(name);
    const heartbeat = worst(e.Checks.map((c) => c.Status));
    const old = before.get(name);
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(meta)) if (k.startsWith(ATTR_META_PREFIX)) attributes[k.slice(ATTR_META_PREFIX.length)] = v;
    out.push({
      name,
      address: e.Service.Address || e.Node.Address,
      capacity: { cpu: positive(meta[NODE_META.cpu]), memory: positive(meta[NODE_META.memory]) },
      attributes,
      drivers: list(meta[NODE_META.driver]).filter((d): d is Driver => (DRIVERS as readonly string[]).includes(d)),
      hostVolumes: list(meta[NODE_META.volumes]),
      heartbeat,
      downSinceMs: heartbeat === 'passing' || heartbeat === 'warning' ? undefined : (old?.downSinceMs ?? nowMs),
      drain: drained.has(name),
    });
  }
  for (const old of previous) {
    if (seen.has(old.name)) continue;
    out.push({ ...old, heartbeat: 'missing', downSinceMs: old.downSinceMs ?? nowMs, drain: drained.has(old.name) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** One task document with what its agent and Consul say about it. */
export interface ObservedTask {
  host: string;
  doc: Allocation;
  status?: AllocStatus | undefined;
  /** Consul checks of its service instance: undefined when the task registers none. */
  checksPassing?: boolean | undefined;
}

/**
 * Group instances from task documents. `healthySince` (instance -> ms) is the
 * memory of when each instance was first seen healthy; the returned map is the
 * updated memory to pass next time.
 */
export function observeAllocs(tasks: readonly ObservedTask[], healthySince: ReadonlyMap<string, number>, nowMs: number): { allocs: AllocInfo[]; healthySince: Map<string, number> } {
  const allocs: AllocInfo[] = [];
  const memory = new Map<string, number>();
  for (const [id, group] of byInstance(tasks)) {
    const alloc = observeInstance(id, group, healthySince, nowMs);
    if (alloc.healthySinceMs !== undefined) memory.set(id, alloc.healthySinceMs);
    allocs.push(alloc);
  }
  return { allocs, healthySince: memory };
}

/** Task documents grouped by group instance, in the order of each instance's first task. */
function byInstance(tasks: readonly ObservedTask[]): Map<string, ObservedTask[]> {
  const out = new Map<string, ObservedTask[]>();
  for (const t of tasks) {
    const instance = t.doc.placement?.instance ?? t.doc.id; // a hand-written document is its own instance
    const group = out.get(instance);
    if (group === undefined) out.set(instance, [t]);
    else group.push(t);
  }
  return out;
}

/** One group instance's AllocInfo; healthy since `healthySince` remembers, or since now. */
function observeInstance(id: string, group: readonly ObservedTask[], healthySince: ReadonlyMap<string, number>, nowMs: number): AllocInfo {
  if (group.length === 1) return observeOneTask(id, group[0]!, healthySince, nowMs);
  const first = group[0]!;
  const p = first.doc.placement;
  const states = group.map((t) => t.status?.state ?? 'pending');
  const status: CoreStatus = states.includes('failed') ? 'failed' : states.every((s) => s === 'running') ? 'running' : states.includes('stopped') ? 'stopped' : 'pending';
  const healthy = status === 'running' && group.every((t) => t.checksPassing !== false);
  const failedAt = group.map((t) => (t.status?.state === 'failed' ? Date.parse(t.status.updatedAt) : Number.NaN)).filter((n) => !Number.isNaN(n));
  return {
    id,
    job: first.doc.job,
    group: first.doc.group,
    index: p?.index ?? 0,
    node: first.host,
    version: p?.version ?? 0,
    fingerprint: p?.fingerprint ?? '',
    resources: {
      cpu: group.reduce((s, t) => s + t.doc.resources.cpu, 0),
      memory: group.reduce((s, t) => s + t.doc.resources.memory, 0),
    },
    ports: p?.ports ?? group.flatMap((t) => (t.doc.port === undefined ? [] : [t.doc.port])),
    status,
    healthy: status === 'running' ? healthy : undefined,
    createdAtMs: p?.createdAt ?? nowMs,
    healthySinceMs: healthy ? (healthySince.get(id) ?? nowMs) : undefined,
    failedAtMs: failedAt.length > 0 ? Math.min(...failedAt) : undefined,
    reschedules: p?.reschedules ?? [],
  };
}

/**
 * observeAllocs over a series of observations. An instance whose task entries
 * are the very objects of the previous call (an observer that keeps the entry
 * of an unchanged task, as the scheduler's does) keeps its AllocInfo, with
 * the two fields that depend on the moment (createdAtMs without a placement,
 * healthySinceMs) set as observeAllocs would set them now; the others are
 * translated again. A call then costs a lookup per task plus a translation
 * per changed instance, for the same result as observeAllocs.
 */
export class AllocTranslator {
  /** Per instance: its tasks and AllocInfo as of the last call, and a buffer for this call's tasks. */
  private readonly seen = new Map<string, { tasks: ObservedTask[]; next: ObservedTask[]; alloc: AllocInfo | undefined; call: number }>();
  private calls = 0;

  /** observeAllocs(tasks, healthySince, nowMs), reusing what did not change since the last call. */
  translate(tasks: readonly ObservedTask[], healthySince: ReadonlyMap<string, number>, nowMs: number): { allocs: AllocInfo[]; healthySince: Map<string, number> } {
    const call = ++this.calls;
    // Grouped as observeAllocs groups them, into buffers kept from call to call (no allocation per instance).
    const ids: string[] = [];
    const entries: Array<{ tasks: ObservedTask[]; next: ObservedTask[]; alloc: AllocInfo | undefined; call: number }> = [];
    for (const t of tasks) {
      const id = t.doc.placement?.instance ?? t.doc.id;
      let e = this.seen.get(id);
      if (e === undefined) {
        e = { tasks: [], next: [], alloc: undefined, call: 0 };
        this.seen.set(id, e);
      }
      if (e.call !== call) {
        e.call = call;
        e.next.length = 0;
        ids.push(id);
        entries.push(e);
      }
      e.next.push(t);
    }
    const allocs: AllocInfo[] = new Array(entries.length);
    const memory = new Map<string, number>();
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const id = ids[i]!;
      let alloc = e.alloc;
      if (alloc !== undefined && sameTasks(e.tasks, e.next)) {
        const createdAtMs = e.next[0]!.doc.placement?.createdAt ?? nowMs;
        const healthySinceMs = alloc.healthy === true ? (healthySince.get(id) ?? nowMs) : undefined;
        if (alloc.createdAtMs !== createdAtMs || alloc.healthySinceMs !== healthySinceMs) alloc = { ...alloc, createdAtMs, healthySinceMs };
      } else {
        alloc = observeInstance(id, e.next, healthySince, nowMs);
        const kept = e.tasks; // the tasks just translated stay; the old array is the next call's buffer
        e.tasks = e.next;
        e.next = kept;
      }
      e.alloc = alloc;
      if (alloc.healthySinceMs !== undefined) memory.set(id, alloc.healthySinceMs);
      allocs[i] = alloc;
    }
    if (this.seen.size > entries.length) for (const [id, e] of this.seen) if (e.call !== call) this.seen.delete(id);
    return { allocs, healthySince: memory };
  }
}

function sameTasks(a: readonly ObservedTask[], b: readonly ObservedTask[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** observeInstance for the common instance of one task, without the lists (the same result). */
function observeOneTask(id: string, t: ObservedTask, healthySince: ReadonlyMap<string, number>, nowMs: number): AllocInfo {
  const p = t.doc.placement;
  const state = t.status?.state ?? 'pending';
  const status: CoreStatus = state === 'failed' ? 'failed' : state === 'running' ? 'running' : state === 'stopped' ? 'stopped' : 'pending';
  const healthy = status === 'running' && t.checksPassing !== false;
  const failedAt = state === 'failed' ? Date.parse(t.status!.updatedAt) : Number.NaN;
  return {
    id,
    job: t.doc.job,
    group: t.doc.group,
    index: p?.index ?? 0,
    node: t.host,
    version: p?.version ?? 0,
    fingerprint: p?.fingerprint ?? '',
    resources: { cpu: t.doc.resources.cpu, memory: t.doc.resources.memory },
    ports: p?.ports ?? (t.doc.port === undefined ? [] : [t.doc.port]),
    status,
    healthy: status === 'running' ? healthy : undefined,
    createdAtMs: p?.createdAt ?? nowMs,
    healthySinceMs: healthy ? (healthySince.get(id) ?? nowMs) : undefined,
    failedAtMs: Number.isNaN(failedAt) ? undefined : failedAt,
    reschedules: p?.reschedules ?? [],
  };
}

function worst(statuses: readonly string[]): Heartbeat {
  if (statuses.includes('critical')) return 'critical';
  if (statuses.includes('warning')) return 'warning';
  return statuses.length === 0 ? 'critical' : 'passing';
}

function positive(text: string | undefined): number {
  const n = Number(text);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function list(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
