import fc from 'fast-check';
import t from 'tap';
import type { GroupDemand, NodeInfo } from '../../../scheduler/model.js';
import { demand, node } from '../helpers/fixtures.js';
import { Harness, job } from '../helpers/harness.js';

const nodeArb = fc.record({
  cpu: fc.integer({ min: 500, max: 8000 }),
  memory: fc.integer({ min: 256, max: 16384 }),
  zone: fc.constantFrom('a', 'b', 'c'),
});
const groupArb = fc.record({
  count: fc.integer({ min: 0, max: 8 }),
  cpu: fc.integer({ min: 50, max: 3000 }),
  memory: fc.integer({ min: 32, max: 4096 }),
  parallelism: fc.integer({ min: 1, max: 3 }),
  order: fc.constantFrom('stop-first' as const, 'start-first' as const),
  zone: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
  ports: fc.integer({ min: 0, max: 1 }),
});
type GroupArb = typeof groupArb extends fc.Arbitrary<infer T> ? T : never;
const op = fc.oneof(
  fc.record({ kind: fc.constant('scale' as const), job: fc.nat(3), count: fc.integer({ min: 0, max: 8 }) }),
  fc.record({ kind: fc.constant('update' as const), job: fc.nat(3) }),
  fc.record({ kind: fc.constant('kill' as const), node: fc.nat(7) }),
  fc.record({ kind: fc.constant('revive' as const), node: fc.nat(7) }),
  fc.record({ kind: fc.constant('drain' as const), node: fc.nat(7) }),
  fc.record({ kind: fc.constant('fail' as const), alloc: fc.nat(40) }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1_000, max: 60_000 }) }),
);

function build(ns: Array<{ cpu: number; memory: number; zone: string }>, groups: Array<GroupArb>) {
  const cluster: NodeInfo[] = ns.map((n, i) => node(`n${i}`, { capacity: { cpu: n.cpu, memory: n.memory }, attributes: { zone: n.zone } }));
  const h = new Harness(cluster);
  const demands: GroupDemand[] = groups.map((g, i) =>
    demand({
      job: `j${i}`,
      group: 'g',
      count: g.count,
      resources: { cpu: g.cpu, memory: g.memory },
      dynamicPorts: g.ports,
      constraints: g.zone === undefined ? [] : [{ attribute: 'zone', operator: '=', value: g.zone, label: `zone = ${g.zone}`, test: (v) => v === g.zone }],
      update: { parallelism: g.parallelism, delayMs: 0, order: g.order, minHealthyTimeMs: 0, healthDeadlineMs: 600_000, autoRevert: false },
    }),
  );
  for (const d of demands) h.submit(job(d.job, [d]));
  return { h, demands };
}

function withinCapacity(h: Harness): boolean {
  return h.nodes.every((n) => {
    const u = h.usage(n.name);
    return u.cpu <= n.capacity.cpu && u.memory <= n.capacity.memory;
  });
}

function noPortClash(h: Harness): boolean {
  return h.nodes.every((n) => {
    const ports = h.allocs.filter((a) => a.node === n.name).flatMap((a) => a.ports);
    return new Set(ports).size === ports.length;
  });
}

t.test('plans never exceed capacity or reuse a port, whatever happens', async (t) => {
  fc.assert(
    fc.property(
      fc.array(nodeArb, { minLength: 1, maxLength: 8 }),
      fc.array(groupArb, { minLength: 1, maxLength: 4 }),
      fc.array(op, { maxLength: 25 }),
      (ns, groups, ops) => {
        const { h, demands } = build(ns, groups);
        h.step();
        if (!withinCapacity(h) || !noPortClash(h)) return false;
        let version = 1;
        for (const o of ops) {
          if (o.kind === 'scale' && demands[o.job % demands.length]) {
            const d = demands[o.job % demands.length]!;
            const next = { ...d, count: o.count };
            demands[o.job % demands.length] = next;
            h.submit(job(d.job, [next], { version: d.version }));
          } else if (o.kind === 'update') {
            const d = demands[o.job % demands.length]!;
            version++;
            const next = { ...d, version, fingerprint: `f${version}` };
            demands[o.job % demands.length] = next;
            h.submit(job(d.job, [next], { version }));
          } else if (o.kind === 'kill') h.kill(`n${o.node % ns.length}`);
          else if (o.kind === 'revive') h.revive(`n${o.node % ns.length}`);
          else if (o.kind === 'drain') h.drain(`n${o.node % ns.length}`);
          else if (o.kind === 'fail') {
            const a = h.allocs[o.alloc % Math.max(1, h.allocs.length)];
            if (a !== undefined) h.set((x) => x.id === a.id, { status: 'failed', failedAtMs: h.nowMs });
          } else if (o.kind === 'advance') h.advance(o.ms);
          h.step();
          if (!withinCapacity(h) || !noPortClash(h)) return false;
        }
        return true;
      },
    ),
    { numRuns: 150 },
  );
  t.pass('capacity and ports hold after every plan');
});

t.test('repeated reconciliation converges, and a converged state stays put', async (t) => {
  fc.assert(
    fc.property(
      fc.array(nodeArb, { minLength: 1, maxLength: 8 }),
      fc.array(groupArb, { minLength: 1, maxLength: 4 }),
      fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 3 }),
      fc.boolean(),
      (ns, groups, killed, update) => {
        const { h, demands } = build(ns, groups);
        h.converge(60);
        for (const k of killed) h.kill(`n${k % ns.length}`);
        h.advance(31_000);
        if (update) {
          for (const d of demands) h.submit(job(d.job, [{ ...d, version: 2, fingerprint: 'f2' }], { version: 2 }));
        }
        h.converge(60);
        const after = h.plan();
        if (after.place.length + after.stop.length !== 0) return false;
        // Each group: no index twice, never more than its count, and the shortfall is explained.
        for (const d of demands) {
          const allocs = h.of(d.job);
          if (new Set(allocs.map((a) => a.index)).size !== allocs.length) return false;
          if (allocs.length > d.count) return false;
          const failure = after.failures.find((f) => f.job === d.job);
          if (allocs.length < d.count && failure === undefined) return false;
        }
        return withinCapacity(h);
      },
    ),
    { numRuns: 150 },
  );
  t.pass('converged within 60 rounds');
});
