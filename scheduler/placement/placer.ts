/**
 * Picks a node for each allocation of a group, as Nomad's stack does:
 * feasibility first (capacity, drivers, host volumes, constraints, ports), then
 * ranking (bin-pack or spread fit, job anti-affinity, affinities, spread) on a
 * sample of max(2, ceil(log2 N)) feasible nodes from a random start. Groups with
 * affinities or spread rank every feasible node, as Nomad does, since a sample
 * would miss the values they ask for.
 *
 * One difference from Nomad, on purpose: bin-packing samples nodes that already
 * run something before empty ones (ClusterState keeps them apart), so a new node
 * is opened only when no busy node fits. Nomad's uniform sample opens new nodes
 * on a sparse cluster; this keeps the node count near the lower bound.
 *
 * When nothing fits, every node is checked again to count why (reasons.ts).
 */
import { type Random, systemRandom } from '../../base/clock.js';
import type { AllocInfo, GroupDemand } from '../model.js';
import { type ClusterState, driverMask } from './cluster.js';
import { attributeOf } from './matchers.js';
import { antiAffinityPenalty, binPackScore, spreadBoost, spreadFitScore } from './rank.js';
import { type PlacementFailure, ReasonCounter } from './reasons.js';

/** binpack (default) fills nodes; spread keeps them even (Nomad's scheduler algorithms). */
export type Algorithm = 'binpack' | 'spread';

export interface PlacerOptions {
  algorithm?: Algorithm;
  random?: Random;
}

/** Where one allocation goes. */
export interface Placed {
  node: string;
  /** Host ports it holds: the group's static ports, then the picked ones. */
  ports: number[];
  score: number;
}

/** Per-placement wishes. */
export interface PlaceOptions {
  /** Only this node will do (a sticky host volume lives there). */
  pinTo?: string | undefined;
  /** Score this node down (the node a rescheduled allocation failed on; Nomad's reschedule penalty). */
  avoid?: string | undefined;
}

/** The sample size: max(2, ceil(log2 n)). */
export function sampleLimit(readyNodes: number): number {
  return Math.max(2, Math.ceil(Math.log2(Math.max(1, readyNodes))));
}

/** Places groups on one cluster state. */
export class Placer {
  readonly cluster: ClusterState;
  readonly algorithm: Algorithm;
  readonly random: Random;
  readonly limit: number;

  constructor(cluster: ClusterState, opts: PlacerOptions = {}) {
    this.cluster = cluster;
    this.algorithm = opts.algorithm ?? 'binpack';
    this.random = opts.random ?? systemRandom;
    this.limit = sampleLimit(cluster.readiness.filter((r) => r === 'ready').length);
  }

  /** Starts placing a group whose `existing` allocations stay (they count for anti-affinity and spread). */
  group(demand: GroupDemand, existing: Iterable<AllocInfo>): GroupPlacer {
    return new GroupPlacer(this, demand, existing);
  }
}

/** Node checks that do not change while a plan is built, cached per node for one group. */
const UNKNOWN = 0;
const PASS = 1;

/** Places the allocations of one group, one at a time. */
export class GroupPlacer {
  private readonly p: Placer;
  private readonly d: GroupDemand;
  private readonly c: ClusterState;
  private readonly mask: number;
  private readonly collisions = new Map<number, number>();
  private readonly spreadCounts: Array<Map<string, number>>;
  private readonly spreadWeightSum: number;
  private readonly affinityWeightSum: number;
  private readonly fullScan: boolean;
  private staticCache: Uint8Array | undefined;
  private readonly staticReasons: string[] = [];

  constructor(placer: Placer, demand: GroupDemand, existing: Iterable<AllocInfo>) {
    this.p = placer;
    this.d = demand;
    this.c = placer.cluster;
    this.mask = driverMask(demand.drivers);
    this.spreadCounts = demand.spreads.map(() => new Map());
    this.spreadWeightSum = demand.spreads.reduce((s, r) => s + r.weight, 0);
    this.affinityWeightSum = demand.affinities.reduce((s, a) => s + Math.abs(a.weight), 0);
    this.fullScan = demand.spreads.length > 0 || demand.affinities.length > 0;
    for (const a of existing) {
      const i = this.c.indexOf(a.node);
      if (i !== undefined) this.count(i);
    }
    if (demand.constraints.length > 0 || demand.hostVolumes.length > 0) this.staticCache = new Uint8Array(this.c.nodes.length);
  }

  /** Places one allocation and records it in the cluster state, or explains why it cannot. */
  place(opts: PlaceOptions = {}): Placed | PlacementFailure {
    const { cpu, memory } = this.d.resources;
    const avoid = opts.avoid === undefined ? -1 : (this.c.indexOf(opts.avoid) ?? -1);
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    if (opts.pinTo !== undefined) {
      const i = this.c.indexOf(opts.pinTo);
      if (i !== undefined && this.c.readiness[i] === 'ready' && this.feasible(i) === undefined) {
        best = i;
        bestScore = this.score(i, avoid);
      }
    } else {
      const limit = this.fullScan ? Number.POSITIVE_INFINITY : this.p.limit;
      const [first, second] = this.p.algorithm === 'binpack' ? [this.c.busy, this.c.empty] : [this.c.empty, this.c.busy];
      let found = 0;
      // The second index only fills a sample the first could not: bin-packing opens an empty node last.
      for (const index of [first, second]) {
        if (found >= limit) break;
        const n = this.c.nodes.length;
        const start = Math.floor(this.p.random() * n);
        let pos = start;
        let wrapped = false;
        while (found < limit) {
          const at = index.firstFit(pos, cpu, memory);
          if (at === -1 || (wrapped && at >= start)) {
            if (wrapped || start === 0) break;
            wrapped = true;
            pos = 0;
            continue;
          }
          pos = at + 1;
          const i = this.c.nodeAt[at]!;
          if (this.feasible(i) !== undefined) continue;
          found++;
          const s = this.score(i, avoid);
          if (s > bestScore) {
            bestScore = s;
            best = i;
          }
        }
      }
    }
    if (best === -1) return this.explain(opts.pinTo);
    const ports = [...this.d.staticPorts];
    if (this.d.dynamicPorts > 0) this.c.pickPorts(best, this.d.dynamicPorts, ports);
    this.c.commit(best, cpu, memory, ports);
    this.count(best);
    return { node: this.c.nodes[best]!.name, ports, score: bestScore };
  }

  private count(i: number): void {
    this.collisions.set(i, (this.collisions.get(i) ?? 0) + 1);
    const node = this.c.nodes[i]!;
    this.d.spreads.forEach((rule, k) => {
      const v = attributeOf(node, rule.attribute);
      if (v !== undefined) this.spreadCounts[k]!.set(v, (this.spreadCounts[k]!.get(v) ?? 0) + 1);
    });
  }

  /** Undefined when node i can take one more allocation of the group, else the reason. */
  private feasible(i: number): string | undefined {
    const c = this.c;
    if ((c.drivers[i]! & this.mask) !== this.mask) {
      const missing = this.d.drivers.filter((d) => !c.nodes[i]!.drivers.includes(d));
      return `lacked driver ${missing.join(', ')}`;
    }
    if (this.staticCache !== undefined) {
      const cached = this.staticCache[i]!;
      if (cached === UNKNOWN) {
        const reason = this.staticReason(i);
        if (reason === undefined) this.staticCache[i] = PASS;
        else {
          this.staticReasons.push(reason);
          this.staticCache[i] = 1 + this.staticReasons.length; // 2.. index the reason
          return reason;
        }
      } else if (cached !== PASS) return this.staticReasons[cached - 2];
    }
    for (const port of this.d.staticPorts) if (c.portInUse(i, port)) return `had port ${port} in use`;
    if (this.d.dynamicPorts > 0 && c.freeDynamicPorts(i) < this.d.dynamicPorts) return 'had no free dynamic ports';
    if (c.freeCpu[i]! < this.d.resources.cpu) return 'lacked cpu';
    if (c.freeMem[i]! < this.d.resources.memory) return 'lacked memory';
    return undefined;
  }

  private staticReason(i: number): string | undefined {
    const node = this.c.nodes[i]!;
    for (const v of this.d.hostVolumes) if (!node.hostVolumes.includes(v)) return `lacked host volume ${v}`;
    for (const m of this.d.constraints) if (!m.test(attributeOf(node, m.attribute))) return `failed ${m.label}`;
    return undefined;
  }

  private score(i: number, avoid: number): number {
    const c = this.c;
    const fc = c.freeCpu[i]! - this.d.resources.cpu;
    const fm = c.freeMem[i]! - this.d.resources.memory;
    let sum = this.p.algorithm === 'binpack' ? binPackScore(fc, fm, c.capCpu[i]!, c.capMem[i]!) : spreadFitScore(fc, fm, c.capCpu[i]!, c.capMem[i]!);
    let n = 1;
    const collisions = this.collisions.get(i) ?? 0;
    if (collisions > 0) {
      sum += antiAffinityPenalty(collisions, this.d.count);
      n++;
    }
    if (i === avoid) {
      sum -= 1;
      n++;
    }
    if (this.affinityWeightSum > 0) {
      const node = c.nodes[i]!;
      let a = 0;
      for (const { matcher, weight } of this.d.affinities) if (matcher.test(attributeOf(node, matcher.attribute))) a += weight;
      if (a !== 0) {
        sum += a / this.affinityWeightSum;
        n++;
      }
    }
    if (this.spreadWeightSum > 0) {
      const node = c.nodes[i]!;
      let s = 0;
      this.d.spreads.forEach((rule, k) => {
        s += (rule.weight / this.spreadWeightSum) * spreadBoost(rule, attributeOf(node, rule.attribute), this.spreadCounts[k]!, this.d.count);
      });
      if (s !== 0) {
        sum += s;
        n++;
      }
    }
    return sum / n;
  }

  /** Checks every node to count why none fits. */
  private explain(pinTo: string | undefined): PlacementFailure {
    const counter = new ReasonCounter();
    const c = this.c;
    for (let i = 0; i < c.nodes.length; i++) {
      counter.evaluated++;
      const state = c.readiness[i];
      if (state !== 'ready') counter.add(state!);
      else if (pinTo !== undefined && c.nodes[i]!.name !== pinTo) counter.add(`not ${pinTo} (the group's host volume data is there)`);
      else counter.add(this.feasible(i) ?? 'were feasible but not chosen');
    }
    return counter.failure(this.d.job, this.d.group, 1);
  }
}
