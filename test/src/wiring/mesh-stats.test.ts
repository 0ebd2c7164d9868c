/**
 * The stats collector behind `GET /v1/stats` against a real mesh: two REAL
 * `weft proxy` processes (h2 calls as `frontend`; h3 serves `backend` v1 and
 * v2, one more v2 instance failing its check), apps on h3, the dev Consul
 * agent with the registrations, a split and an intention in KV. Rounds are
 * stamped with the test's clock (`now`, and `sleep` moves it), so rates are
 * exact: N requests between two rounds 2 s apart are N/2 per second.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../base/log.js';
import type { StatsResponse } from '../../../base/contracts/scheduler-api.js';
import { createDiscoveryClient } from '../../../discovery/index.js';
import { loadConfig } from '../../../src/config/load.js';
import { MeshStats, type MeshStatsOptions, parseStatsSample } from '../../../src/wiring/mesh-stats.js';
import { startScheduler } from '../../../src/wiring/scheduler-process.js';
import { makeCa } from '../../certs/fixtures.js';
import { startTestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { instanceRegistration, makeHost, meshSigner, startProxy, writeLocal } from '../../integration/proxy-hosts.js';
import { api, TOKEN } from '../../integration/scheduler-cluster.js';

const T0 = 1_700_000_000_000;
const WATCH = { waitMs: 2000, backoffBaseMs: 50, backoffMaxMs: 200 };

t.test('parseStatsSample keeps inbound, outbound and denials apart; refusals and 5xx are told apart', async (t) => {
  /** A series of `family` whose destination is `api`. */
  const series = (family: string, labels: Record<string, string>, value: number) =>
    `${family}{${Object.entries({ ...labels, destination: 'api' })
      .map(([k, v]) => `${k}="${v}"`)
      .join(',')}} ${value}`;
  const req = (direction: string, source: string, version: string, instance: string, code: string, n: number) =>
    series('weft_proxy_requests_total', { direction, source, version, instance, code }, n);
  const bucket = (direction: string, version: string, le: string, n: number) =>
    series('weft_proxy_request_duration_seconds_bucket', { le, direction, source: 'web', version }, n);
  const text = [
    '# TYPE weft_proxy_requests_total counter',
    req('inbound', 'web', 'v1', 'h1-a1', '200', 3),
    req('inbound', 'admin', 'v1', 'h1-a1', '201', 2),
    req('inbound', 'web', 'v1', 'h1-a1', '500', 1),
    req('inbound', 'web', 'none', 'none', '403', 4),
    req('outbound', 'web', 'v1', 'h1-a1', '503', 7),
    req('outbound', 'web', '', '', '503', 1),
    bucket('inbound', 'v1', '0.1', 5),
    bucket('inbound', 'v1', '+Inf', 6),
    bucket('inbound', 'none', '+Inf', 4),
    bucket('outbound', 'v1', '+Inf', 8),
    'weft_proxy_request_duration_seconds_sum{direction="outbound",source="web",destination="api",version="v1"} 0.4',
    'weft_proxy_intention_denials_total{source="web",destination="api"} 4',
    'weft_process_start_time_seconds 1700000000',
  ].join('\n');
  const s = parseStatsSample(text, 42);
  const z = '\u0000';
  t.equal(s.startTime, 1_700_000_000);
  t.strictSame(
    [...s.inbound],
    [
      [`api${z}v1${z}h1-a1${z}0`, 5],
      [`api${z}v1${z}h1-a1${z}1`, 1],
      [`api${z}none${z}none${z}0`, 4],
    ],
    'callers summed; a 5xx kept apart; the refusal kept (the answer leaves it out)',
  );
  t.strictSame([...s.inboundBuckets], [
    [`api${z}v1${z}0.1`, 5],
    [`api${z}v1${z}+Inf`, 6],
  ], 'refusals have no latency');
  t.strictSame([...s.outbound], [[`web${z}api${z}1`, 8]], 'an edge counts every answer its caller got, refused before an instance or not');
  t.strictSame([...s.outboundBuckets], [[`web${z}api${z}+Inf`, 8]]);
  t.strictSame([...s.denials], [[`web${z}api`, 4]]);
});

// ── the mesh ────────────────────────────────────────────────────────────

/** A backend instance: answers JSON naming itself; `?status=N` answers N. */
async function startBackend(t: Test, name: string, address: string): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ app: name }));
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

const ca = makeCa();
const consul = await startTestConsul(t);
const h2 = await makeHost(t, ca, 'h2', '127.0.0.2', ['frontend']);
const h3 = await makeHost(t, ca, 'h3', '127.0.0.3', ['backend']);
const outboundPort = await freePort(h2.address);
await writeLocal(h2, [{ service: 'frontend', outboundPort }]);
const [b1, b2, b3] = await Promise.all(['b1', 'b2', 'b3'].map((n) => startBackend(t, n, h3.address)));
await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b1', 'backend', b1!, { version: 'v1' }));
await consul.consul.agent.service.register(instanceRegistration(h3, 'h3-b2', 'backend', b2!, { version: 'v2' }));
// A third instance whose check never passes: registered, not healthy, never routed to.
await consul.consul.agent.service.register({ ...instanceRegistration(h3, 'h3-b3', 'backend', b3!, { version: 'v2' }), check: { ttl: '60s', status: 'critical' } } as never);
await (await meshSigner(t)).put(consul.consul, 'weft/splits/backend', { v1: 3, v2: 1 });
await Promise.all([startProxy(t, h2, consul.address), startProxy(t, h3, consul.address)]);

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
t.teardown(() => agent.destroy());

/** One request through h2's outbound port as `frontend`; the status. */
function call(path = '/', service = 'backend'): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: h2.address, port: outboundPort, path, headers: { host: service }, agent, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function send(n: number, path = '/'): Promise<number[]> {
  const codes: number[] = [];
  for (let i = 0; i < n; i++) codes.push(await call(path));
  return codes;
}

await eventually(async () => (await call()) === 200, 20_000, 'the first route frontend -> backend');

/** A collector on the test's clock; `clock.ms` moves by hand and with every sleep. */
function collector(t: Test, opts: Partial<MeshStatsOptions> = {}) {
  const clock = { ms: T0 };
  const client = createDiscoveryClient({ consul: { address: consul.address } }, { requestTimeoutMs: 2000 });
  const stats = new MeshStats({
    client,
    watch: WATCH,
    now: () => clock.ms,
    sleep: async (ms) => {
      clock.ms += ms;
    },
    ...opts,
  });
  t.teardown(async () => {
    await stats.close();
    client.close();
  });
  return { clock, stats };
}

function service(s: StatsResponse, name: string) {
  const found = s.services.find((x) => x.service === name);
  if (found === undefined) throw new Error(`no service ${name} in ${JSON.stringify(s.services.map((x) => x.service))}`);
  return found;
}

t.test('the first ask takes two rounds a second apart; services show instances by version and health, not weft’s own processes', async (t) => {
  const { stats } = collector(t);
  const first = await stats.stats(30);
  t.equal(stats.roundsScraped, 2, 'a rate needs two rounds: the second is taken after minSpanMs');
  t.equal(first.windowSeconds, 1, 'the window is the span actually measured');
  t.equal(first.at, new Date(T0 + 1000).toISOString());
  t.strictSame(first.proxies, { scraped: 2, failed: 0 });
  t.strictSame(
    first.services.map((s) => s.service),
    ['backend'],
    'weft-proxy is not a service of the mesh; frontend registers no instance',
  );
  const backend = service(first, 'backend');
  t.strictSame(backend.instances, { total: 3, healthy: 2 });
  t.strictSame(
    backend.versions.map((v) => [v.version, v.instances, v.splitWeight]),
    [
      ['v1', 1, 0.75],
      ['v2', 2, 0.25],
    ],
    'the split in force, as shares of 1',
  );
  t.strictSame(
    backend.instanceStats.map((i) => [i.id, i.version, i.host, i.healthy]),
    [
      ['h3-b1', 'v1', 'h3', true],
      ['h3-b2', 'v2', 'h3', true],
      ['h3-b3', 'v2', 'h3', false],
    ],
  );
  t.equal(backend.rps, 0, 'nothing sent between the two rounds');
  t.equal(backend.successRate, null, 'no request: no success rate to speak of');
  t.equal(backend.p99Ms, null);
  t.ok(
    first.edges.some((e) => e.source === 'frontend' && e.destination === 'backend' && e.rps === 0),
    'the edge frontend -> backend is known (its counters exist) even while quiet',
  );
});

t.test('traffic: exact rates over the window, success, latency, shares against the split, per instance and per edge', async (t) => {
  const { clock, stats } = collector(t);
  await stats.stats(2);
  const codes = [...(await send(32)), ...(await send(8, '/?status=500'))];
  t.equal(codes.filter((c) => c === 200).length, 32, '32 answered 200 (500s are not retried)');
  clock.ms = T0 + 3000;
  const s = await stats.stats(2);
  t.equal(s.windowSeconds, 2);
  const backend = service(s, 'backend');
  t.equal(backend.rps, 40 / 2, '40 requests over 2 s');
  t.equal(backend.successRate, 32 / 40);
  t.ok(backend.p50Ms !== null && backend.p50Ms > 0 && backend.p99Ms !== null && backend.p99Ms >= backend.p50Ms, `latency measured (p50 ${backend.p50Ms}, p99 ${backend.p99Ms})`);
  const v1 = backend.versions.find((v) => v.version === 'v1')!;
  const v2 = backend.versions.find((v) => v.version === 'v2')!;
  // The split's picker keeps its state across the file's requests: about 3 in 4, give or take a cycle.
  t.ok(v1.share !== null && v1.share >= 0.65 && v1.share <= 0.85, `v1 answered about 3 in 4, as the split says (${v1.share})`);
  t.equal(round3(v1.share! + v2.share!), 1, 'the shares add up');
  t.equal(v1.rps + v2.rps, 20);
  const byId = Object.fromEntries(backend.instanceStats.map((i) => [i.id, i]));
  t.equal(byId['h3-b1']!.rps, v1.rps, 'one instance per version: its rate is the version’s');
  t.equal(byId['h3-b2']!.rps, v2.rps);
  t.equal(byId['h3-b3']!.rps, 0, 'the failing instance got nothing');
  t.type(byId['h3-b1']!.p99Ms, 'number', "an instance's latency: its host proxy's histogram for its version");
  const edge = s.edges.find((e) => e.source === 'frontend' && e.destination === 'backend')!;
  t.match(edge, { rps: 20, successRate: 0.8, deniedPerSecond: 0 });
  t.type(edge.p50Ms, 'number', 'latency as the caller saw it');

  // A longer window reaches back to the first round: the same requests over 3 s.
  const wide = await stats.stats(30);
  t.equal(wide.windowSeconds, 3);
  t.equal(service(wide, 'backend').rps, round3(40 / 3));
});

t.test('a deny shows on the edge, and refused requests are not the service’s traffic', async (t) => {
  const { clock, stats } = collector(t);
  await (await meshSigner(t)).put(consul.consul, 'weft/intentions/frontend/backend', { action: 'deny' });
  t.teardown(() => consul.consul.kv.del('weft/intentions/frontend/backend'));
  await eventually(async () => (await call()) === 403, 10_000, 'the deny to reach h3’s proxy');
  await stats.stats(2);
  const codes = await send(10);
  t.strictSame(new Set(codes), new Set([403]));
  clock.ms = T0 + 3000;
  const s = await stats.stats(2);
  const edge = s.edges.find((e) => e.source === 'frontend' && e.destination === 'backend')!;
  t.equal(edge.deniedPerSecond, 5, '10 denials over 2 s, counted at the destination');
  t.equal(edge.rps, 5, 'the caller still got 10 answers (403s)');
  t.equal(service(s, 'backend').rps, 0, 'no instance answered');
});

t.test('asks share a round; an ask within cacheMs reuses it', async (t) => {
  const { clock, stats } = collector(t);
  await stats.stats(30);
  const before = stats.roundsScraped;
  clock.ms += 5000;
  const [a, b] = await Promise.all([stats.stats(30), stats.stats(10)]);
  t.equal(stats.roundsScraped, before + 1, 'two concurrent asks, one round');
  t.equal(a.at, b.at);
  clock.ms += 500;
  await stats.stats(30);
  t.equal(stats.roundsScraped, before + 1, 'half a second later: the cached round');
});

t.test('bounds: proxies past maxProxies and answers past maxBytes count as failed', async (t) => {
  const few = collector(t, { maxProxies: 1 }).stats;
  t.strictSame((await few.stats(30)).proxies, { scraped: 1, failed: 1 });
  const small = collector(t, { maxBytes: 256 }).stats;
  const s = await small.stats(30);
  t.strictSame(s.proxies, { scraped: 0, failed: 2 }, "a proxy's /metrics is larger than 256 bytes");
  t.equal(service(s, 'backend').instances.total, 3, 'the services still come from Consul');
});

t.test('nobody asks: the ring is dropped, the watches close, nothing is scraped', async (t) => {
  const { stats } = collector(t, { idleMs: 300 });
  await stats.stats(30);
  t.ok(stats.active, 'after an ask: rounds held, watches open');
  const rounds = stats.roundsScraped;
  await eventually(() => !stats.active, 5000, 'the collector to go idle');
  t.equal(stats.roundsScraped, rounds, 'no round without an ask');
});

t.test('GET /v1/stats on a running scheduler: the contract’s answer, the window checked, the token required', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'weft-stats-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const config = loadConfig({
    env: {},
    flags: { dataDir, nodeName: 'sched', 'consul.address': consul.address, 'scheduler.port': port, 'scheduler.token': TOKEN, 'scheduler.register': false },
  });
  const sched = await startScheduler({ config, logger: silentLogger });
  t.teardown(() => sched.close());
  const url = `http://127.0.0.1:${port}`;
  await send(4);
  const r = await api(url, 'GET', '/v1/stats?window=5');
  t.equal(r.status, 200, r.text);
  const body = r.body as unknown as StatsResponse;
  t.strictSame(body.proxies, { scraped: 2, failed: 0 });
  t.ok(body.windowSeconds >= 1 && body.windowSeconds <= 5, `window ${body.windowSeconds}`);
  t.ok(
    body.services.some((s) => s.service === 'backend'),
    'backend listed',
  );
  const bad = await api(url, 'GET', '/v1/stats?window=1');
  t.equal(bad.status, 400);
  t.match(bad.body, { code: 'WEFT_ERR_API_REQUEST_INVALID', key: 'querystring.window' });
  const unknown = await api(url, 'GET', '/v1/stats?windw=5');
  t.match(unknown.body, { code: 'WEFT_ERR_API_REQUEST_INVALID', key: 'querystring.windw' });
  const anonymous = await api(url, 'GET', '/v1/stats', undefined, null);
  t.equal(anonymous.status, 401);
});

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
