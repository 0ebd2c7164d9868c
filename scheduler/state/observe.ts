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
  const byInstance = new Map<string, ObservedTask[]>();
  for (const t of tasks) {
    const instance = t.doc.placement?.instance ?? t.doc.id; // a hand-written document is its own instance
    const group = byInstance.get(instance);
    if (group === undefined) byInstance.set(instance, [t]);
    else group.push(t);
  }
  const allocs: AllocInfo[] = [];
  const memory = new Map<string, number>();
  for (const [id, group] of byInstance) {
    const first = group[0]!;
    const p = first.doc.placement;
    const states = group.map((t) => t.status?.state ?? 'pending');
    const status: CoreStatus = states.includes('failed') ? 'failed' : states.every((s) => s === 'running') ? 'running' : states.includes('stopped') ? 'stopped' : 'pending';
    const healthy = status === 'running' && group.every((t) => t.checksPassing !== false);
    if (healthy) memory.set(id, healthySince.get(id) ?? nowMs);
    const failedAt = group.map((t) => (t.status?.state === 'failed' ? Date.parse(t.status.updatedAt) : Number.NaN)).filter((n) => !Number.isNaN(n));
    allocs.push({
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
      healthySinceMs: memory.get(id),
      failedAtMs: failedAt.length > 0 ? Math.min(...failedAt) : undefined,
      reschedules: p?.reschedules ?? [],
    });
  }
  return { allocs, healthySince: memory };
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
