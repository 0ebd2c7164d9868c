/** /v1/agent/* through the `consul` client: registration, checks, TTL updates, maintenance and errors. */
// The `consul` client's typings demand fields Consul does not (a check `timeout`, lower-case txn
// ops), so option objects it would reject at compile time are passed `as never`.
import t from 'tap';
import { consulError, startTestConsul, withMeta } from '../../helpers/dev-consul.js';

interface Check {
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  Notes: string;
  ServiceID: string;
  ServiceName: string;
  ServiceTags: string[];
  Type: string;
}

t.test('self and members describe one server node', async (t) => {
  const { consul } = await startTestConsul(t);
  const self = (await consul.agent.self()) as { Config: Record<string, unknown>; Member: { Name: string; Status: number } };
  t.match(self.Config, { Datacenter: 'dc1', NodeName: 'weft-test', Server: true });
  t.match(self.Member, { Name: 'weft-test', Status: 1 });
  const members = (await consul.agent.members()) as Array<{ Name: string; Addr: string }>;
  t.strictSame(
    members.map((m) => [m.Name, m.Addr]),
    [['weft-test', '127.0.0.1']],
  );
});

t.test('register with Check, list, read one, deregister', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.agent.service.register({
    name: 'web',
    id: 'h1-web-1',
    address: '127.0.0.2',
    port: 8080,
    tags: ['weft', 'v1'],
    meta: { weft_host: 'h1', weft_weight: '10' },
    check: { ttl: '10s' },
  } as never);
  const services = (await consul.agent.services()) as Record<string, Record<string, unknown>>;
  t.strictSame(Object.keys(services), ['h1-web-1'], 'the consul service is not an agent service');
  t.strictSame(services['h1-web-1'], {
    ID: 'h1-web-1',
    Service: 'web',
    Tags: ['weft', 'v1'],
    Meta: { weft_host: 'h1', weft_weight: '10' },
    Port: 8080,
    Address: '127.0.0.2',
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Datacenter: 'dc1',
  });

  const checks = (await consul.agent.checks()) as Record<string, Check>;
  t.match(checks['service:h1-web-1'], {
    Name: "Service 'web' check",
    Status: 'critical',
    ServiceID: 'h1-web-1',
    ServiceName: 'web',
    ServiceTags: ['weft', 'v1'],
    Type: 'ttl',
  });
  t.notOk('serfHealth' in checks, 'node checks of the catalog are not agent checks');

  await consul.agent.service.deregister('h1-web-1');
  t.strictSame(await consul.agent.services(), {});
  t.strictSame(await consul.agent.checks(), {}, 'deregistering a service removes its checks');
});

t.test('Checks get numbered IDs; ID defaults to Name; re-registering keeps the verdict', async (t) => {
  const { consul } = await startTestConsul(t);
  const def = { name: 'api', port: 9000, checks: [{ ttl: '10s' }, { ttl: '10s', status: 'passing' }, { ttl: '10s', checkid: 'custom', name: 'Custom' }] };
  await consul.agent.service.register(def as never);
  let checks = (await consul.agent.checks()) as Record<string, Check>;
  t.strictSame(Object.keys(checks).sort(), ['custom', 'service:api:1', 'service:api:2']);
  t.equal(checks['service:api:2']?.Status, 'passing', 'Status sets the initial state');
  t.equal(checks['custom']?.Name, 'Custom');

  await consul.agent.check.pass({ id: 'service:api:1', note: 'ok' });
  await consul.agent.service.register(def as never);
  checks = (await consul.agent.checks()) as Record<string, Check>;
  t.equal(checks['service:api:1']?.Status, 'passing', 'a re-registration does not flap health');
  t.equal(checks['service:api:1']?.Output, 'ok');
});

t.test('replace-existing-checks drops checks missing from the new definition', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'db', checks: [{ ttl: '10s' }, { ttl: '10s' }] } as never);
  // node-consul cannot send ?replace-existing-checks; the body is what the client sends.
  const res = await fetch(`http://${address}/v1/agent/service/register?replace-existing-checks`, {
    method: 'PUT',
    body: JSON.stringify({ Name: 'db', Check: { TTL: '10s' } }),
  });
  t.equal(res.status, 200);
  t.strictSame(Object.keys((await consul.agent.checks()) as object), ['service:db']);
});

t.test('service/:id answers with a ContentHash and blocks on ?hash', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'w1', port: 1 } as never);
  // The client has no call for GET /v1/agent/service/:id.
  const first = await fetch(`http://${address}/v1/agent/service/w1`);
  const svc = (await first.json()) as { ID: string; ContentHash: string };
  t.equal(svc.ID, 'w1');
  t.equal(first.headers.get('x-consul-contenthash'), svc.ContentHash);
  const parked = fetch(`http://${address}/v1/agent/service/w1?hash=${svc.ContentHash}&wait=5s`).then((r) => r.json());
  await new Promise((r) => setTimeout(r, 50));
  await consul.agent.service.register({ name: 'web', id: 'w1', port: 2 } as never);
  const changed = (await parked) as { Port: number; ContentHash: string };
  t.equal(changed.Port, 2);
  t.not(changed.ContentHash, svc.ContentHash);
  const missing = await fetch(`http://${address}/v1/agent/service/nope`);
  t.equal(missing.status, 404);
  t.equal(await missing.text(), 'unknown service ID: nope');
});

t.test('TTL checks: pass, warn, fail with notes; update with Status and Output', async (t) => {
  const { consul, address } = await startTestConsul(t);
  await consul.agent.check.register({ name: 'heartbeat', ttl: '10s' } as never);
  const status = async (): Promise<Check> => ((await consul.agent.checks()) as Record<string, Check>)['heartbeat']!;
  t.match(await status(), { CheckID: 'heartbeat', Status: 'critical', ServiceID: '' }, 'new checks start critical');

  await consul.agent.check.pass({ id: 'heartbeat', note: 'all good' });
  t.match(await status(), { Status: 'passing', Output: 'all good' });
  await consul.agent.check.warn('heartbeat');
  t.match(await status(), { Status: 'warning', Output: '' });
  await consul.agent.check.fail({ id: 'heartbeat', note: 'down' });
  t.match(await status(), { Status: 'critical', Output: 'down' });

  // The client has no call for /v1/agent/check/update.
  const upd = await fetch(`http://${address}/v1/agent/check/update/heartbeat`, {
    method: 'PUT',
    body: JSON.stringify({ Status: 'passing', Output: 'from update' }),
  });
  t.equal(upd.status, 200);
  t.match(await status(), { Status: 'passing', Output: 'from update' });
  const bad = await fetch(`http://${address}/v1/agent/check/update/heartbeat`, { method: 'PUT', body: JSON.stringify({ Status: 'fine' }) });
  t.equal(bad.status, 400);
  t.equal(await bad.text(), "Invalid check status: 'fine'");

  await consul.agent.check.deregister('heartbeat');
  t.strictSame(await consul.agent.checks(), {});
});

t.test('check register: ServiceID links it; errors follow Consul', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'w1', tags: ['a'] } as never);
  await consul.agent.check.register({ name: 'extra', id: 'extra-1', serviceid: 'w1', ttl: '5s', notes: 'why' } as never);
  t.match(((await consul.agent.checks()) as Record<string, Check>)['extra-1'], { ServiceID: 'w1', ServiceName: 'web', Notes: 'why', ServiceTags: ['a'] });

  const noService = await consulError(consul.agent.check.register({ name: 'x', serviceid: 'ghost', ttl: '5s' } as never));
  t.strictSame([noService.statusCode, noService.body], [400, 'ServiceID "ghost" does not exist']);
  const noInterval = await consulError(consul.agent.check.register({ name: 'x', http: 'http://127.0.0.1:1/', interval: '0s' } as never));
  t.equal(noInterval.statusCode, 400);
});

t.test('unknown IDs are 404s; TTL verbs on a non-TTL check are 500s', async (t) => {
  const { consul } = await startTestConsul(t);
  const dereg = await consulError(consul.agent.service.deregister('ghost'));
  t.equal(dereg.statusCode, 404);
  t.equal(dereg.body, 'Unknown service ID "ghost". Ensure that the service ID is passed, not the service name.');
  for (const call of [consul.agent.check.pass('ghost'), consul.agent.check.deregister('ghost')]) {
    const err = await consulError(call);
    t.equal(err.statusCode, 404);
    t.equal(err.body, 'Unknown check ID "ghost". Ensure that the check ID is passed, not the check name.');
  }
  await consul.agent.check.register({ name: 'tcp', tcp: '127.0.0.1:1', interval: '10s' } as never);
  const notTtl = await consulError(consul.agent.check.pass('tcp'));
  t.strictSame([notTtl.statusCode, notTtl.body], [500, 'CheckID "tcp" does not have associated TTL']);
});

t.test('bad JSON and missing names are 400s with Consul texts', async (t) => {
  const { consul, address } = await startTestConsul(t);
  // The client always sends valid JSON, so malformed bodies are sent by hand.
  for (const path of ['/v1/agent/service/register', '/v1/agent/check/register', '/v1/session/create', '/v1/txn', '/v1/catalog/register']) {
    const res = await fetch(`http://${address}${path}`, { method: 'PUT', body: '{"Name": ' });
    t.equal(res.status, 400, path);
    t.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    t.match(await res.text(), /^Request decode failed: /);
  }
  const noName = await fetch(`http://${address}/v1/agent/service/register`, { method: 'PUT', body: '{"Port": 1}' });
  t.strictSame([noName.status, await noName.text()], [400, 'Missing service name']);
  const badType = await fetch(`http://${address}/v1/agent/service/register`, { method: 'PUT', body: '{"Name": "a", "Port": "80"}' });
  t.equal(badType.status, 400);
  t.match(await badType.text(), /cannot unmarshal string into Go struct field .Port/);
  const noCheckName = await consulError(consul.agent.check.register({ name: '', ttl: '1s' } as never));
  t.equal(noCheckName.statusCode, 0, 'the client itself refuses a check without a name');
});

t.test('service maintenance adds and removes a critical _service_maintenance check', async (t) => {
  const { consul } = await startTestConsul(t);
  await consul.agent.service.register({ name: 'web', id: 'w1', check: { ttl: '10s', status: 'passing' } } as never);
  await consul.agent.service.maintenance({ id: 'w1', enable: true, reason: 'deploying' });
  let checks = (await consul.agent.checks()) as Record<string, Check>;
  t.match(checks['_service_maintenance:w1'], {
    Name: 'Service Maintenance Mode',
    Status: 'critical',
    Notes: 'deploying',
    ServiceID: 'w1',
    ServiceName: 'web',
  });
  t.equal((await consul.health.service({ service: 'web', passing: true })).length, 0, 'maintenance takes it out of passing');

  await consul.agent.service.maintenance({ id: 'w1', enable: false });
  checks = (await consul.agent.checks()) as Record<string, Check>;
  t.notOk('_service_maintenance:w1' in checks);
  t.equal((await consul.health.service({ service: 'web', passing: true })).length, 1);

  const unknown = await consulError(consul.agent.service.maintenance({ id: 'ghost', enable: true }));
  t.strictSame([unknown.statusCode, unknown.body], [404, 'Unknown service ID "ghost"']);

  await consul.agent.maintenance({ enable: true });
  const node = (await consul.agent.checks()) as Record<string, Check>;
  t.match(node['_node_maintenance'], { Name: 'Node Maintenance Mode', Status: 'critical', ServiceID: '' });
  t.match(node['_node_maintenance']?.Notes, /no reason was provided/);
  await consul.agent.maintenance(false);
});

t.test('agent endpoints ignore ?dc and answer without an index', async (t) => {
  const { consul } = await startTestConsul(t);
  const r = await withMeta((o) => consul.agent.services(o), { dc: 'elsewhere' });
  t.equal(r.status, 200);
  t.equal(r.headers['x-consul-index'], undefined);
});
