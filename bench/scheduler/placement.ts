/**
 * The scheduler's placement on a simulated cluster: 10,000 nodes (16 cores,
 * 64 GiB, three zones), 100,000 allocations of mixed sizes in jobs of 1-50
 * (some with a zone constraint, some with a picked port). Prints placements per
 * second on one core, p50/p99 latency of one placement, nodes used against the
 * lower bound (ceil of total requests over node capacity, per resource), and
 * the same workload through the whole reconciler (one plan for everything).
 *
 * Peer measured in the same run: first-fit over a linear scan of the nodes,
 * the textbook dense packer (no constraints ranking, no sampling).
 *
 *   npx tsx bench/scheduler/placement.ts [nodes] [allocations]
 *
 * Targets (the scheduler issue): >= 10,000 placements/s (kube-scheduler's CI
 * floor is 680-1,100 pods/s; Nomad's C2M ran about 1,500/s cluster-wide) and
 * nodes used <= 1.05 x the lower bound.
 */
import type { GroupDemand, JobState, NodeInfo } from '../../scheduler/model.js';
import { ClusterState } from '../../scheduler/placement/cluster.js';
import { compileMatcher } from '../../scheduler/placement/matchers.js';
import { type Placed, Placer } from '../../scheduler/placement/placer.js';
import { seededRandom } from '../../base/clock.js';
import { reconcile } from '../../scheduler/reconcile/reconciler.js';

const NODES = Number(process.argv[2] ?? 10_000);
const ALLOCS = Number(process.argv[3] ?? 100_000);
const NODE_CPU = 16_000;
const NODE_MEM = 65_536;
/** Mixed sizes (millicores, MiB): small web tasks to big memory-heavy ones, cpu- and memory-leaning. */
const SIZES: ReadonlyArray<readonly [number, number]> = [
  [100, 128],
  [250, 256],
  [250, 1024],
  [500, 512],
  [500, 2048],
  [1000, 1024],
  [1000, 4096],
  [2000, 2048],
  [2000, 8192],
  [4000, 4096],
  [4000, 16384],
];

function cluster(): NodeInfo[] {
  return Array.from({ length: NODES }, (_, i) => ({
    name: `node-${i}`,
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    capacity: { cpu: NODE_CPU, memory: NODE_MEM },
    attributes: { zone: ['a', 'b', 'c'][i % 3]!, rack: `r${i % 40}` },
    drivers: ['docker', 'process'],
    hostVolumes: [],
    heartbeat: 'passing',
    drain: false,
  }));
}

function workload(): GroupDemand[] {
  const random = seededRandom(7);
  const groups: GroupDemand[] = [];
  let total = 0;
  for (let j = 0; total < ALLOCS; j++) {
    const count = Math.min(ALLOCS - total, 1 + Math.floor(random() * 50));
    const [cpu, memory] = SIZES[Math.floor(random() * SIZES.length)]!;
    const constrained = random() < 0.1;
    groups.push({
      job: `job-${j}`,
      group: 'g',
      version: 1,
      fingerprint: 'f',
      count,
      priority: 50,
      resources: { cpu, memory },
      drivers: ['docker'],
      staticPorts: [],
      dynamicPorts: random() < 0.3 ? 1 : 0,
      hostVolumes: [],
      constraints: constrained ? [compileMatcher('zone', '!=', 'c')] : [],
      affinities: [],
      spreads: [],
      update: { parallelism: 1, delayMs: 0, order: 'stop-first', minHealthyTimeMs: 0, healthDeadlineMs: 300_000, autoRevert: false },
      reschedule: { attempts: 0, intervalMs: 0, delayMs: 30_000, delayFunction: 'exponential', maxDelayMs: 3_600_000, unlimited: true },
    });
    total += count;
  }
  return groups;
}

function lowerBound(groups: GroupDemand[]): number {
  let cpu = 0;
  let mem = 0;
  for (const g of groups) {
    cpu += g.resources.cpu * g.count;
    mem += g.resources.memory * g.count;
  }
  return Math.max(Math.ceil(cpu / NODE_CPU), Math.ceil(mem / NODE_MEM));
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** The placer's hot path, one placement at a time, timed each. */
function benchPlacer(nodes: NodeInfo[], groups: GroupDemand[]) {
  const random = seededRandom(11);
  const state = new ClusterState(nodes, nodes.map(() => 'ready'), [], { random });
  const placer = new Placer(state, { random });
  const latencies = new Float64Array(ALLOCS);
  let placed = 0;
  let failed = 0;
  const start = process.hrtime.bigint();
  for (const g of groups) {
    const gp = placer.group(g, []);
    for (let i = 0; i < g.count; i++) {
      const t0 = process.hrtime.bigint();
      const r = gp.place();
      latencies[placed + failed] = Number(process.hrtime.bigint() - t0) / 1e3;
      if ((r as Placed).node !== undefined) placed++;
      else failed++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  let used = 0;
  for (let i = 0; i < nodes.length; i++) if (state.allocCount[i]! > 0) used++;
  latencies.sort();
  return { placed, failed, seconds, used, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1]! };
}

/** Peer: first-fit over a linear scan of the nodes (densest simple packer, no sampling). */
function benchFirstFit(nodes: NodeInfo[], groups: GroupDemand[]) {
  const freeCpu = new Float64Array(nodes.length).fill(NODE_CPU);
  const freeMem = new Float64Array(nodes.length).fill(NODE_MEM);
  const used = new Uint8Array(nodes.length);
  let placed = 0;
  const start = process.hrtime.bigint();
  for (const g of groups) {
    const { cpu, memory } = g.resources;
    const constrained = g.constraints.length > 0;
    for (let k = 0; k < g.count; k++) {
      for (let i = 0; i < nodes.length; i++) {
        if (freeCpu[i]! < cpu || freeMem[i]! < memory) continue;
        if (constrained && nodes[i]!.attributes['zone'] === 'c') continue;
        freeCpu[i]! -= cpu;
        freeMem[i]! -= memory;
        used[i] = 1;
        placed++;
        break;
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { placed, seconds, used: used.reduce((a, b) => a + b, 0) };
}

/** The whole reconciler: every job submitted at once, one plan. */
function benchReconcile(nodes: NodeInfo[], groups: GroupDemand[]) {
  const jobs: JobState[] = groups.map((g) => ({ name: g.job, version: 1, stopped: false, groups: [g] }));
  let id = 0;
  const start = process.hrtime.bigint();
  const plan = reconcile({ nowMs: Date.now(), nodes, jobs, allocs: [], deployments: [] }, { random: seededRandom(13), newId: () => `a${id++}` });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { placed: plan.place.length, failed: plan.failures.reduce((s, f) => s + f.missing, 0), seconds, used: new Set(plan.place.map((p) => p.node)).size };
}

const verdict = (ok: boolean) => (ok ? 'MET' : 'MISSED');
const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en-US');

const nodes = cluster();
const groups = workload();
const bound = lowerBound(groups);
console.log(`node ${process.version}; ${NODES.toLocaleString('en-US')} nodes of ${NODE_CPU / 1000} cores / ${NODE_MEM / 1024} GiB; ${ALLOCS.toLocaleString('en-US')} allocations in ${groups.length} jobs`);
console.log(`lower bound: ${bound} nodes (ceil of total requests over node capacity, per resource)`);
benchPlacer(nodes, groups.slice(0, 200)); // warm the JIT
const p = benchPlacer(nodes, groups);
const ff = benchFirstFit(nodes, groups);
const r = benchReconcile(nodes, groups);
const ratio = p.used / bound;
console.log('');
console.log('placer (feasibility + ranking on a sample of ceil(log2 N) nodes)');
console.log(`  placed ${p.placed.toLocaleString('en-US')}, failed ${p.failed} in ${p.seconds.toFixed(2)} s: ${rate(p.placed + p.failed, p.seconds)} placements/s`);
console.log(`  latency of one placement: p50 ${p.p50.toFixed(1)} us, p99 ${p.p99.toFixed(1)} us, max ${p.max.toFixed(0)} us`);
console.log(`  nodes used ${p.used} = ${ratio.toFixed(3)} x the lower bound`);
console.log('reconcile() (the whole pure core: one plan for every job)');
console.log(`  placed ${r.placed.toLocaleString('en-US')}, failed ${r.failed} in ${r.seconds.toFixed(2)} s: ${rate(r.placed + r.failed, r.seconds)} placements/s; nodes used ${r.used} = ${(r.used / bound).toFixed(3)} x`);
console.log('peer: first-fit, linear scan, same run');
console.log(`  placed ${ff.placed.toLocaleString('en-US')} in ${ff.seconds.toFixed(2)} s: ${rate(ff.placed, ff.seconds)} placements/s; nodes used ${ff.used} = ${(ff.used / bound).toFixed(3)} x`);
console.log(`  placer vs first-fit: ${(ff.seconds / p.seconds).toFixed(2)}x the speed, ${(p.used / ff.used).toFixed(3)}x the nodes`);
console.log('');
const speed = (p.placed + p.failed) / p.seconds;
console.log(`target >= 10,000 placements/s on one core: ${rate(p.placed + p.failed, p.seconds)}/s  ${verdict(speed >= 10_000)}`);
console.log(`target reconcile() >= 10,000 placements/s: ${rate(r.placed + r.failed, r.seconds)}/s  ${verdict((r.placed + r.failed) / r.seconds >= 10_000)}`);
console.log(`target nodes used <= 1.05 x lower bound: ${ratio.toFixed(3)}  ${verdict(ratio <= 1.05)}`);
console.log(`p99 placement latency: ${p.p99.toFixed(1)} us`);
