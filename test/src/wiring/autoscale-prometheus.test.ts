/**
 * The prometheus metric source against a real Prometheus (Debian's) scraping
 * real proxy metrics: inbound proxies (the real InboundProxy and
 * ProxyMetrics) answering real mTLS requests, their /metrics served by the
 * proxy's metrics server, scraped through a static_configs job labelled as
 * weft's consul_sd relabelling labels it (`host`). Host h1 runs instances a1
 * and a2, host h2 runs a3.
 *
 * What Prometheus' rate() returns depends on where its scrapes fall; the
 * checks use what does not: series of one target share their scrape times,
 * so once each has samples across the whole window (no extrapolation stops
 * at zero) ratios between them are exact, and a burst inside the window is
 * counted once and at most extrapolated to the window's edges.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { silentLogger } from '../../../base/log.js';
import { IntentionTable } from '../../../proxy/inbound/intentions.js';
import type { AutoscaleMetric, AutoscalePolicy, InstanceView } from '../../../scheduler/index.js';
import { DEFAULT_QUERIES, fillQuery, PrometheusSource } from '../../../src/wiring/autoscale-prometheus.js';
import { startMetricsServer } from '../../../src/wiring/proxy-metrics-server.js';
import { eventually } from '../../helpers/eventually.js';
import { freePort } from '../../helpers/ports.js';
import { startPrometheus } from '../../helpers/prometheus.js';
import { call, HOST, instance, makeMesh, startInbound } from '../../proxy/inbound/fixtures.js';
import { serviceValue, startApp, values } from './autoscale-fixtures.js';

const allowAll = IntentionTable.fromEntries([], { defaultAction: 'allow' });
const WINDOW_MS = 5000;
const SCRAPE_MS = 250;


/** One host: an inbound proxy for `instances` (weft instance ids) and its metrics server. */
async function startHost(t: Test, mesh: ReturnType<typeof makeMesh>, node: string, ids: string[]) {
  const apps = new Map<string, Awaited<ReturnType<typeof startApp>>>();
  for (const id of ids) apps.set(id, await startApp(t));
  const inbound = await startInbound(t, { ids: mesh.ids, intentions: allowAll, instances: ids.map((id) => instance('api', `${node}-${id}`, apps.get(id)!.port)) });
  const metrics = await startMetricsServer(inbound.registry, { bind: HOST, port: 0, logger: silentLogger });
  t.teardown(() => metrics.close());
  /** `n` requests to instance `id`, `parallel` at a time. */
  const send = async (id: string, n: number, path = '/', parallel = 10): Promise<void> => {
    for (let i = 0; i < n; i += parallel) {
      const batch = Array.from({ length: Math.min(parallel, n - i) }, () => call(inbound.port, mesh.web, 'api', { path, headers: { 'x-weft-instance': `${node}-${id}` } }));
      await Promise.all(batch);
    }
  };
  return { node, apps, inbound, metricsPort: metrics.address.port, send };
}

function policy(metrics: AutoscaleMetric[]): AutoscalePolicy {
  const behavior = { stabilizationWindowMs: 0, cooldownMs: 0, maxStep: undefined, periodMs: 15_000 };
  return { min: 1, max: 10, metrics, service: 'api', tolerance: 0.1, scaleUp: behavior, scaleDown: behavior, intervalMs: 1000, onError: 'hold', dryRun: false, idleToZeroMs: undefined };
}

const view = (id: string): InstanceView => ({ id, ready: true, startedAtMs: 0 });
const INSTANCES = [view('a1'), view('a2'), view('a3')];
const TARGET = { job: 'shop', group: 'api', service: 'api' };



const close = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

t.test('the default queries are the ones docs/autoscaling.md writes out', async (t) => {
  const doc = readFileSync(join(import.meta.dirname, '../../../docs/autoscaling.md'), 'utf8');
  for (const [name, query] of Object.entries(DEFAULT_QUERIES)) t.ok(doc.includes(query), `${name}: ${query}`);
  t.equal(
    fillQuery(DEFAULT_QUERIES.latency, { service: 'a"b', windowMs: 90_000, quantile: 0.95 }),
    'histogram_quantile(0.95, sum by (le) (rate(weft_proxy_request_duration_seconds_bucket{direction="inbound", destination="a\\"b", version!="none"}[90s])))',
  );
});

t.test('Prometheus down, or a query it refuses: unavailable, with its reason', async (t) => {
  const down = new PrometheusSource({ url: `http://127.0.0.1:${await freePort()}` });
  const snap = await down.fetch(TARGET, policy([{ kind: 'rps', target: 10 }]), INSTANCES, Date.now());
  t.match(snap.readings[0], { kind: 'unavailable', reason: /^prometheus at http:\/\/127\.0\.0\.1:\d+ unreachable: fetch failed \(ECONNREFUSED\)$/ });
  t.equal(snap.traffic, undefined);
  t.equal(snap.problems.length, 2, 'the rps and the in-flight query (traffic) failed');

  const noService = await down.fetch({ ...TARGET, service: undefined }, policy([{ kind: 'errors', maxRatio: 0.1 }]), INSTANCES, Date.now());
  t.match(noService.readings[0], { kind: 'unavailable', reason: /registers no service/ });
});

t.test('against a real Prometheus scraping real proxies: the default queries after load', async (t) => {
  const mesh = makeMesh(['api']);
  const h1 = await startHost(t, mesh, 'h1', ['a1', 'a2']);
  const h2 = await startHost(t, mesh, 'h2', ['a3']);

  // Baseline: every series the burst will move exists, with counts large enough that
  // rate() never stops its extrapolation at zero (which would differ per series).
  await h1.send('a1', 10, '/?ms=60');
  await h1.send('a1', 2, '/?ms=300');
  await h1.send('a2', 10);
  await h1.send('a2', 5, '/?status=503');
  await h2.send('a3', 5);

  const prom = await startPrometheus(
    t,
    [
      'global:',
      `  scrape_interval: ${SCRAPE_MS}ms`,
      `  scrape_timeout: ${SCRAPE_MS - 50}ms`,
      'scrape_configs:',
      '  - job_name: weft-proxy',
      '    static_configs:',
      `      - targets: ['${HOST}:${h1.metricsPort}']`,
      '        labels: { host: h1 }',
      `      - targets: ['${HOST}:${h2.metricsPort}']`,
      '        labels: { host: h2 }',
      '',
    ].join('\n'),
  );
  const source = new PrometheusSource({ url: prom.url, minWindowMs: WINDOW_MS });

  // The baseline sampled for longer than the window before the burst: the window then
  // starts within a scrape of its first sample, on every series alike.
  await eventually(
    async () => {
      const r = await prom.api<{ result: Array<{ value: [number, string] }> }>(
        `/api/v1/query?query=${encodeURIComponent('min(count_over_time(weft_proxy_requests_total{direction="inbound"}[1m]))')}`,
      );
      return Number(r.result[0]?.value[1] ?? 0) >= (WINDOW_MS + 1000) / SCRAPE_MS;
    },
    30_000,
    'Prometheus to hold a window of the baseline',
  );

  // The burst: a1 50 requests (45 at 60 ms, 5 at 300 ms), a2 25 (5 of them 503), a3 none.
  await Promise.all([h1.send('a1', 45, '/?ms=60', 15), h1.send('a2', 20)]);
  await Promise.all([h1.send('a1', 5, '/?ms=300', 5), h1.send('a2', 5, '/?status=503')]);

  const all = policy([
    { kind: 'rps', target: 10 },
    { kind: 'errors', maxRatio: 0.5 },
    { kind: 'latency', quantile: 0.95, maxMs: 250 },
    { kind: 'latency', quantile: 0.99, maxMs: 250 },
  ]);
  // Wait until Prometheus has scraped the counters' final values: then the window holds
  // samples from before the burst and after it, and the burst is counted once.
  const totals = 'sum by (exported_instance, code) (weft_proxy_requests_total{direction="inbound"})';
  await eventually(
    async () => {
      const r = await prom.api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(`/api/v1/query?query=${encodeURIComponent(totals)}`);
      const seen = Object.fromEntries(r.result.map((s) => [`${s.metric['exported_instance']} ${s.metric['code']}`, Number(s.value[1])]));
      return seen['h1-a1 200'] === 62 && seen['h1-a2 200'] === 30 && seen['h1-a2 503'] === 10;
    },
    10_000,
    'Prometheus to scrape the end of the burst',
  );
  const snap = await source.fetch(TARGET, all, INSTANCES, Date.now());
  const rps = values(snap.readings[0]);
  t.strictSame(Object.keys(rps).sort(), ['a1', 'a2', 'a3'], 'every instance has a value: exported_instance less its host');
  t.equal(rps['a3'], 0, 'a3 answered nothing in the window');
  t.ok(close(rps['a1']! / rps['a2']!, 2), `a1 answered twice what a2 did, on the same scrapes (${rps['a1']} / ${rps['a2']})`);
  const factor = (rps['a1']! * WINDOW_MS) / 1000 / 50;
  t.ok(factor >= 1 && factor <= 1.5, `rps x window is the 50 requests, extrapolated to the window's edges at most (x${factor})`);
  t.ok(close(serviceValue(snap.readings[1])!, 5 / 75), `errors: 5 of 75 answers were 503 (${serviceValue(snap.readings[1])})`);
  const p95 = serviceValue(snap.readings[2])!;
  const p99 = serviceValue(snap.readings[3])!;
  t.ok(p95 >= 250 && p95 <= 500, `p95 in the 250-500 ms bucket, in ms (${p95})`);
  t.ok(p99 >= 250 && p99 <= 500 && p99 > p95, `p99 in the same bucket, above p95 (${p99})`);
  t.ok(close(snap.traffic?.rps ?? Number.NaN, rps['a1']! + rps['a2']! + rps['a3']!), `traffic: the service's requests/s (${JSON.stringify(snap.traffic)})`);
  t.equal(snap.traffic?.inflight, 0, 'nothing in flight');
  t.strictSame(snap.problems, []);

  // promql: per instance through label instance_id, or one number shared among the instances.
  const byId = 'label_replace(sum by (exported_instance) (weft_proxy_requests_total{destination="api"}), "instance_id", "$1", "exported_instance", "h1-(.*)")';
  const total = 'sum(weft_proxy_requests_total{destination="api"})';
  const user = await source.fetch(
    TARGET,
    policy([
      { kind: 'promql', query: byId, target: 1 },
      { kind: 'promql', query: total, target: 1 },
      { kind: 'promql', query: 'rate(weft_proxy_requests_total)', target: 1 },
      { kind: 'promql', query: 'weft_no_such_metric', target: 1 },
    ]),
    INSTANCES,
    Date.now(),
  );
  t.strictSame(values(user.readings[0]), { a1: 12 + 50, a2: 15 + 25 }, 'the series of h2 has no instance_id and is left out');
  t.strictSame(values(user.readings[1]), { a1: 107 / 3, a2: 107 / 3, a3: 107 / 3 }, 'one number: shared evenly');
  t.match(user.readings[2], {
    kind: 'unavailable',
    reason: /^prometheus: bad_data: invalid parameter "query": .*expected type range vector in call to function "rate", got instant vector/,
  });
  t.match(user.readings[3], { kind: 'unavailable', reason: /^prometheus: empty result/ });

  // In flight: h1's gauge shared between its two instances.
  const held = Array.from({ length: 4 }, () => call(h1.inbound.port, mesh.web, 'api', { path: '/hold', headers: { 'x-weft-instance': 'h1-a1' } }));
  await eventually(() => h1.apps.get('a1')!.held() === 4, 5000, 'four requests held by a1');
  const inflight = await eventually(
    async () => {
      const s = await source.fetch(TARGET, policy([{ kind: 'inflight', target: 5 }]), [...INSTANCES, { ...view('a4'), host: 'h2' }], Date.now());
      return s.readings[0]?.kind === 'instances' && s.readings[0].values['a1'] === 2 ? s : undefined;
    },
    10_000,
    'Prometheus to scrape the held requests',
  );
  t.strictSame(values(inflight.readings[0]), { a1: 2, a2: 2, a3: 0, a4: 0 }, "h1's 4 shared between a1 and a2; h2 has none (a4, without series yet, placed by the loop)");
  t.equal(inflight.traffic?.inflight, 4);
  h1.apps.get('a1')!.release();
  await Promise.all(held);
});
