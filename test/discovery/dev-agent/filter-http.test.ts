/**
 * ?filter end to end: the dev agent over HTTP, through the `consul` client
 * (which passes `filter` on its list calls) and raw fetch where the client
 * has no call (catalog/node-services) or to read raw answers.
 */
// The client's typings lack `filter`, `index` and `wait` and demand check fields Consul does not: options go `as never`.
import t from 'tap';
import { consulError, startTestConsul, type TestConsul, withMeta } from '../../helpers/dev-consul.js';

interface HealthEntry {
  Service: { ID: string };
  Checks: Array<{ CheckID: string; Status: string }>;
}

const PREFIX = 'Failed to create boolean expression evaluator: ';

async function registerFleet(c: TestConsul): Promise<void> {
  const reg = (s: Record<string, unknown>) => c.consul.agent.service.register(s as never);
  await reg({ name: 'web', id: 'web-1', port: 8080, tags: ['prod', 'v2'], meta: { version: '1.2.3', weft_version: '0.1.0' }, check: { ttl: '30s', status: 'passing' } });
  await reg({ name: 'web', id: 'web-2', port: 8081, tags: ['canary'], meta: { version: '1.3.0' }, check: { ttl: '30s', status: 'critical' } });
  await reg({ name: 'db', id: 'db-1', port: 5432 });
}

async function get(c: TestConsul, path: string, filter?: string): Promise<{ status: number; text: string; type: string | null; index: string | null }> {
  const url = `http://${c.address}${path}${filter === undefined ? '' : `${path.includes('?') ? '&' : '?'}filter=${encodeURIComponent(filter)}`}`;
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type'), index: res.headers.get('x-consul-index') };
}

t.test('agent/services and agent/checks filter by Meta, tag, name and check status', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const services = (filter: string) => c.consul.agent.service.list({ filter } as never).then((m) => Object.keys(m as object));
  t.strictSame(await services('Meta.version == "1.2.3"'), ['web-1']);
  t.strictSame(await services('Meta["weft_version"] == `0.1.0`'), ['web-1']);
  t.strictSame(await services('Service == web and canary in Tags'), ['web-2']);
  t.strictSame(await services('Tags is empty'), ['db-1']);
  t.strictSame(await services('Service != web or Port == 8080'), ['db-1', 'web-1']);
  t.strictSame(await services('"version" not in Meta'), ['db-1']);
  t.strictSame(await services('Service matches "^w" and not Meta.version matches "^1\\\\.2"'), ['web-2']);
  const all = Object.keys((await c.consul.agent.service.list()) as object);
  t.strictSame(await c.consul.agent.service.list({ filter: '' } as never).then((m) => Object.keys(m as object)), all, 'an empty filter filters nothing');

  const checks = (filter: string) => c.consul.agent.check.list({ filter } as never).then((m) => Object.keys(m as object));
  t.strictSame(await checks('Status == critical'), ['service:web-2']);
  t.strictSame(await checks('ServiceTags contains prod'), ['service:web-1']);
  t.strictSame(await checks('ServiceName == web and Status != passing'), ['service:web-2']);
});

t.test('catalog lists filter their rows; catalog/node filters the node\'s services', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  await c.consul.catalog.register({ node: 'ext-1', address: '10.1.0.1', nodemeta: { rack: 'r2' }, service: { service: 'web', id: 'web-ext', port: 80, tags: ['prod'], meta: { version: '0.9' } } } as never);

  const rows = (await c.consul.catalog.service.nodes({ service: 'web', filter: 'ServiceMeta.version matches "^1\\\\." and Node == "weft-test"' } as never)) as Array<{ ServiceID: string }>;
  t.strictSame(rows.map((r) => r.ServiceID), ['web-1', 'web-2']);
  const byRack = (await c.consul.catalog.service.nodes({ service: 'web', filter: 'NodeMeta.rack == r2' } as never)) as Array<{ ServiceID: string }>;
  t.strictSame(byRack.map((r) => r.ServiceID), ['web-ext']);
  const tagged = (await c.consul.catalog.service.nodes({ service: 'web', filter: 'ServiceTags contains prod and ServicePort == 80' } as never)) as Array<{ ServiceID: string }>;
  t.strictSame(tagged.map((r) => r.ServiceID), ['web-ext']);

  t.strictSame(
    await c.consul.catalog.service.list({ filter: 'ServiceTags contains prod' } as never),
    { web: ['prod', 'v2'] },
    'catalog/services lists the names and tags of the instances the filter keeps',
  );
  t.strictSame(await c.consul.catalog.service.list({ filter: 'ServiceName == db' } as never), { db: [] });

  const nodes = (await c.consul.catalog.node.list({ filter: 'Meta.rack == r2 or Address == "127.0.0.1"' } as never)) as Array<{ Node: string }>;
  t.strictSame(nodes.map((n) => n.Node), ['ext-1', 'weft-test']);
  t.strictSame(await c.consul.catalog.node.list({ filter: 'Meta is empty and Node == "ext-1"' } as never), []);
  // Unquoted, ext-1 is the selector-like value `ext` followed by stray text, as in Consul.
  const unquoted = await consulError(c.consul.catalog.node.list({ filter: 'Node == ext-1' } as never));
  t.strictSame([unquoted.statusCode, unquoted.body], [400, `${PREFIX}1:12 (11): no match found, expected: ".", "[", [ \\t\\r\\n], [a-zA-Z0-9_] or EOF`]);

  const node = (await c.consul.catalog.node.services({ node: 'weft-test', filter: 'Port == 5432 or Service == consul' } as never)) as {
    Node: { Node: string };
    Services: Record<string, unknown>;
  };
  t.equal(node.Node.Node, 'weft-test', 'the node itself is not filtered');
  t.strictSame(Object.keys(node.Services).sort(), ['consul', 'db-1']);

  const listed = await get(c, '/v1/catalog/node-services/weft-test', 'Tags contains canary');
  t.equal(listed.status, 200);
  t.strictSame(
    (JSON.parse(listed.text) as { Services: Array<{ ID: string }> }).Services.map((s) => s.ID),
    ['web-2'],
  );
});

t.test('health endpoints filter checks and service entries', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const entries = async (filter: string) =>
    ((await c.consul.health.service({ service: 'web', filter } as never)) as HealthEntry[]).map((e) => e.Service.ID);
  t.strictSame(await entries('Checks.Status == critical'), ['web-2']);
  t.strictSame(await entries('Service.Meta.version == "1.2.3"'), ['web-1']);
  t.strictSame(await entries('Service.Tags contains canary or Service.Port == 8080'), ['web-1', 'web-2']);
  t.strictSame(await entries('Node.Node == "weft-test" and Checks.CheckID == serfHealth'), ['web-1', 'web-2']);
  t.strictSame(await entries('not Checks.Status != passing'), ['web-1'], 'every check passing');
  t.strictSame(
    ((await c.consul.health.service({ service: 'web', passing: true, filter: 'Service.Port == 8081' } as never)) as HealthEntry[]).length,
    0,
    '?passing and ?filter both apply',
  );

  const ids = (list: unknown) => (list as Array<{ CheckID: string }>).map((ch) => ch.CheckID);
  t.strictSame(ids(await c.consul.health.checks({ service: 'web', filter: 'Status == passing' } as never)), ['service:web-1']);
  t.strictSame(ids(await c.consul.health.node({ node: 'weft-test', filter: 'ServiceName == ""' } as never)), ['serfHealth']);
  t.strictSame(ids(await c.consul.health.state({ state: 'any', filter: 'ServiceID matches "^web-"' } as never)), ['service:web-1', 'service:web-2']);
  t.strictSame(ids(await c.consul.health.state({ state: 'critical', filter: 'ServiceTags is empty' } as never)), []);
});

t.test('a bad filter is a plain-text 400 with Consul\'s wording, before any blocking', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const bad = await consulError(c.consul.agent.service.list({ filter: 'foo' } as never));
  t.equal(bad.statusCode, 400);
  t.equal(bad.body, `${PREFIX}1:4 (3): no match found, expected: "!=", ".", "==", "[", [ \\t\\r\\n] or [a-zA-Z0-9_]`);

  const selector = await consulError(c.consul.catalog.service.nodes({ service: 'web', filter: 'Service == web' } as never));
  t.strictSame([selector.statusCode, selector.body], [400, `${PREFIX}Selector "Service" is not valid`], 'catalog rows spell it ServiceName');
  const operator = await consulError(c.consul.health.service({ service: 'web', filter: 'Service.Port matches "80"' } as never));
  t.strictSame([operator.statusCode, operator.body], [400, `${PREFIX}Invalid match operator "Matches" for selector "Service.Port"`]);
  const value = await consulError(c.consul.health.checks({ service: 'web', filter: 'Status == passing and ServiceTags == x' } as never));
  t.strictSame([value.statusCode, value.body], [400, `${PREFIX}Invalid match operator "Equal" for selector "ServiceTags"`]);

  // A blocking query with a bad filter fails at once instead of parking.
  const index = (await withMeta((o) => c.consul.health.service(o), { service: 'web' })).index;
  const raw = await get(c, `/v1/health/service/web?index=${index}&wait=5m`, 'Port == 1');
  t.strictSame([raw.status, raw.type, raw.text], [400, 'text/plain; charset=utf-8', `${PREFIX}Selector "Port" is not valid`]);
  const number = await get(c, '/v1/catalog/nodes', 'Address == 10.0.0.1');
  t.strictSame([number.status, number.text], [400, `${PREFIX}1:16 (15): rule "number": Invalid number literal`]);
});

t.test('?filter stays refused where Consul does not filter', async (t) => {
  const c = await startTestConsul(t);
  for (const path of ['/v1/kv/some/key', '/v1/agent/service/web-1', '/v1/agent/self', '/v1/catalog/datacenters', '/v1/session/list']) {
    const res = await get(c, path, 'Service == web');
    t.equal(res.status, 400, path);
    t.match(res.text, /^weft dev agent: \?filter is not supported on GET \//, path);
  }
  t.equal((await get(c, '/v1/kv/some/key', '')).status, 404, 'an empty ?filter is no filter');
});

t.test('filters and blocking queries: same index, wakes on change, cached per filter', async (t) => {
  const c = await startTestConsul(t);
  await registerFleet(c);
  const filter = 'Service.Meta.version == "1.2.3"';
  const plain = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  const filtered = await withMeta((o) => c.consul.health.service(o), { service: 'web', filter });
  t.equal(filtered.index, plain.index, 'X-Consul-Index does not depend on the filter');
  t.strictSame((plain.body as HealthEntry[]).map((e) => e.Service.ID), ['web-1', 'web-2']);
  t.strictSame(
    (filtered.body as HealthEntry[]).map((e) => e.Service.ID),
    ['web-1'],
    'answers are cached per request: the filtered one is not the unfiltered one at the same version',
  );
  const again = await withMeta((o) => c.consul.health.service(o), { service: 'web' });
  t.equal((again.body as HealthEntry[]).length, 2, 'nor the other way round');

  // Parked with and without the filter; a change to an instance the filter drops still wakes both, as in Consul.
  const parkedFiltered = withMeta((o) => c.consul.health.service(o), { service: 'web', filter, index: String(plain.index), wait: '60s' });
  const parkedPlain = withMeta((o) => c.consul.health.service(o), { service: 'web', index: String(plain.index), wait: '60s' });
  await c.consul.agent.check.pass('service:web-2' as never);
  const [woke, wokePlain] = await Promise.all([parkedFiltered, parkedPlain]);
  t.ok(woke.index > plain.index, 'the filtered query returns with the new index');
  t.equal(woke.index, wokePlain.index);
  t.strictSame((woke.body as HealthEntry[]).map((e) => e.Service.ID), ['web-1']);
  t.strictSame(
    (wokePlain.body as HealthEntry[]).map((e) => e.Service.ID),
    ['web-1', 'web-2'],
  );

  // A new instance that matches shows up in the next answer of a parked filtered query.
  const next = withMeta((o) => c.consul.health.service(o), { service: 'web', filter, index: String(woke.index), wait: '60s' });
  await c.consul.agent.service.register({ name: 'web', id: 'web-3', port: 8082, meta: { version: '1.2.3' } } as never);
  const after = await next;
  t.ok(after.index > woke.index);
  t.strictSame((after.body as HealthEntry[]).map((e) => e.Service.ID), ['web-1', 'web-3']);
});
