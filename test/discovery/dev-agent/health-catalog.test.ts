/** /v1/health, /v1/catalog and /v1/status through the `consul` client. */
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { consulError, startTestConsul, type TestConsul, withMeta } from '../../helpers/dev-consul.js';

interface HealthEntry {
  Node: { Node: string; Address: string; Datacenter: string };
  Service: { ID: string; Service: string; Tags: string[]; Port: number; Meta: Record<string, string> };
  Checks: Array<{ CheckID: string; Status: string; ServiceID: string; Output: string }>;
}

async function registerFleet(c: TestConsul): Promise<void> {
  const { consul } = c;
  await consul.agent.service.register({ name: 'web', id: 'h1-web-1', port: 8081, tags: ['weft', 'v1'], check: { ttl: '10s', status: 'passing' } } as never);
  await consul.agent.service.register({ name: 'web', id: 'h2-web-1', port: 8082, tags: ['weft', 'v2'], check: { ttl: '10s', status: 'warning' } } as never);
  await consul.agent.service.register({ name: 'web', id: 'h3-web-1', port: 8083, tags: ['weft', 'v1'], check: { ttl: '10s' } } as never);
  await consul.agent.service.register({ name: 'api', id: 'h1-api-1', port: 9000, tags: ['weft'] } as never);
}

t.test('health/service: entries with node and service checks; passing and tag filters', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const all = (await c.consul.health.service('web')) as HealthEntry[];
  t.strictSame(
    all.map((e) => e.Service.ID),
    ['h1-web-1', 'h2-web-1', 'h3-web-1'],
  );
  t.match(all[0], {
    Node: { Node: 'weft-test', Address: '127.0.0.1', Datacenter: 'dc1' },
    Service: { ID: 'h1-web-1', Service: 'web', Tags: ['weft', 'v1'], Port: 8081 },
  });
  t.strictSame(
    all[0]!.Checks.map((ch) => [ch.CheckID, ch.Status]),
    [
      ['serfHealth', 'passing'],
      ['service:h1-web-1', 'passing'],
    ],
    'node checks are part of every entry',
  );

  const passing = (await c.consul.health.service({ service: 'web', passing: true })) as HealthEntry[];
  t.strictSame(
    passing.map((e) => e.Service.ID),
    ['h1-web-1'],
    'warning and critical instances are not passing',
  );
  const v1 = (await c.consul.health.service({ service: 'web', tag: 'v1' })) as HealthEntry[];
  t.strictSame(
    v1.map((e) => e.Service.ID),
    ['h1-web-1', 'h3-web-1'],
  );
  // Repeated ?tag= must all match; the client's types take one tag, the querystring encoder repeats arrays.
  const both = (await c.consul.health.service({ service: 'web', tag: ['v1', 'weft'] as unknown as string })) as HealthEntry[];
  t.equal(both.length, 2);
  const none = (await c.consul.health.service({ service: 'web', tag: ['v1', 'v2'] as unknown as string })) as HealthEntry[];
  t.equal(none.length, 0);
  t.strictSame(await c.consul.health.service({ service: 'web', near: '_agent' }), all, '?near is accepted');
  t.strictSame(await c.consul.health.service('nothing'), []);
  t.equal(((await c.consul.health.service('api')) as HealthEntry[])[0]?.Checks.length, 1, 'only serfHealth');
});

t.test('health/checks, health/node and health/state', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const webChecks = await c.consul.health.checks('web');
  t.strictSame(
    webChecks.map((ch) => ch.CheckID),
    ['service:h1-web-1', 'service:h2-web-1', 'service:h3-web-1'],
  );
  const node = await c.consul.health.node('weft-test');
  t.strictSame(
    node.map((ch) => ch.CheckID),
    ['serfHealth', 'service:h1-web-1', 'service:h2-web-1', 'service:h3-web-1'],
  );
  t.strictSame(await c.consul.health.node('ghost'), []);
  const critical = await c.consul.health.state('critical');
  t.strictSame(
    critical.map((ch) => ch.CheckID),
    ['service:h3-web-1'],
  );
  t.equal((await c.consul.health.state('warning')).length, 1);
  t.equal((await c.consul.health.state('passing')).length, 2);
  t.equal((await c.consul.health.state('any')).length, 4);
});

t.test('a TTL check that is not refreshed turns critical, drops out of passing and wakes watchers', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.agent.service.register({ name: 'beat', id: 'b1', check: { ttl: '200ms' } } as never);
  await c.consul.agent.check.pass({ id: 'service:b1', note: 'alive' });
  const before = await withMeta((o) => c.consul.health.service(o), { service: 'beat', passing: true });
  t.equal((before.body as HealthEntry[]).length, 1);

  const started = performance.now();
  const woke = await withMeta((o) => c.consul.health.service(o), { service: 'beat', passing: true, index: String(before.index), wait: '5s' });
  const after = performance.now() - started;
  t.ok(after >= 150 && after < 600, `turned critical after ${Math.round(after)} ms`);
  t.ok(woke.index > before.index, 'the status change bumped the index');
  t.strictSame(woke.body, [], 'no longer passing');
  const check = (await c.consul.health.checks('beat'))[0]!;
  t.equal(check.Status, 'critical');
  t.equal(check.Output, 'TTL expired (last output before timeout follows): alive');
});

t.test('health/service blocking answers within 100 ms of a registration', async (t) => {
  const c = await startTestConsul(t);
  const first = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  t.ok(first.index >= 1);
  let wokeAt = 0;
  const parked = withMeta((o) => c.consul.health.service(o), { service: 'web', index: String(first.index), wait: '10s' }).then((r) => {
    wokeAt = performance.now();
    return r;
  });
  await new Promise((r) => setTimeout(r, 100));
  const at = performance.now();
  await c.consul.agent.service.register({ name: 'web', id: 'w1' } as never);
  const r = await parked;
  t.ok(wokeAt - at < 100, `woke ${Math.round(wokeAt - at)} ms after the registration`);
  t.equal((r.body as HealthEntry[]).length, 1);
});

t.test('per-service index: changes to other services do not move it', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const web = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  await c.consul.agent.service.register({ name: 'api', id: 'h2-api-1' } as never);
  const again = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  t.equal(again.index, web.index);
  const cat = await withMeta((o) => c.consul.catalog.service.nodes(o), { service: 'web' });
  t.equal(cat.index, web.index, 'catalog/service shares it');
});

t.test('catalog: datacenters, nodes, services, service, node', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  t.strictSame(await c.consul.catalog.datacenters(), ['dc1']);
  const nodes = (await c.consul.catalog.node.list()) as Array<{ Node: string; Address: string; ID: string }>;
  t.strictSame(
    nodes.map((n) => [n.Node, n.Address]),
    [['weft-test', '127.0.0.1']],
  );
  t.match(nodes[0]!.ID, /^[0-9a-f-]{36}$/);
  t.strictSame(await c.consul.catalog.services(), { api: ['weft'], consul: [], web: ['weft', 'v1', 'v2'] });

  const rows = (await c.consul.catalog.service.nodes('web')) as Array<Record<string, unknown>>;
  t.equal(rows.length, 3);
  t.match(rows[0], { Node: 'weft-test', Address: '127.0.0.1', ServiceID: 'h1-web-1', ServiceName: 'web', ServicePort: 8081, ServiceTags: ['weft', 'v1'] });
  t.equal(((await c.consul.catalog.service.nodes({ service: 'web', tag: 'v2' })) as unknown[]).length, 1);

  const node = (await c.consul.catalog.node.services('weft-test')) as { Node: { Node: string }; Services: Record<string, unknown> };
  t.equal(node.Node.Node, 'weft-test');
  t.strictSame(Object.keys(node.Services).sort(), ['consul', 'h1-api-1', 'h1-web-1', 'h2-web-1', 'h3-web-1']);
  // Consul (and the agent) answer `null`; the client turns a falsy body into undefined.
  t.notOk(await c.consul.catalog.node.services('ghost'), 'an unknown node answers null');
});

t.test('catalog register and deregister an external node', async (t) => {
  const c = await startTestConsul(t);
  await c.consul.catalog.register({
    node: 'ext-db',
    address: '127.0.0.9',
    service: { service: 'postgres', id: 'pg1', port: 5432, tags: ['primary'] },
    check: { checkid: 'pg-alive', name: 'pg alive', serviceid: 'pg1', status: 'passing' },
  });
  const entries = (await c.consul.health.service({ service: 'postgres', passing: true })) as HealthEntry[];
  t.equal(entries.length, 1);
  t.match(entries[0], { Node: { Node: 'ext-db', Address: '127.0.0.9' }, Service: { ID: 'pg1', Port: 5432 } });
  t.strictSame(await c.consul.agent.services(), {}, 'catalog entries are not agent services');

  await c.consul.catalog.deregister({ node: 'ext-db', serviceid: 'pg1' });
  t.strictSame(await c.consul.health.service('postgres'), []);
  await c.consul.catalog.deregister('ext-db');
  t.equal(((await c.consul.catalog.node.list()) as unknown[]).length, 1);
  const bad = await consulError(c.consul.catalog.register({ node: 'x', address: '127.0.0.1', check: { name: 'c', status: 'sideways' } } as never));
  t.equal(bad.statusCode, 400);
});

t.test('status: leader and peers', async (t) => {
  const c = await startTestConsul(t);
  t.equal(await c.consul.status.leader(), '127.0.0.1:8300');
  t.strictSame(await c.consul.status.peers(), ['127.0.0.1:8300']);
});

t.test('catalog and health honour ?dc and carry query meta', async (t) => {
  const c = await startTestConsul(t);
  const ok = await withMeta((o) => c.consul.catalog.services(o), { dc: 'dc1', stale: true });
  t.equal(ok.headers['x-consul-effective-consistency'], 'stale');
  t.equal(ok.headers['x-consul-knownleader'], 'true');
  const other = await consulError(c.consul.health.service({ service: 'web', dc: 'eu-west' }));
  t.strictSame([other.statusCode, other.body], [500, 'No path to datacenter']);
  t.strictSame(await c.consul.health.service({ service: 'web', filter: 'Service.Port == 1' }), [], '?filter applies');
});
