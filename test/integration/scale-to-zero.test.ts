/**
 * Scale to zero and back, end to end, all real: the dev Consul agent, an
 * in-process scheduler whose autoscaler scrapes the REAL `weft proxy`
 * processes, a host agent (process driver) on h3 running the demo app as
 * `backend`, h3's proxy in front of it and h2's proxy carrying the calls of
 * `frontend` (this test, on h2's outbound port):
 *
 *   test -> weft proxy h2 outbound -mTLS-> weft proxy h3 inbound -> backend (h3)
 *
 * With no traffic, `idleToZero` takes backend to 0; the next request is held
 * by h2's proxy, which writes `weft/activate/backend`; the leader raises the
 * group to 1 at once and the request is answered by the new instance, with
 * `x-weft-cold-start: true`.
 */
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config/load.js';
import { startScheduler } from '../../src/wiring/scheduler-process.js';
import { captureLogger } from '../agent/helpers.js';
import { makeCa } from '../certs/fixtures.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { makeHost, startProxy, writeLocal } from './proxy-hosts.js';
import { api, demoJob, startSimAgent, TOKEN } from './scheduler-cluster.js';

const ca = makeCa();
const consul = await startTestConsul(t);
const h2 = await makeHost(t, ca, 'h2', '127.0.9.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.9.3', ['backend']);
const outboundPort = await freePort('127.0.9.2');
await writeLocal(h2, [{ service: 'frontend', outboundPort }]);
await startProxy(t, h2, consul.address);
await startProxy(t, h3, consul.address);

const dataDir = await mkdtemp(join(tmpdir(), 'weft-zero-'));
t.teardown(() => rm(dataDir, { recursive: true, force: true }));
const port = await freePort();
const { logger, lines } = captureLogger();
const scheduler = await startScheduler({
  config: loadConfig({
    env: {},
    flags: {
      dataDir,
      nodeName: 'sched-zero',
      'consul.address': consul.address,
      'scheduler.port': port,
      'scheduler.token': TOKEN,
      'scheduler.leaderTtlMs': 2000,
      'scheduler.reconcileIntervalMs': 1000,
      'scheduler.register': false,
    },
  }),
  logger,
  autoscale: { warmupMs: 0 },
});
t.teardown(() => scheduler.close());
const url = `http://127.0.0.1:${port}`;
await eventually(() => scheduler.isLeader(), 20_000, 'the scheduler leads');
await startSimAgent(t, consul, 'h3', '127.0.9.3', () => url, { meshPort: h3.inboundPort });

/** GET through h2's outbound port as `frontend`, with the Host naming the service. */
function call(path = '/'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.9.2', port: outboundPort, path, headers: { host: 'backend' }, timeout: 60_000, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

const count = async (): Promise<number> => ((await api(url, 'GET', '/v1/jobs/backend')).body as { spec: { groups: Array<{ count?: number }> } }).spec.groups[0]!.count ?? 1;
const logTail = (): string =>
  lines
    .slice(-15)
    .map((l) => String(l['msg']))
    .join('\n');

t.test('idle to zero, then a request wakes the service: held, activated, answered by the new instance', async (t) => {
  const job = demoJob('backend', 'backend', {
    group: { count: 1, autoscale: { min: 0, max: 2, metrics: [{ rps: 50 }], idleToZero: '3s', interval: '500ms' } },
    task: { check: { http: '/health', interval: '1s', timeout: '1s' }, env: { DRAIN_MS: '200', SERVICE: 'backend' } },
  });
  const submitted = await api(url, 'POST', '/v1/jobs', { spec: job });
  t.equal(submitted.status, 200, `job accepted ${submitted.text}`);
  if (submitted.status !== 200) return;

  const warm = await eventually(
    async () => {
      const r = await call('/warm');
      return r.status === 200 ? r : undefined;
    },
    40_000,
    'backend to answer through the mesh',
    250,
  );
  t.equal(warm.status, 200, 'the first request (held while the first instance started) is answered');
  const again = await call('/warm');
  t.equal(again.headers['x-weft-cold-start'], undefined, 'an answer from a running instance has no cold-start header');

  const zero = await eventually(async () => JSON.parse(String((await consul.consul.kv.get('weft/zero/backend'))?.Value ?? 'null')) as unknown, 10_000, 'weft/zero/backend');
  t.strictSame(zero, { job: 'backend', group: 'app' }, 'the leader marks backend as able to reach zero');

  await eventually(async () => ((await count()) === 0 ? true : undefined), 30_000, `backend at 0 after 3s idle\n${logTail()}`, 250);
  await eventually(
    async () => ((await consul.consul.health.service({ service: 'backend' })) as unknown[]).length === 0 || undefined,
    20_000,
    'the instance gone from Consul',
    250,
  );

  const cold = await call('/cold');
  t.equal(cold.status, 200, 'the request held at zero succeeds');
  t.equal(cold.headers['x-weft-cold-start'], 'true', 'and says it was a cold start');
  t.match(JSON.parse(cold.body), { service: 'backend', path: '/cold' }, 'answered by the backend app');
  t.equal(await count(), 1, 'the activation raised the group to 1');
  const status = (await api(url, 'GET', '/v1/jobs/backend/status')).body as { events: Array<{ type: string; message: string }> };
  t.ok(
    status.events.some((e) => e.type === 'autoscaled' && /activation: a request is waiting for the service at zero: 0 -> 1/.test(e.message)),
    'the activation is an event',
  );
});
