/**
 * Builders for the scheduler core's inputs: nodes, group demands and
 * allocations with sensible defaults, so a test states only what it is about.
 */
import type { AllocInfo, GroupDemand, NodeInfo } from '../../../scheduler/model.js';
import { compileMatcher } from '../../../scheduler/placement/matchers.js';

export function node(name: string, over: Partial<NodeInfo> = {}): NodeInfo {
  return {
    name,
    address: `127.0.0.${Number(name.replace(/\D/g, '') || 0) + 2}`,
    capacity: { cpu: 4000, memory: 8192 },
    attributes: {},
    drivers: ['docker', 'process'],
    hostVolumes: [],
    heartbeat: 'passing',
    drain: false,
    ...over,
  };
}

/** n nodes named n0..n{n-1}. */
export function nodes(n: number, over: (i: number) => Partial<NodeInfo> = () => ({})): NodeInfo[] {
  return Array.from({ length: n }, (_, i) => node(`n${i}`, over(i)));
}

export function demand(over: Partial<GroupDemand> = {}): GroupDemand {
  return {
    job: 'web',
    group: 'web',
    version: 1,
    fingerprint: 'f1',
    count: 1,
    priority: 50,
    resources: { cpu: 500, memory: 512 },
    drivers: ['process'],
    staticPorts: [],
    dynamicPorts: 0,
    hostVolumes: [],
    constraints: [],
    affinities: [],
    spreads: [],
    update: { parallelism: 1, delayMs: 0, order: 'stop-first', minHealthyTimeMs: 0, healthDeadlineMs: 60_000, autoRevert: false },
    reschedule: { attempts: 0, intervalMs: 0, delayMs: 0, delayFunction: 'constant', maxDelayMs: 0, unlimited: true },
    ...over,
  };
}

/** `zone = a` style constraint from text. */
export function constraint(attribute: string, operator: Parameters<typeof compileMatcher>[1], value?: string) {
  return compileMatcher(attribute, operator, value);
}

let seq = 0;
export function alloc(nodeName: string, over: Partial<AllocInfo> = {}): AllocInfo {
  return {
    id: `a${seq++}`,
    job: 'web',
    group: 'web',
    index: 0,
    node: nodeName,
    version: 1,
    fingerprint: 'f1',
    resources: { cpu: 500, memory: 512 },
    ports: [],
    status: 'running',
    healthy: true,
    createdAtMs: 0,
    healthySinceMs: 0,
    reschedules: [],
    ...over,
  };
}
