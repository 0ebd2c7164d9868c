import t from 'tap';
import type { AllocInfo, GroupDemand, NodeInfo } from '../../../scheduler/model.js';
import type { Readiness } from '../../../scheduler/nodes.js';
import { ClusterState } from '../../../scheduler/placement/cluster.js';
import { type Algorithm, type Placed, Placer, sampleLimit } from '../../../scheduler/placement/placer.js';
import { seededRandom } from '../../../base/clock.js';
import type { PlacementFailure } from '../../../scheduler/placement/reasons.js';
import { alloc, constraint, demand, node, nodes } from '../helpers/fixtures.js';

function placerFor(ns: NodeInfo[], allocs: AllocInfo[] = [], opts: { algorithm?: Algorithm; readiness?: Readiness[]; seed?: number } = {}): Placer {
  const random = seededRandom(opts.seed ?? 1);
  const cluster = new ClusterState(ns, opts.readiness ?? ns.map(() => 'ready'), allocs, { random });
  return new Placer(cluster, { random, ...(opts.algorithm === undefined ? {} : { algorithm: opts.algorithm }) });
}

function placeN(p: Placer, d: GroupDemand, n: number, existing: AllocInfo[] = []): Array<Placed | PlacementFailure> {
  const g = p.group(d, existing);
  return Array.from({ length: n }, () => g.place());
}

const isPlaced = (r: Placed | PlacementFailure): r is Placed => 'node' in r;

t.test('sample size is max(2, ceil(log2 N))', async (t) => {
  const table: Array<[number, number]> = [
    [0, 2],
    [1, 2],
    [2, 2],
    [4, 2],
    [5, 3],
    [16, 4],
    [17, 5],
    [1000, 10],
    [10_000, 14],
  ];
  for (const [n, limit] of table) t.equal(sampleLimit(n), limit, `${n} nodes`);
});

t.test('rejections are counted per reason over every node', async (t) => {
  const cases: Array<{ name: string; nodes: NodeInfo[]; allocs?: AllocInfo[]; readiness?: Readiness[]; demand: Partial<GroupDemand>; message: string }> = [
    {
      name: 'memory and a zone constraint',
      nodes: [
        ...nodes(3, () => ({ attributes: { zone: 'a' }, capacity: { cpu: 4000, memory: 256 } })),
        node('b1', { attributes: { zone: 'b' } }),
        node('b2', { attributes: { zone: 'b' } }),
      ],
      demand: { constraints: [constraint('zone', '=', 'a')] },
      message: '3 nodes lacked memory, 2 nodes failed zone = a',
    },
    {
      name: 'cpu',
      nodes: nodes(2, () => ({ capacity: { cpu: 100, memory: 8192 } })),
      demand: {},
      message: '2 nodes lacked cpu',
    },
    {
      name: 'a missing driver',
      nodes: nodes(2, () => ({ drivers: ['process'] })),
      demand: { drivers: ['docker'] },
      message: '2 nodes lacked driver docker',
    },
    {
      name: 'a host volume only one node has, which is full',
      nodes: [node('n0', { hostVolumes: ['pg'], capacity: { cpu: 100, memory: 100 } }), node('n1')],
      demand: { hostVolumes: ['pg'] },
      message: '1 node lacked cpu, 1 node lacked host volume pg',
    },
    {
      name: 'a static port in use',
      nodes: nodes(1),
      allocs: [alloc('n0', { ports: [8080], job: 'other' })],
      demand: { staticPorts: [8080] },
      message: '1 node had port 8080 in use',
    },
    {
      name: 'a kernel version range',
      nodes: [node('n0', { attributes: { 'kernel.version': '4.19.0-21-amd64' } }), node('n1')],
      demand: { constraints: [constraint('kernel.version', 'version', '>= 5.4, < 7')] },
      message: '2 nodes failed kernel.version version >= 5.4, < 7',
    },
    {
      name: 'a regexp and !=',
      nodes: [node('n0', { attributes: { rack: 'r12' } }), node('n1', { attributes: { rack: 'x1' } }), node('n2', { attributes: { rack: 'r13' } })],
      demand: { constraints: [constraint('rack', 'regexp', '^r1'), constraint('rack', '!=', 'r12')], resources: { cpu: 5000, memory: 1 } },
      message: '1 node failed rack != r12, 1 node failed rack regexp ^r1, 1 node lacked cpu',
    },
    {
      name: 'down and draining nodes',
      nodes: nodes(3),
      readiness: ['down', 'draining', 'lost'],
      demand: {},
      message: '1 node down, 1 node draining, 1 node lost',
    },
    { name: 'no nodes at all', nodes: [], demand: {}, message: 'no nodes are registered' },
  ];
  for (const c of cases) {
    const p = placerFor(c.nodes, c.allocs ?? [], c.readiness === undefined ? {} : { readiness: c.readiness });
    const [r] = placeN(p, demand(c.demand), 1);
    t.notOk(isPlaced(r!), `${c.name}: not placed`);
    t.equal((r as PlacementFailure).message, c.message, c.name);
  }
});

t.test('constraints that pass place the allocation', async (t) => {
  const cases: Array<[string, NodeInfo, GroupDemand['constraints']]> = [
    ['version range on a Debian kernel string', node('n0', { attributes: { 'kernel.version': '6.1.0-18-amd64' } }), [constraint('kernel.version', 'version', '>= 5.4, < 7')]],
    ['is_set', node('n0', { attributes: { gpu: 'a100' } }), [constraint('gpu', 'is_set')]],
    ['is_not_set', node('n0'), [constraint('gpu', 'is_not_set')]],
    ['!= on a missing attribute', node('n0'), [constraint('zone', '!=', 'a')]],
    ['node.name built-in', node('n0'), [constraint('node.name', '=', 'n0')]],
  ];
  for (const [name, n, constraints] of cases) {
    const [r] = placeN(placerFor([n]), demand({ constraints }), 1);
    t.ok(isPlaced(r!), name);
  }
});

t.test('bin-pack prefers the fuller node; spread the emptier', async (t) => {
  const ns = nodes(2);
  const existing = [alloc('n1', { job: 'other', resources: { cpu: 2000, memory: 4096 } })];
  const [packed] = placeN(placerFor(ns, existing), demand(), 1);
  t.equal((packed as Placed).node, 'n1');
  const [spread] = placeN(placerFor(ns, existing, { algorithm: 'spread' }), demand(), 1);
  t.equal((spread as Placed).node, 'n0');
});

t.test('bin-pack opens a new node only when no busy node fits', async (t) => {
  const ns = nodes(50);
  const p = placerFor(ns);
  // 16 one-allocation jobs of a quarter node each: 4 nodes, whatever the sample holds.
  const results = Array.from({ length: 16 }, (_, i) => placeN(p, demand({ job: `j${i}`, resources: { cpu: 1000, memory: 1024 } }), 1)[0]!).filter(isPlaced);
  t.equal(results.length, 16);
  t.equal(new Set(results.map((r) => r.node)).size, 4);
});

t.test("job anti-affinity spreads a group's copies over equal nodes", async (t) => {
  const ns = nodes(3);
  const results = placeN(placerFor(ns, [], { algorithm: 'spread' }), demand({ count: 3 }), 3).filter(isPlaced);
  t.strictSame(new Set(results.map((r) => r.node)).size, 3);
});

t.test('spread targets and even spread', async (t) => {
  const zoned = nodes(6, (i) => ({ attributes: { zone: ['a', 'b', 'c'][i % 3]! } }));
  const zoneOf = (n: string) => zoned.find((x) => x.name === n)!.attributes['zone'];
  const count = (rs: Array<Placed | PlacementFailure>) => {
    const out: Record<string, number> = {};
    for (const r of rs.filter(isPlaced)) out[zoneOf(r.node)!] = (out[zoneOf(r.node)!] ?? 0) + 1;
    return out;
  };
  const even = placeN(placerFor(zoned), demand({ count: 6, spreads: [{ attribute: 'zone', weight: 50, targets: new Map() }] }), 6);
  t.strictSame(count(even), { a: 2, b: 2, c: 2 }, 'even');
  const targeted = placeN(
    placerFor(zoned),
    demand({ count: 10, spreads: [{ attribute: 'zone', weight: 100, targets: new Map([['a', 0.7], ['b', 0.3]]) }] }),
    10,
  );
  t.strictSame(count(targeted), { a: 7, b: 3 }, '70/30');
});

t.test('affinities pull towards and push away', async (t) => {
  const ns = nodes(4, (i) => ({ attributes: { rack: `r${i}` } }));
  const [towards] = placeN(placerFor(ns), demand({ affinities: [{ matcher: constraint('rack', '=', 'r2'), weight: 100 }] }), 1);
  t.equal((towards as Placed).node, 'n2');
  const away = placeN(placerFor(ns, [], { algorithm: 'spread' }), demand({ count: 3, affinities: [{ matcher: constraint('rack', '=', 'r0'), weight: -100 }] }), 3);
  t.notOk(away.filter(isPlaced).some((r) => r.node === 'n0'));
});

t.test('pinned placements (sticky host volumes) go to that node or explain', async (t) => {
  const ns = [node('n0', { hostVolumes: ['pg'] }), node('n1', { hostVolumes: ['pg'] })];
  const p = placerFor(ns);
  const g = p.group(demand({ hostVolumes: ['pg'], resources: { cpu: 3000, memory: 512 } }), []);
  t.equal((g.place({ pinTo: 'n1' }) as Placed).node, 'n1');
  const r = g.place({ pinTo: 'n1' }) as PlacementFailure;
  t.equal(r.message, "1 node lacked cpu, 1 node not n1 (the group's host volume data is there)");
});

t.test('dynamic ports are picked per node and run out', async (t) => {
  const ns = nodes(1);
  const cluster = new ClusterState(ns, ['ready'], [], { random: seededRandom(3), dynamicPorts: { min: 20000, max: 20002 } });
  const g = new Placer(cluster).group(demand({ dynamicPorts: 2, staticPorts: [8080], resources: { cpu: 1, memory: 1 } }), []);
  const first = g.place() as Placed;
  t.strictSame(first.ports, [8080, 20000, 20001]);
  const g2 = new Placer(cluster).group(demand({ job: 'other', dynamicPorts: 2, resources: { cpu: 1, memory: 1 } }), []);
  t.equal((g2.place() as PlacementFailure).message, '1 node had no free dynamic ports');
  cluster.release(alloc('n0', { ports: first.ports, resources: { cpu: 1, memory: 1 } }));
  t.strictSame((g2.place() as Placed).ports, [20000, 20001], 'released ports are reused');
});

t.test('the same seed gives the same placements', async (t) => {
  const ns = nodes(200);
  const run = (seed: number) => placeN(placerFor(ns, [], { seed }), demand({ count: 50 }), 50).map((r) => (r as Placed).node);
  t.strictSame(run(7), run(7));
});

t.test('placements never exceed a node', async (t) => {
  const ns = nodes(10, (i) => ({ capacity: { cpu: 1000 + 500 * i, memory: 2048 } }));
  const p = placerFor(ns);
  const results = placeN(p, demand({ resources: { cpu: 700, memory: 300 } }), 50);
  const placed = results.filter(isPlaced);
  const used = new Map<string, number>();
  for (const r of placed) used.set(r.node, (used.get(r.node) ?? 0) + 700);
  for (const n of ns) t.ok((used.get(n.name) ?? 0) <= n.capacity.cpu, `${n.name} within cpu`);
  t.equal(placed.length, ns.reduce((s, n) => s + Math.min(Math.floor(n.capacity.cpu / 700), Math.floor(2048 / 300)), 0), 'every slot used');
  t.match((results.at(-1) as PlacementFailure).message, /lacked cpu/);
});
