import { Value } from '@sinclair/typebox/value';
import t from 'tap';
import { AllocationSchema } from '../../../base/contracts/alloc.js';
import { seededRandom } from '../../../base/clock.js';
import { reconcile } from '../../../scheduler/reconcile/reconciler.js';
import { compileJob } from '../../../scheduler/spec/compile.js';
import { parseJobSpec } from '../../../scheduler/spec/validate.js';
import { allocationDocs } from '../../../scheduler/state/documents.js';
import { type AgentEntry, type ObservedTask, observeAllocs, observeNodes } from '../../../scheduler/state/observe.js';

const SPEC = `
name: shop
groups:
  - name: web
    count: 2
    volumes:
      data: { type: host, source: shop-data }
    tasks:
      - name: app
        driver: process
        command: /usr/bin/node
        args: [server.js]
        port: 0
        resources: { cpu: 500, memory: 256 }
        env: { MODE: prod }
        check: { http: /healthz }
        secrets: [{ name: DB_PASSWORD }, { name: tls.key, file: /run/secrets/tls.key }]
        volumeMounts: [{ volume: data, destination: /data }]
      - name: sidecar
        driver: process
        command: /usr/bin/sidecar
        port: 9100
`;

function agent(host: string, status: string, meta: Record<string, string> = {}): AgentEntry {
  return {
    Node: { Node: host, Address: '127.0.0.1' },
    Service: { ID: `weft-agent-${host}`, Address: `127.0.0.${host.slice(1)}`, Meta: { weft_host: host, weft_cpu: '4000', weft_memory: '4096', weft_driver: 'process', weft_attr_zone: 'a', weft_volumes: 'shop-data', ...meta } },
    Checks: [{ Status: 'passing' }, { Status: status }],
  };
}

t.test('nodes from weft-agent entries: capacity, attributes, heartbeat, missing nodes', async (t) => {
  const first = observeNodes([agent('h2', 'passing'), agent('h3', 'critical')], [], new Set(['h2']), 1000);
  t.strictSame(first.map((n) => [n.name, n.heartbeat, n.downSinceMs, n.drain]), [
    ['h2', 'passing', undefined, true],
    ['h3', 'critical', 1000, false],
  ]);
  t.strictSame(first[0]!.capacity, { cpu: 4000, memory: 4096 });
  t.strictSame(first[0]!.attributes, { zone: 'a' });
  t.strictSame(first[0]!.hostVolumes, ['shop-data']);
  const later = observeNodes([agent('h3', 'critical')], first, new Set(), 5000);
  t.strictSame(later.map((n) => [n.name, n.heartbeat, n.downSinceMs]), [
    ['h2', 'missing', 5000],
    ['h3', 'critical', 1000],
  ], 'a node that vanished is missing; a down node keeps the time it went down');
});

t.test('a spec through the whole core: documents the agent accepts, then nothing more to do', async (t) => {
  const parsed = parseJobSpec(SPEC);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const job = compileJob(parsed.job, 1);
  const nodes = observeNodes([agent('h2', 'passing'), agent('h3', 'passing'), agent('h4', 'passing', { weft_volumes: '' })], [], new Set(), 0);
  let id = 0;
  const opts = { random: seededRandom(1), newId: () => `i${++id}` };
  const plan = reconcile({ nowMs: 0, nodes, jobs: [job], allocs: [], deployments: [] }, opts);
  t.equal(plan.place.length, 2);
  t.notOk(plan.place.some((p) => p.node === 'h4'), 'only hosts with the host volume');
  const tasks: ObservedTask[] = [];
  for (const p of plan.place) {
    const docs = allocationDocs(p, parsed.job, 0);
    t.equal(docs.length, 2);
    for (const doc of docs) {
      t.ok(Value.Check(AllocationSchema, doc), `${doc.id} matches the alloc contract`, { errors: [...Value.Errors(AllocationSchema, doc)] });
      tasks.push({ host: p.node, doc, status: { id: doc.id, state: 'running', restarts: 0, updatedAt: new Date(0).toISOString() }, checksPassing: true });
    }
    const [app, sidecar] = docs;
    t.equal(sidecar!.port, 9100);
    t.ok(app!.port! >= 20000 && app!.port! <= 32000, 'port 0 gets a picked port');
    t.equal(app!.labels['weft.service'], 'app');
    t.equal(app!.labels['weft.check.http'], '/healthz');
    t.strictSame(app!.secrets, [{ name: 'DB_PASSWORD', env: 'DB_PASSWORD' }, { name: 'tls.key', file: '/run/secrets/tls.key' }]);
    t.strictSame(app!.volumes, [{ type: 'host', source: 'shop-data', destination: '/data', readOnly: false }]);
    t.equal(app!.placement?.instance, p.id);
  }
  const observed = observeAllocs(tasks, new Map(), 0);
  t.equal(observed.allocs.length, 2, 'tasks fold back into group instances');
  t.ok(observed.allocs.every((a) => a.status === 'running' && a.healthy === true));
  t.strictSame(observed.allocs[0]!.resources, { cpu: 600, memory: 320 });
  const deployments = plan.deployments;
  const again = reconcile({ nowMs: 20_000, nodes, jobs: [job], allocs: observed.allocs, deployments }, opts);
  t.equal(again.place.length + again.stop.length, 0, 'converged');
  t.equal(again.deployments[0]?.status, 'successful');
});

t.test('instance status folds over tasks: any failed, all running, else pending', async (t) => {
  const doc = (task: string) => ({
    id: `i1-${task}`,
    job: 'j',
    group: 'g',
    task,
    driver: 'process' as const,
    command: '/bin/true',
    env: {},
    labels: {},
    resources: { cpu: 1, memory: 1 },
    restart: { attempts: 0, interval: 1000, delay: 0, mode: 'fail' as const },
    placement: { instance: 'i1', index: 0, version: 1, fingerprint: 'f', ports: [], reschedules: [], createdAt: 0 },
  });
  const status = (state: 'pending' | 'running' | 'failed', id: string) => ({ id, state, restarts: 0, updatedAt: new Date(5000).toISOString() });
  const cases: Array<[string, Array<'pending' | 'running' | 'failed' | undefined>, string]> = [
    ['all running', ['running', 'running'], 'running'],
    ['one failed', ['running', 'failed'], 'failed'],
    ['one not reported yet', ['running', undefined], 'pending'],
  ];
  for (const [name, states, expected] of cases) {
    const tasks = states.map((s, i) => ({ host: 'h', doc: doc(`t${i}`), status: s === undefined ? undefined : status(s, `i1-t${i}`) }));
    t.equal(observeAllocs(tasks, new Map(), 0).allocs[0]!.status, expected, name);
  }
  const failed = observeAllocs([{ host: 'h', doc: doc('t0'), status: status('failed', 'i1-t0') }], new Map(), 9000).allocs[0]!;
  t.equal(failed.failedAtMs, 5000);
  const unhealthy = observeAllocs([{ host: 'h', doc: doc('t0'), status: status('running', 'i1-t0'), checksPassing: false }], new Map([['i1', 1]]), 9000);
  t.equal(unhealthy.allocs[0]!.healthy, false);
  t.equal(unhealthy.healthySince.size, 0, 'unhealthy forgets when it was healthy');
});
