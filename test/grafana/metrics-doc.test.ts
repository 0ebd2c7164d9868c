/**
 * docs/metrics.md is every metric family weft exports, and the dashboards'
 * queries find real data:
 *
 * 1. the table against the code: every `name: 'weft_...'` the production
 *    sources declare, with the type and label names each is registered
 *    with (prom-client's default process metrics included), and the process
 *    whose registry holds it (the proxy's, the agent's, or the process
 *    registry the scheduler's families join);
 * 2. the table against real processes: host h9's `weft proxy` carrying mTLS
 *    traffic (web -> backend, a denied call, retried failures, a retry budget
 *    spent on a service that answers 503, a full listener, a malformed
 *    request, a plaintext handshake, a client that sends half a request head
 *    and gets the 408), host h10's `weft agent` (process driver, the host's
 *    agent token: the scheduler's CA signs its services' identities, which
 *    h10's `weft proxy` presents) and a `weft scheduler` leading, their
 *    /metrics parsed with parse-prometheus-text-format (families and types:
 *    the library merges a labelled histogram's series, so labels come from
 *    Prometheus below), compared both ways per process. Meanwhile the
 *    scheduler makes every event a panel shows happen for real
 *    (panel-events.ts): a job too large for any node (placement failures), a
 *    job whose instance's check flips (health changes) and which is then
 *    scaled down (stops), an autoscaled job called through the mesh (the
 *    autoscaler's series, its error ratio read from h10's proxy), a job on a
 *    second, in-process host agent whose heartbeat then stops (a lost node,
 *    its allocation replaced on h10), CSRs from h10's agent;
 * 3. a real Prometheus scraping all of them with the shipped scrape
 *    configuration (grafana/prometheus-http-sd.yml as `weft up --prometheus`
 *    writes it: every target found through its Consul registration): every
 *    series carries its job's target labels and otherwise the documented ones
 *    (renamed where a target label takes the name), and every query of every
 *    dashboard panel runs without an error and returns data, with the
 *    legend's labels on its series.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import t from 'tap';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { enableProcessMetrics, registry as processRegistry } from '../../base/metrics.js';
import '../../certs/csr-signer.js';
import { saveCa } from '../../certs/store.js';
import { DASHBOARDS } from '../../grafana/src/index.js';
import { documentedFamilies, labelsInPrometheus, PROCESSES, type Process, SCRAPE_JOBS, targetLabelsOf } from '../../grafana/src/metrics-table.js';
import { interpolate } from '../../grafana/src/promql.js';
import { ProxyMetrics } from '../../proxy/metrics.js';
import { prometheusUpConfig } from '../../src/cli/up/prometheus.js';
import { agentMetricsRegistry } from '../../src/wiring/agent-metrics.js';
import '../../src/wiring/scheduler-autoscale-metrics.js';
import '../../src/wiring/scheduler-metrics.js';
import { makeCa } from '../certs/fixtures.js';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { freePort } from '../helpers/ports.js';
import { startPrometheus } from '../helpers/prometheus.js';
import { instanceRegistration, makeHost, startProxy, writeLocal } from '../integration/proxy-hosts.js';
import { api, schedulerDataDir, startSchedulerChild, startSimAgent, TOKEN } from '../integration/scheduler-cluster.js';
import { productionSources } from '../structure/layering.js';
import { fillListener, schedulerEvents, slowHead, spendRetryBudget, startAgentChild } from './panel-events.js';

interface ParsedFamily {
  name: string;
  type: string;
}
const parseExposition = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

/** What the checks read of a registered metric (prom-client's classes and proxy/scraped-histogram.ts alike). */
interface RegisteredMetric {
  readonly labelNames?: string[];
  get(): Promise<{ name: string; type: unknown; values: Array<{ labels: Record<string, unknown> }> }>;
}

const ROOT = join(import.meta.dirname, '../..');
const families = documentedFamilies();
const byName = new Map(families.map((f) => [f.name, f]));
/** prom-client's default metrics, which weft enables with the weft_ prefix instead of declaring them by name. */
const isProcessMetric = (name: string): boolean => name.startsWith('weft_process_') || name.startsWith('weft_nodejs_');

/** Each process's scrape job (grafana/prometheus*.yml), read back. */
const PROCESS_OF_JOB = new Map<string, Process>(PROCESSES.map((p) => [SCRAPE_JOBS[p], p]));

/** proxy.maxConnections of h9: enough for the test's own connections, few enough to fill. */
const MAX_CONNECTIONS = 48;

t.test('the table has every family the sources declare, with its type and labels', async (t) => {
  t.ok(families.length >= 40, `${families.length} families documented`);
  t.equal(new Set(families.map((f) => f.name)).size, families.length, 'each family once');

  const declared = new Set<string>();
  for (const [file, source] of productionSources(ROOT)) {
    for (const m of source.matchAll(/\bname:\s*'(weft_[a-z0-9_]+)'/g)) {
      declared.add(m[1]!);
      t.ok(byName.has(m[1]!), `${m[1]} (${file}) is documented`);
    }
  }
  for (const f of families.filter((f) => !isProcessMetric(f.name))) t.ok(declared.has(f.name), `${f.name} is declared in the sources`);

  // The registries as the processes build them: the proxy's on its own; the agent's own merged with the process
  // registry; the process registry with the scheduler's, the autoscaler's and the CA's families (imported above).
  const proxyRegistry = new Registry();
  const proxyMetrics = new ProxyMetrics(proxyRegistry);
  // The latency histogram's labels show only on a series.
  proxyMetrics.route({ direction: 'inbound', source: 'a', destination: 'b', version: 'v1', instance: 'i' }).count(performance.now(), 200);
  enableProcessMetrics();
  const agentRegistry = agentMetricsRegistry({
    allocations: () => [],
    registered: () => 0,
    heartbeat: () => ({ lastSuccessMs: undefined, failures: 0 }),
    proxyRestarts: () => 0,
    signedStateRefused: () => new Map(),
    identitiesDir: undefined,
  });
  const registries: Array<{ registry: Registry; process: (name: string) => Process | undefined }> = [
    { registry: proxyRegistry, process: () => 'proxy' },
    // Besides the process metrics (every process's), the scheduler's families; the CA's too, which an agent
    // signing with a local CA serves as well (that shows on the real agent below).
    { registry: processRegistry, process: (name) => (isProcessMetric(name) ? undefined : 'scheduler') },
    // After the process registry, which its merge repeats: what is left is the agent's own.
    { registry: agentRegistry, process: () => 'agent' },
  ];
  const registered = new Map<string, { type: string; labels: string[]; process: Process | undefined }>();
  for (const { registry, process } of registries) {
    for (const metric of registry.getMetricsAsArray() as unknown as RegisteredMetric[]) {
      const got = await metric.get();
      const own = metric.labelNames;
      const seen = new Set(got.values.flatMap((v) => Object.keys(v.labels)));
      seen.delete('le');
      if (registered.has(got.name)) continue;
      registered.set(got.name, { type: String(got.type), labels: own ?? [...seen], process: process(got.name) });
    }
  }
  t.ok([...registered.values()].some((r) => r.process === 'agent'), "the agent's own families are told apart from the process registry's");
  t.strictSame([...registered.keys()].filter((n) => !byName.has(n)), [], 'every registered family is documented');
  t.strictSame(
    families.filter((f) => !registered.has(f.name)).map((f) => f.name),
    [],
    'every documented family is registered by the proxy, the agent, the scheduler or the process metrics',
  );
  for (const [name, r] of registered) {
    const doc = byName.get(name);
    if (doc === undefined) continue;
    t.equal(doc.type, r.type, `${name}: type ${r.type}`);
    t.strictSame([...doc.labels].sort(), [...r.labels].sort(), `${name}: labels ${r.labels.join(', ') || 'none'}`);
    if (isProcessMetric(name)) t.strictSame([...doc.processes].sort(), [...PROCESSES].sort(), `${name}: a process metric, served by every process`);
    else t.ok(r.process !== undefined && doc.processes.includes(r.process), `${name}: documented as the ${r.process}'s`);
  }
});

t.test('real processes export exactly the documented families, and every dashboard query finds them in Prometheus', async (t) => {
  const ca = makeCa();
  const consul = await startTestConsul(t);
  // Host h9 runs web, backend, payments and flaky, registered by hand: web calls the others through its outbound port
  // and the same proxy's inbound. Its listeners take MAX_CONNECTIONS each, so one can be filled.
  const host = await makeHost(t, ca, 'h9', '127.0.0.9', ['web', 'backend', 'payments', 'flaky']);
  const hostConfig = join(host.dataDir, 'config.yaml');
  const config = parseYaml(await readFile(hostConfig, 'utf8')) as { proxy: Record<string, unknown> };
  config.proxy['maxConnections'] = MAX_CONNECTIONS;
  await writeFile(hostConfig, stringifyYaml(config));
  const outboundPort = await freePort(host.address);
  await writeLocal(host, [{ service: 'web', outboundPort }]);
  const apps = [await app(t, host.address), await app(t, host.address), await app(t, host.address), await app(t, host.address)];
  await consul.consul.agent.service.register(instanceRegistration(host, 'h9-backend-1', 'backend', apps[0]!, { version: 'v1' }));
  await consul.consul.agent.service.register(instanceRegistration(host, 'h9-backend-2', 'backend', apps[1]!, { version: 'v2' }));
  await consul.consul.agent.service.register(instanceRegistration(host, 'h9-payments-1', 'payments', apps[2]!));
  await consul.consul.agent.service.register(instanceRegistration(host, 'h9-flaky-1', 'flaky', apps[3]!));
  // Host h10 as weft runs a host: a `weft agent` and a `weft proxy` sharing one data directory, where the agent
  // writes the identities the scheduler's CA signs for its services and the proxy presents them.
  const h10 = await makeHost(t, ca, 'h10', '127.0.0.10', []);
  const schedulerEnv = await schedulerDataDir(t, consul);
  // The scheduler signs with the CA h9's identities come from: both hosts trust each other.
  saveCa(schedulerEnv.dataDir, ca);
  // Registered in Consul as weft-scheduler (the helper's default is not to), so the shipped scrape job finds it.
  await writeFile(
    schedulerEnv.configFile,
    [
      `consul:\n  address: ${consul.address}`,
      'log:\n  format: json\n  level: info',
      `scheduler:\n  token: ${TOKEN}\n  leaderTtlMs: 2000\n  lostAfterMs: 3000\n  reconcileIntervalMs: 1000\n  register: true`,
      '',
    ].join('\n'),
  );
  // The scheduler, then the two host agents that need its address: h10's (the host's agent token), and one in
  // the test (h11) to lose; beside them the proxies.
  const schedulerAndAgents = (async () => {
    const scheduler = await startSchedulerChild(t, schedulerEnv);
    const [hostAgent, doomed] = await Promise.all([startAgentChild(t, consul.address, h10, scheduler.url), startSimAgent(t, consul, 'h11', '127.0.0.11', () => scheduler.url)]);
    return { scheduler, hostAgent, doomed };
  })();
  const [proxy, , { scheduler, hostAgent, doomed }] = await Promise.all([startProxy(t, host, consul.address), startProxy(t, h10, consul.address), schedulerAndAgents]);
  t.ok(proxy.proc.pid, 'weft proxy runs');
  // A slow client: half a request head, answered 408 once the head timeout (10 s) runs out, while the rest goes on.
  const slowClient = slowHead(host.address, outboundPort);
  // A job the scheduler cannot place (64 cores asked, no node offers more than 4): replicas and placement failures, and nothing runs.
  const job =
    'name: demo\ngroups:\n  - name: web\n    count: 2\n    tasks:\n      - name: web\n        driver: process\n        command: node\n        args: ["-e", "setInterval(() => {}, 1000)"]\n        resources:\n          cpu: 64000\n';
  const submitted = await api(scheduler.url, 'POST', '/v1/jobs', job);
  t.equal(submitted.status < 300, true, `the job is accepted: ${submitted.text}`);

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(() => agent.destroy());
  const call = (service: string, path = '/'): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: host.address, port: outboundPort, path, headers: { host: service }, agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  const events = schedulerEvents(t, { url: scheduler.url, node: h10.node, address: h10.address, agentMetricsUrl: hostAgent.metricsUrl, doomed, call });
  events.catch(() => undefined); // awaited below; a failure meanwhile is not an unhandled rejection

  await eventually(async () => (await call('backend')) === 200, 15_000, 'a first request through the mesh');
  // Failures to retry (and enough of them, on two instances, for an ejection), a service nobody runs, a denied caller.
  for (let i = 0; i < 15; i++) await call('backend', '/fail');
  t.equal(await call('nosuch'), 503, 'a service without instances is refused');
  await consul.consul.kv.set('weft/intentions/web/payments', JSON.stringify({ action: 'deny' }));
  await eventually(async () => (await call('payments')) === 403, 10_000, 'the deny to apply');
  // A service that answers 503 to everything, called until its retry budget is spent.
  const spent = await spendRetryBudget((service) => call(service, '/fail'), 'flaky', `http://${host.address}:${host.metricsPort}/metrics`);
  t.ok(spent > 0, `flaky's retry budget spent after ${spent} failing requests`);
  // A full listener: web's outbound port holds MAX_CONNECTIONS; the ones beyond are closed at accept.
  const refused = await fillListener(host.address, outboundPort, MAX_CONNECTIONS + 8, `http://${host.address}:${host.metricsPort}/metrics`);
  t.ok(refused > 0, `a full listener refused ${refused} connections`);
  // A request the parser refuses, and a plaintext client on the mTLS port.
  t.match(await raw(host.address, outboundPort, 'GET / HTTP/1.1\r\nHost: backend\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'), /^HTTP\/1\.1 400/);
  await raw(host.address, host.inboundPort, 'GET / HTTP/1.1\r\nHost: backend\r\n\r\n');
  // Steady traffic while Prometheus scrapes, so rates are not zero.
  let traffic = true;
  const loop = (async () => {
    while (traffic) {
      await call('backend').catch(() => 0);
      // The autoscaled service, measured by h10's proxy: the autoscaler's error ceiling reads it.
      await call('auto').catch(() => 0);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.teardown(async () => {
    traffic = false;
    await loop;
  });
  t.match(await slowClient, /^HTTP\/1\.1 408/, 'the slow client is answered 408');
  await events;

  // 2. /metrics of each process, compared with the table both ways.
  const proxyText = await (await fetch(`http://${host.address}:${host.metricsPort}/metrics`)).text();
  const schedulerText = await eventually(async () => {
    const text = (await api(scheduler.url, 'GET', '/metrics')).text;
    return text.includes('weft_scheduler_leader 1') ? text : undefined;
  }, 20_000, 'the scheduler to lead');
  const agentText = await (await fetch(hostAgent.metricsUrl)).text();
  for (const [process, text] of [
    ['proxy', proxyText],
    ['agent', agentText],
    ['scheduler', schedulerText],
  ] as const) {
    const served = parseExposition(text);
    const names = served.map((f) => f.name);
    t.strictSame(names.filter((n) => !byName.get(n)?.processes.includes(process)).sort(), [], `${process}: every family it serves is documented as its own`);
    t.strictSame(
      families.filter((f) => f.processes.includes(process) && !names.includes(f.name)).map((f) => f.name),
      [],
      `${process}: serves every family documented as its own`,
    );
    for (const f of served) if (byName.has(f.name)) t.equal(f.type.toLowerCase(), byName.get(f.name)!.type, `${process}: ${f.name} is a ${f.type.toLowerCase()}`);
  }

  // 3. Prometheus with the configuration `weft up --prometheus` writes from the shipped HTTP-SD file (this Consul,
  // a token file for the scheduler), at 1 s intervals and without the rules: every target found through Consul.
  // Started after the events: h11's agent, whose /metrics would carry this test process's registry (the families
  // imported above), has stopped by then, as a lost host's would have.
  const promDir = await mkdtemp(join(tmpdir(), 'weft-metrics-doc-'));
  t.teardown(() => rm(promDir, { recursive: true, force: true }));
  const tokenFile = join(promDir, 'token');
  await writeFile(tokenFile, TOKEN, { mode: 0o600 });
  const shipped = parseYaml(
    prometheusUpConfig(readFileSync(join(ROOT, 'grafana/prometheus-http-sd.yml'), 'utf8'), { consulAddress: consul.address, rulesDir: join(ROOT, 'grafana/rules'), tokenFile }),
  ) as { global: Record<string, unknown>; rule_files?: string[]; scrape_configs: Array<Record<string, unknown>> };
  shipped.global = { ...shipped.global, scrape_interval: '1s', evaluation_interval: '1s' };
  delete shipped.rule_files;
  for (const s of shipped.scrape_configs) for (const sd of (s['http_sd_configs'] ?? []) as Array<Record<string, unknown>>) sd['refresh_interval'] = '1s';
  const prom = await startPrometheus(t, stringifyYaml(shipped));

  const query = async (expr: string): Promise<Array<{ metric: Record<string, string> }>> => {
    const res = await fetch(`${prom.url}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: expr }) });
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string> }> } };
    if (body.status !== 'success') throw new Error(`${body.error} in ${expr}`);
    return body.data!.resultType === 'vector' ? body.data!.result : [];
  };
  // Two scrapes of each target after the events above, so rates have two points: the series of every event included.
  const scrapedTwice = [
    'weft_proxy_intention_denials_total',
    'weft_proxy_retries_skipped_total{reason="budget-exhausted"}',
    'weft_proxy_client_timeouts_total{phase="head"}',
    'weft_proxy_connections_refused_total',
    'weft_agent_tasks_registered',
    'weft_agent_certificate_expiry_timestamp_seconds',
    'weft_scheduler_replicas',
    'weft_scheduler_node_cpu_capacity_cores',
    'weft_scheduler_placements_total{reason="replace-lost"}',
    'weft_scheduler_stops_total{reason="node-lost"}',
    'weft_scheduler_stops_total{reason="scale-down"}',
    'weft_scheduler_allocation_health_changes_total',
    'weft_ca_csr_total',
    'weft_autoscaler_decisions_total',
    'weft_autoscaler_metric_value',
  ];
  await eventually(
    async () => {
      for (const selector of scrapedTwice) if ((await query(`count(count_over_time(${selector}[1m]) >= 2)`)).length === 0) return false;
      return true;
    },
    30_000,
    `Prometheus to scrape the proxy, the agent and the scheduler (leading, with the nodes) twice: ${scrapedTwice.join(', ')}`,
  );

  const series = (await prom.api<Array<Record<string, string>>>(`/api/v1/series?${new URLSearchParams({ 'match[]': '{__name__=~"weft_.+"}' })}`)) ?? [];
  const seenFamilies = new Set<string>();
  const seenJobs = new Set<string>();
  for (const s of series) {
    const name = s['__name__']!;
    const family = byName.get(name) ?? byName.get(name.replace(/_(bucket|sum|count)$/, ''));
    if (!t.ok(family, `${name} in Prometheus is documented`)) continue;
    const job = s['job']!;
    // Once per name and scrape job: the process metrics come from all three.
    if (seenFamilies.has(`${name} ${job}`)) continue;
    seenFamilies.add(`${name} ${job}`);
    const process = PROCESS_OF_JOB.get(job);
    if (!t.ok(process, `${name}: scraped by a weft job (${job})`)) continue;
    seenJobs.add(job);
    t.ok(family!.processes.includes(process!), `${name}: served by the ${process}, as documented`);
    const missing = [...targetLabelsOf(process!)].filter((l) => s[l] === undefined || s[l] === '');
    t.strictSame(missing, [], `${name} (${job}): carries its job's target labels`);
    const allowed = labelsInPrometheus(family!, name.endsWith('_bucket') && family!.type === 'histogram' ? 'bucket' : 'plain');
    const extra = Object.keys(s).filter((l) => l !== '__name__' && !allowed.has(l));
    t.strictSame(extra, [], `${name}: its labels in Prometheus are the documented ones`);
  }
  t.strictSame([...seenJobs].sort(), [...PROCESS_OF_JOB.keys()].sort(), 'a proxy, an agent and a scheduler scraped through their Consul registrations');
  const seenNames = new Set([...seenFamilies].map((k) => k.split(' ')[0]));
  t.ok(seenNames.size >= 55, `${seenNames.size} series names seen in Prometheus`);

  for (const d of DASHBOARDS) {
    const dashboard = d.build();
    // All (`.*`) for a multi-value variable; the service with the most to show where one must be chosen.
    const values: Record<string, string> = {};
    for (const v of dashboard.templating?.list ?? []) if (v.type === 'query') values[v.name] = v.multi === true ? '.*' : 'backend';
    for (const panel of dashboard.panels ?? []) {
      if (panel.type === 'row') continue;
      const title = `${dashboard.title}: ${(panel as { title?: string }).title}`;
      const targets = ((panel as { targets?: Array<{ expr?: string; legendFormat?: string; refId?: string }> }).targets ?? []).filter((q) => q.expr !== undefined);
      t.ok(targets.length > 0, `${title}: has queries`);
      for (const q of targets) {
        const result = await query(interpolate(q.expr!, values)).catch((err: Error) => {
          t.fail(`${title}: ${err.message}`);
          return [];
        });
        // Every query of the panel, not just one of them: a line that never shows is a broken query too.
        t.ok(result.length > 0, `${title}: query ${q.refId} shows data: ${q.expr}`);
        const wanted = [...(q.legendFormat ?? '').matchAll(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);
        for (const r of result) for (const label of wanted) t.ok(label in r.metric, `${title}: legend label ${label} is on its series ${JSON.stringify(r.metric)}`);
      }
    }
  }
});

/** A local app: 200 with a small body, 503 on /fail. */
async function app(t: { teardown(fn: () => unknown): void }, address: string): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.statusCode = req.url === '/fail' ? 503 : 200;
    res.end('ok\n');
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** Writes `request` on a fresh TCP connection; resolves with what came back before the close (or after 3 s). */
function raw(host: string, port: number, request: string): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const socket = net.connect(port, host, () => socket.write(request));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (got += d));
    socket.setTimeout(3000, () => socket.destroy());
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(got));
  });
}
