/**
 * The cluster as placement sees it during one reconciliation: each node's free
 * cpu, memory and ports, kept in flat typed arrays indexed by node so the hot
 * path allocates nothing. Two FitIndexes split the ready nodes into those that
 * already run something and those that are empty; bin-packing looks at the
 * first kind first, so a new node is opened only when no busy node fits.
 *
 * Node positions are a random permutation (the injected random source), so
 * "the next fits after a random start" is a random sample, as Nomad shuffles
 * its node list per evaluation.
 */
import { type Random, systemRandom } from '../../base/clock.js';
import type { AllocInfo, Driver, NodeInfo } from '../model.js';
import type { Readiness } from '../nodes.js';
import { FitIndex } from './fit-index.js';

/** base's random source (systemRandom by default; seededRandom in tests, the benchmark and `weft plan`), re-exported for the reconciler. */
export type { Random };

/** Nomad's dynamic port range. */
export const DEFAULT_DYNAMIC_PORTS = { min: 20000, max: 32000 } as const;

const DRIVER_BITS: Record<Driver, number> = { docker: 1, process: 2 };

/** Bit mask of drivers, for one-instruction driver checks. */
export function driverMask(drivers: readonly Driver[]): number {
  let m = 0;
  for (const d of drivers) m |= DRIVER_BITS[d];
  return m;
}

export interface ClusterOptions {
  random?: Random;
  dynamicPorts?: { min: number; max: number };
}

/** Free capacity and ports per node; `commit` and `release` keep it current as a plan is built. */
export class ClusterState {
  readonly nodes: readonly NodeInfo[];
  readonly readiness: readonly Readiness[];
  readonly capCpu: Float64Array;
  readonly capMem: Float64Array;
  readonly freeCpu: Float64Array;
  readonly freeMem: Float64Array;
  /** Allocations per node (placed ones included). */
  readonly allocCount: Int32Array;
  readonly drivers: Uint8Array;
  /** Node index at each position of the random order, and back. */
  readonly nodeAt: Int32Array;
  readonly posOf: Int32Array;
  /** Ready nodes running something / ready nodes running nothing. */
  readonly busy: FitIndex;
  readonly empty: FitIndex;
  readonly dynamicPorts: { min: number; max: number };
  private readonly byName = new Map<string, number>();
  private readonly ports: Array<Set<number> | undefined>;
  private readonly dynamicUsed: Int32Array;

  /**
   * `readiness[i]` is node i's state; only `ready` nodes take placements.
   * `allocs` are the allocations that stay (the plan's stops already removed).
   */
  constructor(nodes: readonly NodeInfo[], readiness: readonly Readiness[], allocs: Iterable<AllocInfo>, opts: ClusterOptions = {}) {
    const n = nodes.length;
    const random = opts.random ?? systemRandom;
    this.nodes = nodes;
    this.readiness = readiness;
    this.dynamicPorts = opts.dynamicPorts ?? DEFAULT_DYNAMIC_PORTS;
    this.capCpu = new Float64Array(n);
    this.capMem = new Float64Array(n);
    this.freeCpu = new Float64Array(n);
    this.freeMem = new Float64Array(n);
    this.allocCount = new Int32Array(n);
    this.drivers = new Uint8Array(n);
    this.dynamicUsed = new Int32Array(n);
    this.ports = new Array(n).fill(undefined);
    this.nodeAt = new Int32Array(n);
    this.posOf = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const node = nodes[i]!;
      this.byName.set(node.name, i);
      this.capCpu[i] = this.freeCpu[i] = node.capacity.cpu;
      this.capMem[i] = this.freeMem[i] = node.capacity.memory;
      this.drivers[i] = driverMask(node.drivers);
      this.nodeAt[i] = i;
    }
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      const t = this.nodeAt[i]!;
      this.nodeAt[i] = this.nodeAt[j]!;
      this.nodeAt[j] = t;
    }
    for (let p = 0; p < n; p++) this.posOf[this.nodeAt[p]!] = p;
    for (const a of allocs) {
      const i = this.byName.get(a.node);
      if (i !== undefined) this.take(i, a.resources.cpu, a.resources.memory, a.ports);
    }
    this.busy = new FitIndex(n);
    this.empty = new FitIndex(n);
    for (let i = 0; i < n; i++) this.reindex(i);
  }

  /** The node's index, or undefined for a node the cluster does not know. */
  indexOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  /** True when `port` is held on node i. */
  portInUse(i: number, port: number): boolean {
    return this.ports[i]?.has(port) === true;
  }

  /** How many dynamic ports node i can still hand out. */
  freeDynamicPorts(i: number): number {
    return this.dynamicPorts.max - this.dynamicPorts.min + 1 - this.dynamicUsed[i]!;
  }

  /** Picks `count` free dynamic ports on node i (lowest first, deterministic). */
  pickPorts(i: number, count: number, into: number[]): void {
    const used = this.ports[i];
    for (let p = this.dynamicPorts.min; p <= this.dynamicPorts.max && count > 0; p++) {
      if (used?.has(p) === true || into.includes(p)) continue;
      into.push(p);
      count--;
    }
  }

  /** Records an allocation on node i (a placement in the plan being built). */
  commit(i: number, cpu: number, mem: number, ports: readonly number[]): void {
    this.take(i, cpu, mem, ports);
    this.reindex(i);
  }

  /** Gives back what an allocation held (a stop in the plan being built). */
  release(alloc: AllocInfo): void {
    const i = this.byName.get(alloc.node);
    if (i === undefined) return;
    this.freeCpu[i]! += alloc.resources.cpu;
    this.freeMem[i]! += alloc.resources.memory;
    this.allocCount[i]!--;
    const set = this.ports[i];
    for (const p of alloc.ports) {
      if (set?.delete(p) === true && this.isDynamic(p)) this.dynamicUsed[i]!--;
    }
    this.reindex(i);
  }

  private take(i: number, cpu: number, mem: number, ports: readonly number[]): void {
    this.freeCpu[i]! -= cpu;
    this.freeMem[i]! -= mem;
    this.allocCount[i]!++;
    if (ports.length === 0) return;
    let set = this.ports[i];
    if (set === undefined) {
      set = new Set();
      this.ports[i] = set;
    }
    for (const p of ports) {
      if (set.has(p)) continue;
      set.add(p);
      if (this.isDynamic(p)) this.dynamicUsed[i]!++;
    }
  }

  private isDynamic(port: number): boolean {
    return port >= this.dynamicPorts.min && port <= this.dynamicPorts.max;
  }

  /** Puts node i in the right index (busy or empty) with its current free resources. */
  private reindex(i: number): void {
    const pos = this.posOf[i]!;
    if (this.readiness[i] !== 'ready') {
      this.busy.clear(pos);
      this.empty.clear(pos);
      return;
    }
    const [to, from] = this.allocCount[i]! > 0 ? [this.busy, this.empty] : [this.empty, this.busy];
    from.clear(pos);
    to.set(pos, Math.max(0, this.freeCpu[i]!), Math.max(0, this.freeMem[i]!));
  }
}
