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
const h3 = await makeHost(t, ca, 'h3', '127.0.9.3', ['backend', 'steady']);
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
// The default drain delay (1 s): a stopping instance leaves routing and the proxies see it before it stops.
await startSimAgent(t, consul, 'h3', '127.0.9.3', () => url, { meshPort: h3.inboundPort, drainDelayMs: 1000 });

/** A request through h2's outbound port as `frontend`, with the Host naming the service. */
function call(path = '/', opts: { service?: string; method?: string; agent?: http.Agent } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.9.2', port: outboundPort, path, method: opts.method ?? 'GET', headers: { host: opts.service ?? 'backend' }, timeout: 60_000, agent: opts.agent ?? false }, (res) => {
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

t.test('scale-down under load: no request fails (the stopping instance leaves routing, drains, then stops)', async (t) => {
  const job = demoJob('steady', 'steady', {
    group: { count: 2 },
    task: { check: { http: '/health', interval: '1s', timeout: '1s' }, env: { DRAIN_MS: '2000', SERVICE: 'steady' } },
  });
  const submitted = await api(url, 'POST', '/v1/jobs', { spec: job });
  t.equal(submitted.status, 200, `job accepted ${submitted.text}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  // The demo app echoes the port it listens on: one per instance on this host.
  const instanceOf = (body: string): string => String((JSON.parse(body) as { port: number }).port);
  // Both instances serve through the mesh before the load starts.
  const seen = new Set<string>();
  await eventually(
    async () => {
      const r = await call('/', { service: 'steady', agent });
      if (r.status === 200) seen.add(instanceOf(r.body));
      return seen.size === 2 ? true : undefined;
    },
    40_000,
    'both instances of steady to answer through the mesh',
    100,
  );

  // POSTs are never retried by the proxy (not idempotent): a request sent to a stopped instance would fail here.
  // The load runs until the scale-down is over (one instance left in Consul) and 100 requests more; at most MAX.
  const MAX = 5000;
  const SCALE_AT = 100;
  const failures: string[] = [];
  const after: string[] = [];
  let sent = 0;
  let stopAt = MAX;
  let scaled: Promise<{ status: number; text: string }> | undefined;
  const worker = async (): Promise<void> => {
    while (sent < stopAt) {
      const i = sent++;
      if (i === SCALE_AT) scaled = api(url, 'POST', '/v1/jobs/steady/scale', { group: 'app', count: 1 });
      const r = await call(`/req-${i}`, { service: 'steady', method: 'POST', agent }).catch((err: Error) => ({ status: 0, headers: {} as http.IncomingHttpHeaders, body: err.message }));
      if (r.status !== 200) failures.push(`${i}: ${r.status} ${String(r.headers['x-weft-reason'] ?? r.body)}`);
      else if (stopAt !== MAX) after.push(instanceOf(r.body));
      // Paced: the load spans the scale-down (drain delay + drain), not a burst before it.
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const monitor = async (): Promise<void> => {
    await eventually(async () => (scaled === undefined ? undefined : true), 30_000, 'the scale request');
    await eventually(
      async () => {
        const s = (await api(url, 'GET', '/v1/jobs/steady/status')).body as { allocations: Array<{ status: string }> };
        const registered = (await consul.consul.health.service({ service: 'steady' })) as unknown[];
        return s.allocations.length === 1 && registered.length === 1 ? true : undefined;
      },
      60_000,
      'the scale-down to finish',
      100,
    );
    stopAt = Math.min(MAX, sent + 100);
  };
  await Promise.all([worker(), worker(), worker(), worker(), monitor()]);
  const scaleAnswer = await scaled;
  t.equal(scaleAnswer?.status, 200, `scaled to 1 ${scaleAnswer?.text ?? ''}`);
  t.ok(sent < MAX, `the scale-down finished within the load (${sent} requests)`);
  t.strictSame(failures, [], `every one of ${sent} requests succeeded across the scale-down`);
  t.equal(new Set(after).size, 1, 'the requests after it were all served by the remaining instance');
});
