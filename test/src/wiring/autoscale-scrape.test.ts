/**
 * The scrape metric source against real proxies: inbound proxies (the real
 * InboundProxy and ProxyMetrics) answering real mTLS requests to real local
 * apps, their /metrics served by the proxy's own metrics server, registered
 * as `weft-proxy` in the dev Consul agent beside the service's instances.
 * Time is injected: every fetch names its `nowMs`, so rates are exact.
 */
import t, { type Test } from 'tap';
import { silentLogger } from '../../../base/log.js';
import { createDiscoveryClient } from '../../../discovery/index.js';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import { LATENCY_BUCKETS } from '../../../proxy/metrics.js';
import type { AutoscaleMetric, AutoscalePolicy, InstanceView } from '../../../scheduler/index.js';
import type { FetchLike, SourceSnapshot } from '../../../src/wiring/autoscale-source.js';
import { histogramQuantile, parseProxyMetrics, PROMQL_NEEDS_PROMETHEUS, ScrapeSource } from '../../../src/wiring/autoscale-scrape.js';
import { type MetricsServer, startMetricsServer } from '../../../src/wiring/proxy-metrics-server.js';
import { proxyRegistration } from '../../../src/wiring/proxy-registration.js';
import { startTestConsul, type TestConsul } from '../../helpers/dev-consul.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { call, HOST, instance, makeMesh, startInbound } from '../../proxy/inbound/fixtures.js';
import { serviceValue, startApp, values } from './autoscale-fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });
const WATCH = { waitMs: 2000, backoffBaseMs: 50, backoffMaxMs: 200 };
const T0 = 1_700_000_000_000;

// ── pure parts ──────────────────────────────────────────────────────────

t.test('histogramQuantile interpolates within the bucket the rank falls in, as histogram_quantile does', async (t) => {
  const h = (pairs: Array<[number, number]>) => new Map(pairs);
  // 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.5], 10 in (0.5, 1].
  const hist = h([
    [0.1, 50],
    [0.5, 90],
    [1, 100],
    [Number.POSITIVE_INFINITY, 100],
  ]);
  t.equal(histogramQuantile(0.5, hist), 0.1, 'rank 50 is the top of the first bucket');
  t.equal(histogramQuantile(0.25, hist), 0.05, 'the first bucket counts from 0');
  t.equal(histogramQuantile(0.7, hist), 0.1 + 0.4 * (20 / 40));
  t.equal(histogramQuantile(0.95, hist), 0.5 + 0.5 * (5 / 10));
  t.equal(histogramQuantile(0.99, h([[0.1, 10], [Number.POSITIVE_INFINITY, 100]])), 0.1, 'a rank in +Inf answers the highest finite bound');
  t.equal(histogramQuantile(0.99, h([[0.1, 0], [Number.POSITIVE_INFINITY, 0]])), null, 'no observation: nothing to measure');
  t.equal(histogramQuantile(0.99, h([[0.1, 5]])), null, 'no +Inf bucket: not a histogram');
  t.equal(histogramQuantile(0.5, h([[0.1, 50], [0.5, 49], [Number.POSITIVE_INFINITY, 100]])), 0.1, 'a count falling with the bound is evened out');
});

t.test('parseProxyMetrics keeps every label set of the latency histogram (the parser alone folds them into one)', async (t) => {
  const text = [
    '# HELP weft_proxy_request_duration_seconds Time from request start to the end of the response, in seconds.',
    '# TYPE weft_proxy_request_duration_seconds histogram',
    'weft_proxy_request_duration_seconds_bucket{le="0.1",direction="inbound",source="web",destination="api",version="v1"} 3',
    'weft_proxy_request_duration_seconds_bucket{le="+Inf",direction="inbound",source="web",destination="api",version="v1"} 4',
    'weft_proxy_request_duration_seconds_sum{direction="inbound",source="web",destination="api",version="v1"} 0.9',
    'weft_proxy_request_duration_seconds_count{direction="inbound",source="web",destination="api",version="v1"} 4',
    'weft_proxy_request_duration_seconds_bucket{le="0.1",direction="inbound",source="admin",destination="api",version="v2"} 5',
    'weft_proxy_request_duration_seconds_bucket{le="+Inf",direction="inbound",source="admin",destination="api",version="v2"} 7',
    'weft_proxy_request_duration_seconds_bucket{le="0.1",direction="inbound",source="web",destination="api",version="none"} 100',
    'weft_proxy_request_duration_seconds_bucket{le="+Inf",direction="inbound",source="web",destination="api",version="none"} 100',
    'weft_proxy_request_duration_seconds_bucket{le="0.1",direction="outbound",source="api",destination="db",version="v1"} 9',
    'weft_proxy_request_duration_seconds_bucket{le="+Inf",direction="outbound",source="api",destination="db",version="v1"} 9',
    '# TYPE weft_proxy_requests_total counter',
    'weft_proxy_requests_total{direction="inbound",source="web",destination="api",version="v1",instance="h1-a1",code="200"} 3',
    'weft_proxy_requests_total{direction="inbound",source="admin",destination="api",version="v2",instance="h1-a1",code="200"} 2',
    'weft_proxy_requests_total{direction="inbound",source="web",destination="api",version="v1",instance="h1-a1",code="503"} 1',
    'weft_proxy_requests_total{direction="inbound",source="web",destination="a\\"b",version="v1",instance="x",code="200"} 1',
    '# TYPE weft_proxy_requests_in_flight gauge',
    'weft_proxy_requests_in_flight{direction="inbound",destination="api"} 2',
    'weft_proxy_requests_in_flight{direction="outbound",destination="db"} 5',
    'weft_process_start_time_seconds 1700000000',
  ].join('\n');
  const s = parseProxyMetrics(text, 42);
  t.equal(s.atMs, 42);
  t.equal(s.startTime, 1_700_000_000);
  t.strictSame(
    [...s.buckets.get('api')!],
    [
      [0.1, 8],
      [Number.POSITIVE_INFINITY, 11],
    ],
    'both callers and versions summed; refusals (version none) and outbound left out',
  );
  t.strictSame([...s.requests.get('api')!], [
    ['h1-a1\u0000200', 5],
    ['h1-a1\u0000503', 1],
  ]);
  t.ok(s.requests.has('a"b'), 'escaped label values are unescaped by the parser');
  t.strictSame([...s.inFlight], [['api', 2]], 'outbound in-flight is not the service’s load');
  t.equal(parseProxyMetrics(text.split('\n').slice(0, -1).join('\n'), 0).startTime, undefined, 'no process start time exported');
});

// ── the rig: hosts with an inbound proxy, its metrics server, and the instances behind it ──


interface Host {
  node: string;
  /** The instance's Consul ID (`<node>-<instance>`, what the proxy labels it with) and weft instance id. */
  consulId: string;
  instanceId: string;
  app: Awaited<ReturnType<typeof startApp>>;
  inboundPort: number;
  metricsPort: number;
  metrics: MetricsServer;
  /** Starts a fresh proxy (new counters) behind the same metrics port: a restart. */
  restart(): Promise<void>;
}

async function startHost(t: Test, consul: TestConsul, mesh: ReturnType<typeof makeMesh>, node: string, instanceId: string): Promise<Host> {
  const app = await startApp(t);
  const consulId = `${node}-${instanceId}`;
  const metricsPort = await freePort(HOST);
  const up = async (): Promise<{ inboundPort: number; metrics: MetricsServer }> => {
    const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: [instance('api', consulId, app.port, 'v1')] });
    const metrics = await startMetricsServer(inbound.registry, { bind: HOST, port: metricsPort, logger: silentLogger });
    t.teardown(() => metrics.close());
    return { inboundPort: inbound.port, metrics };
  };
  const first = await up();
  const host: Host = {
    node,
    consulId,
    instanceId,
    app,
    inboundPort: first.inboundPort,
    metricsPort,
    metrics: first.metrics,
    async restart() {
      await host.metrics.close();
      const next = await up();
      host.inboundPort = next.inboundPort;
      host.metrics = next.metrics;
    },
  };
  await consul.consul.agent.service.register(proxyRegistration({ host: node, address: HOST, port: metricsPort, meshPort: first.inboundPort }));
  await consul.consul.agent.service.register({
    id: consulId,
    name: 'api',
    address: HOST,
    port: app.port,
    tags: ['weft'],
    meta: { weft_host: node, weft_instance: instanceId, weft_version: 'v1', weft_weight: '1', weft_mesh_port: String(first.inboundPort) },
  });
  return host;
}

/** `n` requests through `host`'s inbound proxy to its instance, `parallel` at a time. */
async function send(mesh: ReturnType<typeof makeMesh>, host: Host, n: number, path = '/', parallel = 10): Promise<void> {
  for (let i = 0; i < n; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, n - i) }, () => call(host.inboundPort, mesh.web, 'api', { path, headers: { 'x-weft-instance': host.consulId } }));
    await Promise.all(batch);
  }
}

function policy(metrics: AutoscaleMetric[], intervalMs = 2000): AutoscalePolicy {
  const behavior = { stabilizationWindowMs: 0, cooldownMs: 0, maxStep: undefined, periodMs: 15_000 };
  return { min: 1, max: 10, metrics, service: 'api', tolerance: 0.1, scaleUp: behavior, scaleDown: behavior, intervalMs, onError: 'hold', dryRun: false, idleToZeroMs: undefined };
}

const ALL: AutoscaleMetric[] = [
  { kind: 'rps', target: 10 },
  { kind: 'inflight', target: 5 },
  { kind: 'latency', quantile: 0.95, maxMs: 250 },
  { kind: 'errors', maxRatio: 0.1 },
  { kind: 'promql', query: 'sum by (instance_id) (up)', target: 1 },
];

const view = (id: string): InstanceView => ({ id, ready: true, startedAtMs: 0 });
const TARGET = { job: 'shop', group: 'api', service: 'api' };



async function rig(t: Test, opts: { fetch?: FetchLike } = {}) {
  const consul = await startTestConsul(t);
  const mesh = makeMesh(['api']);
  const h1 = await startHost(t, consul, mesh, 'h1', 'a1');
  const h2 = await startHost(t, consul, mesh, 'h2', 'a2');
  const client = createDiscoveryClient({ consul: { address: consul.address } }, { requestTimeoutMs: 1000 });
  const source = new ScrapeSource({ client, watch: WATCH, timeoutMs: 1000, ...opts });
  t.teardown(async () => {
    await source.close();
    client.close();
  });
  return { consul, mesh, h1, h2, source, instances: [view('a1'), view('a2')] };
}

t.test('rps per instance is the requests between two scrapes over the injected interval; errors and traffic follow', async (t) => {
  const { mesh, h1, h2, source, instances } = await rig(t);
  const p = policy(ALL);
  const first: SourceSnapshot = await source.fetch(TARGET, p, instances, T0);
  t.equal(first.atMs, T0, 'the snapshot is stamped with the injected time');
  t.match(first.readings[0], { kind: 'unavailable', reason: /first scrape of the proxies: a rate needs two/ });
  t.strictSame(values(first.readings[1]), { a1: 0, a2: 0 }, 'in-flight is a gauge: known from the first scrape');
  t.match(first.readings[2], { kind: 'unavailable' });
  t.match(first.readings[3], { kind: 'unavailable' });
  t.strictSame(first.readings[4], { kind: 'unavailable', reason: PROMQL_NEEDS_PROMETHEUS });
  t.equal(first.traffic, undefined, 'no rate yet and nothing in flight: traffic unknown, not zero');

  await send(mesh, h1, 40);
  await send(mesh, h2, 6);
  await send(mesh, h2, 4, '/?status=503');
  const second = await source.fetch(TARGET, p, instances, T0 + 2000);
  t.equal(second.atMs, T0 + 2000);
  t.strictSame(values(second.readings[0]), { a1: 40 / 2, a2: 10 / 2 }, 'N requests over 2 s of injected time: N/2 per second');
  t.equal(serviceValue(second.readings[3]), 4 / 50, 'errors: the 5xx share of the service');
  t.type(serviceValue(second.readings[2]), 'number', 'latency measured');
  t.strictSame(second.traffic, { rps: 25, inflight: 0 });
  t.strictSame(second.problems, []);

  // A second group asking at the same tick reuses the round: same figures, no new scrape.
  const again = await source.fetch(TARGET, policy([{ kind: 'rps', target: 10 }]), instances, T0 + 2000);
  t.strictSame(values(again.readings[0]), { a1: 20, a2: 5 });

  // a8 is not registered (yet) but the loop says it runs on h1; nothing places a7.
  const quiet = await source.fetch(TARGET, p, [...instances, { ...view('a8'), host: 'h1' }, view('a7')], T0 + 4000);
  t.strictSame(values(quiet.readings[0]), { a1: 0, a2: 0, a8: 0 }, 'no request in the window: 0, not missing; a7, placed nowhere, is missing');
  t.strictSame(values(quiet.readings[1]), { a1: 0, a2: 0, a8: 0 }, "h1's in-flight shared between a1 and a8");
  t.equal(serviceValue(quiet.readings[3]), null, 'no answer in the window: no error ratio to measure');
  t.equal(serviceValue(quiet.readings[2]), null, 'no answer in the window: no latency to measure');
  t.strictSame(quiet.traffic, { rps: 0, inflight: 0 }, 'every proxy measured: the service is idle');
});

t.test('the window is the sample closest to the interval before: a 2 s policy beside a 500 ms one', async (t) => {
  const { mesh, h1, source, instances } = await rig(t);
  const slow = policy([{ kind: 'rps', target: 10 }], 2000);
  const fast = policy([{ kind: 'rps', target: 10 }], 500);
  await source.fetch(TARGET, slow, instances, T0);
  await source.fetch(TARGET, fast, instances, T0);
  await send(mesh, h1, 10);
  await source.fetch(TARGET, fast, instances, T0 + 500);
  await send(mesh, h1, 30);
  await source.fetch(TARGET, fast, instances, T0 + 1000);
  await source.fetch(TARGET, fast, instances, T0 + 1500);
  const f = await source.fetch(TARGET, fast, instances, T0 + 2000);
  t.equal(values(f.readings[0])['a1'], 0, 'the fast policy sees its last 500 ms: nothing');
  const s = await source.fetch(TARGET, slow, instances, T0 + 2000);
  t.equal(values(s.readings[0])['a1'], 40 / 2, 'the slow policy sees its 2 s: all 40');
});

t.test('a proxy restart (counter reset) gives the requests since the restart, never a negative rate', async (t) => {
  const { mesh, h1, source, instances } = await rig(t);
  const p = policy([{ kind: 'rps', target: 10 }, { kind: 'errors', maxRatio: 0.5 }, { kind: 'latency', quantile: 0.99, maxMs: 100 }]);
  await send(mesh, h1, 40);
  await source.fetch(TARGET, p, instances, T0);
  await h1.restart();
  await send(mesh, h1, 6);
  const after = await source.fetch(TARGET, p, instances, T0 + 2000);
  t.equal(values(after.readings[0])['a1'], 6 / 2, '6 requests since the restart, not 6 - 40');
  t.equal(serviceValue(after.readings[1]), 0);
  const latency = serviceValue(after.readings[2]);
  t.ok(latency !== null && latency > 0, `the histogram resets as a whole: a latency, not nonsense (${latency})`);
});

t.test('a proxy that does not answer leaves its instances missing, not zero; the others still count', async (t) => {
  const { mesh, h1, h2, source, instances } = await rig(t);
  const p = policy(ALL);
  await source.fetch(TARGET, p, instances, T0);
  await send(mesh, h1, 20);
  await h2.metrics.close();
  const snap = await source.fetch(TARGET, p, instances, T0 + 2000);
  t.strictSame(values(snap.readings[0]), { a1: 10 }, 'a2 has no rps value: missing');
  t.strictSame(values(snap.readings[1]), { a1: 0 }, 'nor an in-flight value');
  t.equal(serviceValue(snap.readings[3]), 0, 'service-wide figures come from the proxies that answered');
  t.match(snap.problems, [new RegExp(`^h2 \\(http://${HOST.replaceAll('.', '\\.')}:${h2.metricsPort}/metrics\\): fetch failed`)]);
  t.strictSame(snap.traffic, { rps: 10, inflight: 0 }, 'traffic seen elsewhere is traffic');

  // With no traffic where it can be seen, a silent proxy makes the service's traffic unknown.
  const quiet = await source.fetch(TARGET, p, instances, T0 + 4000);
  t.equal(quiet.traffic, undefined);

  // Both down: nothing to read at all.
  await h1.metrics.close();
  const none = await source.fetch(TARGET, p, instances, T0 + 6000);
  t.match(none.readings[0], { kind: 'unavailable', reason: /scrape failed: .*h1: fetch failed.*h2: fetch failed|scrape failed: .*h2: fetch failed.*h1: fetch failed/ });
  t.match(none.readings[2], { kind: 'unavailable', reason: /scrape failed/ });
});

t.test('in flight: the proxy’s gauge for the service on the instance’s host', async (t) => {
  const { mesh, h1, source, instances } = await rig(t);
  const held = Array.from({ length: 3 }, () => call(h1.inboundPort, mesh.web, 'api', { path: '/hold', headers: { 'x-weft-instance': h1.consulId } }));
  await eventually(() => h1.app.held() === 3, 5000, 'three requests held by the app');
  const snap = await source.fetch(TARGET, policy([{ kind: 'inflight', target: 5 }]), instances, T0);
  t.strictSame(values(snap.readings[0]), { a1: 3, a2: 0 });
  t.strictSame(snap.traffic, { rps: 0, inflight: 3 }, 'no rate yet on a first scrape, but requests in flight are traffic');
  h1.app.release();
  await Promise.all(held);
});

t.test('latency quantiles of known latencies land in the bucket that holds them', async (t) => {
  const { mesh, h1, source, instances } = await rig(t);
  const p = policy([
    { kind: 'latency', quantile: 0.95, maxMs: 250 },
    { kind: 'latency', quantile: 0.99, maxMs: 250 },
  ]);
  await source.fetch(TARGET, p, instances, T0);
  // 90 answers after 60 ms (bucket 0.05-0.1 s, or up to 0.25 s on a busy machine), 10 after 300 ms (bucket 0.25-0.5 s).
  await send(mesh, h1, 90, '/?ms=60', 30);
  await send(mesh, h1, 10, '/?ms=300', 10);
  const snap = await source.fetch(TARGET, p, instances, T0 + 2000);
  const p95 = serviceValue(snap.readings[0])!;
  const p99 = serviceValue(snap.readings[1])!;
  t.ok(LATENCY_BUCKETS.includes(0.25) && LATENCY_BUCKETS.includes(0.5), 'the proxy has the buckets this test counts on');
  t.ok(p95 >= 250 && p95 <= 500, `p95 in the 250-500 ms bucket (${p95})`);
  t.ok(p99 >= 250 && p99 <= 500, `p99 in the 250-500 ms bucket (${p99})`);
  t.ok(p99 > p95, 'interpolated within the bucket: p99 above p95');
});

t.test('injected fetch: a proxy restart is seen by its start time even when the new count is higher; a hung proxy times out', async (t) => {
  let body = '';
  const fake: FetchLike = async (url, init) => {
    if (url.includes(':1/')) {
      // Hangs until the source's timeout aborts it.
      return new Promise<Response>((_resolve, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
    }
    return new Response(body, { status: 200 });
  };
  const consul = await startTestConsul(t);
  await consul.consul.agent.service.register({ id: 'weft-proxy-h1', name: 'weft-proxy', address: '127.0.0.9', port: 9, meta: { weft_host: 'h1' } });
  await consul.consul.agent.service.register({ id: 'weft-proxy-h2', name: 'weft-proxy', address: '127.0.0.9', port: 1, meta: { weft_host: 'h2' } });
  await consul.consul.agent.service.register({ id: 'h1-a1', name: 'api', address: '127.0.0.9', port: 80, meta: { weft_host: 'h1', weft_instance: 'a1' } });
  await consul.consul.agent.service.register({ id: 'h2-a2', name: 'api', address: '127.0.0.9', port: 80, meta: { weft_host: 'h2', weft_instance: 'a2' } });
  const client = createDiscoveryClient({ consul: { address: consul.address } }, { requestTimeoutMs: 1000 });
  const source = new ScrapeSource({ client, watch: WATCH, fetch: fake, timeoutMs: 200 });
  t.teardown(async () => {
    await source.close();
    client.close();
  });
  const exposition = (count: number, start: number) =>
    `weft_process_start_time_seconds ${start}\nweft_proxy_requests_total{direction="inbound",source="web",destination="api",version="v1",instance="h1-a1",code="200"} ${count}\n`;
  const p = policy([{ kind: 'rps', target: 10 }]);
  body = exposition(10, 1000);
  await source.fetch(TARGET, p, [view('a1'), view('a2')], T0);
  body = exposition(25, 2000);
  const snap = await source.fetch(TARGET, p, [view('a1'), view('a2')], T0 + 2000);
  t.strictSame(values(snap.readings[0]), { a1: 25 / 2 }, 'a new start time: all 25 are new; a2 behind the hung proxy is missing');
  t.match(snap.problems, [/^h2 \(http:\/\/127\.0\.0\.9:1\/metrics\): no answer within 200 ms$/]);
});
