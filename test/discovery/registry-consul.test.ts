/** Registering instances in the real dev agent over HTTP and reading them back through /v1/health/service. */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import t from 'tap';
import { DiscoveryClient } from '../../discovery/client.js';
import { decodeLabels, type Registration } from '../../base/contracts/labels.js';
import { deregisterInstance, listInstances, registerInstance } from '../../discovery/registry.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';

function registration(labels: Record<string, string>, fastChecks = true): Registration {
  const r = decodeLabels(labels);
  if (!r.ok || r.registration === null) throw new Error(`test labels must decode: ${JSON.stringify(r)}`);
  // Labels allow >= 1s; the library takes what the agent gives it, and tests want 50 ms.
  if (fastChecks) r.registration.check = { ...r.registration.check, intervalMs: 50, timeoutMs: 50 };
  return r.registration;
}

t.test('register with the Meta contract, read back through health/service, deregister', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());

  const app = createHttpServer((req, res) => {
    res.writeHead(req.url === '/healthz' ? 200 : 404);
    res.end('ok');
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  t.teardown(() => app.close());
  const port = (app.address() as { port: number }).port;

  const id = await registerInstance(client, {
    host: 'node-1',
    hostAddress: '127.0.0.1',
    instance: 'web-1',
    meshPort: 15443,
    registration: registration({
      'weft.service': 'web',
      'weft.port': String(port),
      'weft.weight': '7',
      'weft.version': 'v3',
      'weft.tags': 'canary',
      'weft.check.http': '/healthz',
      'weft.check.failures': '1',
    }),
  });
  t.equal(id, 'node-1-web-1');

  const healthy = await eventually(
    async () => {
      const list = await listInstances(client, 'web');
      return list.length === 1 ? list : undefined;
    },
    5000,
    'the HTTP check to pass',
    25,
  );
  t.strictSame(healthy, [
    { id: 'node-1-web-1', service: 'web', host: 'node-1', address: '127.0.0.1', port, version: 'v3', weight: 7, meshPort: 15443, tags: ['weft', 'canary'], healthy: true },
  ]);

  // The raw answer, exactly as Consul clients other than weft's see it.
  const raw = (await c.consul.health.service({ service: 'web' })) as Array<{
    Service: { ID: string; Meta: Record<string, string>; Tags: string[]; Address: string; Port: number };
    Checks: Array<{ CheckID: string; Status: string; Type?: string }>;
  }>;
  t.strictSame(raw[0]!.Service.Meta, { weft_host: 'node-1', weft_instance: 'web-1', weft_version: 'v3', weft_weight: '7', weft_mesh_port: '15443' });
  t.strictSame([raw[0]!.Service.Address, raw[0]!.Service.Port, raw[0]!.Service.Tags], ['127.0.0.1', port, ['weft', 'canary']]);
  t.ok(
    raw[0]!.Checks.some((ch) => ch.CheckID === 'service:node-1-web-1:http' && ch.Status === 'passing'),
    'the HTTP check is registered under its ID and passing',
  );
  const checks = (await c.consul.agent.checks()) as Record<string, { Definition?: Record<string, unknown>; Type?: string }>;
  t.ok(checks['service:node-1-web-1:http'], 'the agent lists the check');

  // The app goes away: the check fails, passing-only reads drop the instance, the full read flags it.
  await new Promise<void>((resolve) => {
    app.closeAllConnections();
    app.close(() => resolve());
  });
  await eventually(async () => ((await listInstances(client, 'web')).length === 0 ? true : undefined), 5000, 'the check to go critical', 25);
  t.match(await listInstances(client, 'web', { passing: false }), [{ id: 'node-1-web-1', healthy: false }]);

  await deregisterInstance(client, id);
  t.strictSame(await listInstances(client, 'web', { passing: false }), []);
});

t.test('TCP check by default; re-registering replaces by ID', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const srv = createTcpServer((s) => s.end());
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;

  const spec = { host: 'h', hostAddress: '127.0.0.1', instance: 'db-0', meshPort: 15443, registration: registration({ 'weft.service': 'db', 'weft.port': String(port) }) };
  await registerInstance(client, spec);
  await eventually(async () => ((await listInstances(client, 'db')).length === 1 ? true : undefined), 5000, 'the TCP check to pass', 25);
  await registerInstance(client, { ...spec, registration: { ...spec.registration, weight: 0 } });
  const again = await eventually(
    async () => {
      const list = await listInstances(client, 'db', { passing: false });
      return list[0]?.weight === 0 ? list : undefined;
    },
    5000,
    'the new weight',
    25,
  );
  t.equal(again.length, 1, 'still one instance');
});

t.test('deregistering an unknown instance is a coded request error with status and path', async (t) => {
  const c = await startTestConsul(t);
  const client = new DiscoveryClient({ address: c.address });
  t.teardown(() => client.close());
  const err = await deregisterInstance(client, 'nope-1').catch((e: unknown) => e);
  t.match(err, { code: 'WEFT_ERR_CONSUL_REQUEST', status: 404, method: 'PUT', path: '/v1/agent/service/deregister/nope-1' });
});
