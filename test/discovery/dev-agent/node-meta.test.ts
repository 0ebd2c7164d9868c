/**
 * Node Meta: the agent's own (Consul's -node-meta, here the nodeMeta option
 * and `--node-meta`), shown in catalog/nodes, agent/self and health entries;
 * and `?node-meta=key:value` (repeatable, all must match) on catalog/nodes,
 * catalog/services, catalog/service and health/service, which Prometheus'
 * consul_sd `node_meta` sends.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { isWeftError } from '../../../base/errors.js';
import { startDevConsul } from '../../../discovery/dev-agent/index.js';
import { consulError, startTestConsul, type TeardownHost, withMeta } from '../../helpers/dev-consul.js';

interface NodeJson {
  Node: string;
  Meta: Record<string, string>;
}

const META = { rack: 'r1', env: 'dev' };

async function withCatalog(t: TeardownHost) {
  const c = await startTestConsul(t, { nodeMeta: META });
  await c.consul.agent.service.register({ name: 'web', id: 'web-1', port: 80, tags: ['v1'] } as never);
  await c.consul.catalog.register({
    Node: 'ext-1',
    Address: '10.0.0.9',
    NodeMeta: { rack: 'r2', env: 'dev' },
    Service: { ID: 'web-ext', Service: 'web', Port: 8080, Tags: ['v2'] },
  } as never);
  await c.consul.catalog.register({ Node: 'ext-2', Address: '10.0.0.10', NodeMeta: { rack: 'r2' }, Service: { Service: 'db', Port: 5432 } } as never);
  return c;
}

async function get(address: string, path: string): Promise<unknown> {
  const res = await fetch(`http://${address}${path}`);
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

t.test("the node's Meta shows in catalog/nodes, agent/self and health/service", async (t) => {
  const { consul } = await withCatalog(t);
  const nodes = (await consul.catalog.node.list()) as NodeJson[];
  t.strictSame(nodes.find((n) => n.Node === 'weft-test')?.Meta, { ...META, 'consul-network-segment': '' }, 'Consul adds the segment key');
  const self = (await consul.agent.self()) as { Meta: Record<string, string> };
  t.strictSame(self.Meta, { ...META, 'consul-network-segment': '' });
  const health = (await consul.health.service('web')) as Array<{ Node: NodeJson; Service: { ID: string } }>;
  t.strictSame(
    health.map((e) => [e.Service.ID, e.Node.Meta['rack']]),
    [
      ['web-ext', 'r2'],
      ['web-1', 'r1'],
    ],
  );
  const svc = (await consul.catalog.service.nodes('web')) as Array<{ ServiceID: string; NodeMeta: Record<string, string> }>;
  t.equal(svc.find((s) => s.ServiceID === 'web-1')?.NodeMeta['env'], 'dev');
});

t.test('?node-meta filters catalog/nodes; every pair must match', async (t) => {
  const { consul, address } = await withCatalog(t);
  const names = (body: unknown): string[] => (body as NodeJson[]).map((n) => n.Node);
  t.strictSame(names(await consul.catalog.node.list({ 'node-meta': ['rack:r1'] } as never)), ['weft-test'], 'through the consul client');
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=rack:r2')), ['ext-1', 'ext-2']);
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=rack:r2&node-meta=env:dev')), ['ext-1']);
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=rack:r1&node-meta=env:prod')), []);
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=missing:x')), []);
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=rack')), [], 'no colon asks for an empty value');
  t.strictSame(names(await get(address, '/v1/catalog/nodes?node-meta=consul-network-segment:')), ['weft-test'], 'the value may be empty');
  t.strictSame(names(await get(address, '/v1/catalog/nodes')), ['ext-1', 'ext-2', 'weft-test'], 'no filter: every node');
  const r = await withMeta((o) => consul.catalog.node.list(o), { 'node-meta': ['rack:r1'] });
  t.ok(r.index >= 1, 'blocking headers as usual');
});

t.test('?node-meta filters catalog/services, catalog/service and health/service', async (t) => {
  const { consul, address } = await withCatalog(t);
  t.strictSame(await consul.catalog.service.list({ 'node-meta': ['rack:r2'] } as never), { db: [], web: ['v2'] }, 'only services on matching nodes, with their tags');
  t.strictSame(await get(address, '/v1/catalog/services?node-meta=rack:r1'), { consul: [], web: ['v1'] });
  t.strictSame(await get(address, '/v1/catalog/services?node-meta=rack:r2&node-meta=env:dev'), { web: ['v2'] });

  const catalogIds = (body: unknown): string[] => (body as Array<{ ServiceID: string }>).map((s) => s.ServiceID);
  t.strictSame(catalogIds(await consul.catalog.service.nodes({ service: 'web', 'node-meta': ['rack:r1'] } as never)), ['web-1']);
  t.strictSame(catalogIds(await get(address, '/v1/catalog/service/web?node-meta=env:dev')), ['web-ext', 'web-1']);
  t.strictSame(catalogIds(await get(address, '/v1/catalog/service/web?node-meta=env:dev&node-meta=rack:r2')), ['web-ext']);

  const healthIds = (body: unknown): string[] => (body as Array<{ Service: { ID: string } }>).map((e) => e.Service.ID);
  t.strictSame(healthIds(await consul.health.service({ service: 'web', 'node-meta': ['rack:r2'] } as never)), ['web-ext']);
  t.strictSame(healthIds(await get(address, '/v1/health/service/web?node-meta=rack:r1&node-meta=env:dev')), ['web-1']);
  t.strictSame(healthIds(await get(address, '/v1/health/service/web?node-meta=rack:r1&tag=v2')), [], 'combines with ?tag');
});

t.test('a reload hook can change the Meta; the node gets a new index and blocking watchers wake', async (t) => {
  let next: Record<string, string> | Error = { rack: 'r9' };
  const c = await startTestConsul(t, {
    nodeMeta: META,
    reload: () => {
      if (next instanceof Error) throw next;
      return { nodeMeta: next };
    },
  });
  const before = await withMeta((o) => c.consul.catalog.node.list(o), {});
  const parked = withMeta((o) => c.consul.catalog.node.list(o), { index: String(before.index), wait: '5m' });
  await c.consul.agent.reload();
  const woke = await parked;
  t.ok(woke.index > before.index, 'the node write committed a new index');
  t.strictSame((woke.body as NodeJson[])[0]?.Meta, { rack: 'r9', 'consul-network-segment': '' });
  t.strictSame(((await c.consul.agent.self()) as { Meta: unknown }).Meta, { rack: 'r9', 'consul-network-segment': '' });

  next = new Error('config file unreadable');
  const failed = await consulError(c.consul.agent.reload());
  t.equal(failed.statusCode, 500);
  t.match(failed.body, /config file unreadable/);
  next = { 'consul-bad': 'x' };
  const refused = await consulError(c.consul.agent.reload());
  t.equal(refused.statusCode, 500);
  t.match(refused.body, /Key prefix 'consul-' is reserved for internal use/);
  t.strictSame(((await c.consul.agent.self()) as { Meta: unknown }).Meta, { rack: 'r9', 'consul-network-segment': '' }, 'a failed reload changes nothing');
});

t.test('the Meta survives a restart and is replaced when the option changes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-meta-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const c = await startTestConsul(t, { dataDir: dir, nodeMeta: META });
  await c.restart();
  t.equal(((await c.consul.catalog.node.list()) as NodeJson[])[0]?.Meta['rack'], 'r1');
  await c.close();
  const again = await startTestConsul(t, { dataDir: dir, nodeMeta: { rack: 'r5' } });
  t.strictSame(((await again.consul.catalog.node.list()) as NodeJson[])[0]?.Meta, { rack: 'r5', 'consul-network-segment': '' });
  await again.close();
});

t.test('node Meta Consul would refuse is refused at start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-dev-consul-meta-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ 'consul-x': 'y' }, /Key prefix 'consul-' is reserved for internal use/],
    [{ 'bad key': 'y' }, /Key contains invalid characters/],
    [{ ['k'.repeat(129)]: 'y' }, /Key is too long \(limit: 128 characters\)/],
    [{ k: 'v'.repeat(513) }, /Value is too long \(limit: 512 characters\)/],
    [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])), /cannot contain more than 64 key\/value pairs/],
  ];
  for (const [nodeMeta, why] of cases) {
    const err = await startDevConsul({ bind: '127.0.0.1', port: 0, dataDir: dir, nodeName: 'n', datacenter: 'dc1', nodeMeta }).then(
      async (a) => {
        await a.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    t.ok(isWeftError(err, 'WEFT_ERR_CONFIG_INVALID'), `refused: ${String(why)}`);
    t.match((err as Error).message, why);
  }
});
