/**
 * The agent issue's headline, end to end: a container started by hand with
 * `docker run --label weft.service=...` on host h3 gets registered by h3's
 * agent (its registrar) and becomes routable from h2 through the mesh:
 *
 *   test -> weft proxy h2 outbound (127.0.0.2) -mTLS-> weft proxy h3 inbound (127.0.0.3) -> container (127.0.0.3)
 *
 * `docker kill` then takes it out of routing: the caller gets weft's 503
 * "no instances" instead of a connection error. Real dockerd, real `weft
 * proxy` processes, the dev Consul agent.
 */
import http from 'node:http';
import t from 'tap';
import { DockerDriver } from '../../agent/drivers/docker.js';
import { Registrar } from '../../agent/registrar.js';
import { createDiscoveryClient } from '../../discovery/client.js';
import { captureLogger } from '../agent/helpers.js';
import { makeCa } from '../certs/fixtures.js';
import { eventually } from '../helpers/eventually.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { useDocker } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';
import { makeHost, startProxy, writeLocal } from './proxy-hosts.js';

const docker = await useDocker(t);
const ca = makeCa();
const consul = await startTestConsul(t);
const h2 = await makeHost(t, ca, 'h2', '127.0.0.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.0.3', ['web']);
const outboundPort = await freePort('127.0.0.2');
await writeLocal(h2, [{ service: 'frontend', outboundPort }]);
await startProxy(t, h2, consul.address);
await startProxy(t, h3, consul.address);

// h3's agent, as far as registration by label goes (the part under test).
const client = createDiscoveryClient({ consul: { address: consul.address } });
t.teardown(() => client.close());
const driver = new DockerDriver();
t.teardown(() => driver.close());
const { logger, lines } = captureLogger();
const registrar = new Registrar({
  driver,
  client,
  host: h3.node,
  hostAddress: h3.address,
  meshPort: h3.inboundPort,
  logger,
  drainDelayMs: 200,
  labelFilter: `io.weft.test=${process.pid}`,
});
t.teardown(() => registrar.stop());
await registrar.start();

/** One GET for `web` through h2's outbound port, as `frontend`. */
function callWeb(): Promise<{ status: number; body: string; reason: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h2.address, port: outboundPort, path: '/hello', headers: { host: 'web' }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reason: res.headers['x-weft-reason'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

t.test('a labelled container started by hand becomes routable through two proxies, and leaves routing when killed', async (t) => {
  const port = await freePort(h3.address);
  const labels = { ...docker.testLabels, 'weft.service': 'web', 'weft.port': String(port), 'weft.check.http': '/health', 'weft.check.interval': '1s' };
  const args = ['run', '-d', '--network', 'host', '--name', `web-mesh-${process.pid}`, '-e', `HOST=${h3.address}`, '-e', `PORT=${port}`, '-e', 'SERVICE=web'];
  for (const [k, v] of Object.entries(labels)) args.push('--label', `${k}=${v}`);
  const id = (await docker.cli(...args, docker.image)).trim();
  t.ok(id.length > 0, 'docker run started the container');

  let last: unknown;
  const served = await eventually(async () => {
    const r = await callWeb().catch((err: Error) => err.message);
    last = r;
    return typeof r === 'object' && r.status === 200 ? r : undefined;
  }, 20_000, 'the container to answer through the mesh').catch(async (err: Error) => {
    const health = await consul.consul.health.service({ service: 'web' });
    throw new Error(`${err.message}; last answer ${JSON.stringify(last)}; Consul: ${JSON.stringify(health)}; agent log: ${JSON.stringify(lines.slice(-5))}`);
  });
  t.match(served.body, /web/, 'the demo app in the container answered');

  const registered = (await consul.consul.health.service({ service: 'web', passing: true })) as Array<{ Service: { ID: string; Meta: Record<string, string> } }>;
  t.equal(registered.length, 1);
  t.equal(registered[0]!.Service.ID, `h3-${id.slice(0, 12)}`, 'ID is <host>-<instance>');
  t.equal(registered[0]!.Service.Meta['weft_mesh_port'], String(h3.inboundPort), 'reached through the host proxy');

  await docker.cli('kill', id);
  const after = await eventually(async () => {
    const r = await callWeb().catch(() => undefined);
    return r !== undefined && r.status !== 200 ? r : undefined;
  }, 5000, 'the killed container to leave routing');
  t.equal(after.status, 503, 'the caller gets a clear 503, not a hang');
  t.match(after.reason ?? '', /no instances of service web/);
});
