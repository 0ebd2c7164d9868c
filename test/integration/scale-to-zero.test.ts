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
 * `x-weft-cold-start: true`. A scale-down under load loses no request. A
 * load step moves the count to what the calculator predicts, steady load
 * keeps it there, and removing the load brings it back down after the window.
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

// Three scenarios with real processes, each waiting on the autoscaler and the agent: more than tap's default.
t.setTimeout(300_000);
const ca = makeCa();
const consul = await startTestConsul(t);
const h2 = await makeHost(t, ca, 'h2', '127.0.9.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.9.3', ['backend', 'steady', 'stepper']);
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
    .slice(-40)
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
  // Both instances registered and passing, and the mesh answering, before the load starts.
  await eventually(
    async () => {
      const passing = (await consul.consul.health.service({ service: 'steady', passing: true })) as unknown[];
      return passing.length === 2 && (await call('/', { service: 'steady', agent })).status === 200 ? true : undefined;
    },
    40_000,
    'both instances of steady passing and the mesh answering',
    100,
  );

  // POSTs are never retried by the proxy (not idempotent): a request sent to a stopped instance would fail here.
  // The load runs until the scale-down is over (one instance left in Consul) and 100 requests more; at most MAX.
  const MAX = 5000;
  const SCALE_AT = 100;
  const failures: string[] = [];
  const after: string[] = [];
  const before = new Set<string>();
  let sent = 0;
  let stopAt = MAX;
  let scaled: Promise<{ status: number; text: string }> | undefined;
  const worker = async (): Promise<void> => {
    while (sent < stopAt) {
      const i = sent++;
      if (i === SCALE_AT) scaled = api(url, 'POST', '/v1/jobs/steady/scale', { group: 'app', count: 1 });
      const r = await call(`/req-${i}`, { service: 'steady', method: 'POST', agent }).catch((err: Error) => ({ status: 0, headers: {} as http.IncomingHttpHeaders, body: err.message }));
      if (r.status !== 200) failures.push(`${i}: ${r.status} ${String(r.headers['x-weft-reason'] ?? r.body)}`);
      // After the scale-down, less the requests the caller's proxy sent before its watch caught up.
      else if (stopAt !== MAX && i >= stopAt - 60) after.push(instanceOf(r.body));
      else if (i < SCALE_AT) before.add(instanceOf(r.body));
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
  t.comment(`instances that answered before the scale-down: ${[...before].join(', ')}`);
  const scaleAnswer = await scaled;
  t.equal(scaleAnswer?.status, 200, `scaled to 1 ${scaleAnswer?.text ?? ''}`);
  t.ok(sent < MAX, `the scale-down finished within the load (${sent} requests)`);
  t.strictSame(failures, [], `every one of ${sent} requests succeeded across the scale-down`);
  t.equal(new Set(after).size, 1, 'the requests after it were all served by the remaining instance');
});

/**
 * An open-loop load through h2's proxy: `rate` requests/s, each sent on its
 * schedule whatever the answers do (at most 200 in flight, beyond which a
 * send is counted as failed). Bounded: stops after `maxMs` or `stop()`.
 */
function openLoad(service: string, maxMs: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
  const stats = { sent: 0, ok: 0, failed: [] as string[] };
  let rate = 0;
  let inFlight = 0;
  let stopped = false;
  const started = Date.now();
  let next = Date.now();
  const done = (async () => {
    while (!stopped && Date.now() - started < maxMs) {
      if (rate === 0) {
        await new Promise((r) => setTimeout(r, 50));
        next = Date.now();
        continue;
      }
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // A stalled loop (a busy machine) does not catch up with a burst: the rate never goes above `rate`.
      next = Math.max(next, Date.now() - 50) + 1000 / rate;
      const i = stats.sent++;
      if (inFlight >= 200) {
        stats.failed.push(`${i}: over 200 in flight`);
        continue;
      }
      inFlight++;
      call(`/load-${i}`, { service, agent })
        .then((r) => (r.status === 200 ? stats.ok++ : stats.failed.push(`${i}: ${r.status} ${String(r.headers['x-weft-reason'] ?? '')}`)))
        .catch((err: Error) => stats.failed.push(`${i}: ${err.message}`))
        .finally(() => inFlight--);
    }
    await eventually(async () => (inFlight === 0 ? true : undefined), 30_000, 'the load to finish');
    agent.destroy();
  })();
  return {
    stats,
    setRate(r: number) {
      rate = r;
      next = Date.now();
    },
    async stop() {
      stopped = true;
      await done;
    },
  };
}

t.test('a load step scales to the predicted count, steady load holds it, no load brings it back down', async (t) => {
  // Target 20 requests/s per instance. 50/s on one instance is 2.5 times the target: ceil(2.5) = 3.
  // At 3 instances, 50/s is 16.7 each (0.83 of the target): the count that keeps it under is
  // ceil(50 / 20) = 3, so steady load holds 3. Reading noise of +-10% keeps both answers.
  const job = demoJob('stepper', 'stepper', {
    group: {
      count: 1,
      autoscale: { min: 1, max: 4, metrics: [{ rps: 20 }], interval: '1s', scaleDown: { stabilizationWindow: '3s' } },
    },
    task: { check: { http: '/health', interval: '1s', timeout: '1s' }, env: { DRAIN_MS: '2000', SERVICE: 'stepper' } },
  });
  const submitted = await api(url, 'POST', '/v1/jobs', { spec: job });
  t.equal(submitted.status, 200, `job accepted ${submitted.text}`);
  await eventually(async () => ((await call('/', { service: 'stepper' })).status === 200 ? true : undefined), 40_000, 'stepper to answer', 250);
  const stepperCount = async (): Promise<number> => ((await api(url, 'GET', '/v1/jobs/stepper')).body as { spec: { groups: Array<{ count?: number }> } }).spec.groups[0]!.count ?? 1;
  const decisions = async () => ((await api(url, 'GET', '/v1/jobs/stepper/autoscale')).body as { groups: Array<{ decisions?: Array<{ from: number; to: number; reason: string }> }> }).groups[0]?.decisions ?? [];

  const load = openLoad('stepper', 120_000);
  t.teardown(() => load.stop());
  load.setRate(50);
  let highest = 1;
  const lastReason = async (): Promise<string> => {
    const g = ((await api(url, 'GET', '/v1/jobs/stepper/autoscale')).body as { groups: Array<{ last?: { reason: string } }> }).groups[0];
    return `${g?.last?.reason ?? 'no decision'}; load ${JSON.stringify({ sent: load.stats.sent, ok: load.stats.ok, failed: load.stats.failed.length })}`;
  };
  await eventually(
    async () => {
      const c = await stepperCount();
      highest = Math.max(highest, c);
      return c === 3 ? true : undefined;
    },
    40_000,
    'stepper at 3 under 50 requests/s',
    250,
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}; last decision: ${await lastReason()}\n${logTail()}`);
  });
  t.pass('50 requests/s against a target of 20 per instance: 1 -> 3');

  // Steady: the count stays where it is for 8 s of the same load (8 decisions at 1 s).
  const before = (await decisions()).length;
  const seen = new Set<number>();
  const until = Date.now() + 8000;
  while (Date.now() < until) {
    const c = await stepperCount();
    seen.add(c);
    highest = Math.max(highest, c);
    await new Promise((r) => setTimeout(r, 250));
  }
  t.strictSame([...seen], [3], 'steady load: the count holds at 3');
  t.equal((await decisions()).length, before, 'no decision moved the count during steady load');
  t.equal(highest, 3, 'never above the predicted count');

  await load.stop();
  t.strictSame(load.stats.failed, [], `no request failed (${load.stats.ok} answered)`);
  await eventually(async () => ((await stepperCount()) === 1 ? true : undefined), 40_000, `stepper back to 1 with no load\n${logTail()}`, 250);
  // No reversal: every move up comes before every move down (1 -> 2 -> 3 is allowed: a first reading may span the step).
  const moves = (await decisions()).filter((d) => d.to !== d.from);
  const directions = moves.map((d) => (d.to > d.from ? 'up' : 'down')).join(' ');
  t.match(directions, /^(up ?)+(down ?)+$/, `up, then down, never back: ${moves.map((d) => `${d.from}->${d.to}`).join(', ')}`);
});
