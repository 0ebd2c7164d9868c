/**
 * A real Prometheus (Debian's 2.42) discovers weft-registered instances through
 * the dev agent, with consul_sd's `__meta_consul_*` labels, and scrapes them.
 * Debian's build has no consul_sd, so it uses the shipped
 * grafana/prometheus-http-sd.yml against weft's HTTP SD route; the labels are
 * the ones consul_sd would attach (see discovery/prometheus-sd.ts).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import t from 'tap';
import { startTestConsul } from '../helpers/dev-consul.js';
import { eventually } from '../helpers/eventually.js';
import { startPrometheus } from '../helpers/prometheus.js';

interface Target {
  discoveredLabels: Record<string, string>;
  labels: Record<string, string>;
  scrapePool: string;
  health: string;
}

/** A tiny app exposing /metrics on a simulated host address. */
async function metricsApp(t: { teardown(fn: () => unknown): void }, host: string): Promise<number> {
  const srv = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.setHeader('content-type', 'text/plain; version=0.0.4');
      res.end('# TYPE demo_requests_total counter\ndemo_requests_total 42\n');
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((r) => srv.listen(0, host, r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return (srv.address() as { port: number }).port;
}

t.test('Prometheus discovers instances with __meta_consul_* labels and scrapes them', async (t) => {
  const c = await startTestConsul(t);
  const ports = [await metricsApp(t, '127.0.0.2'), await metricsApp(t, '127.0.0.3')];
  for (const [i, host] of ['127.0.0.2', '127.0.0.3'].entries()) {
    await c.consul.agent.service.register({
      name: 'web',
      id: `host${i + 2}-web-${i}`,
      address: host,
      port: ports[i]!,
      tags: ['weft', 'http'],
      meta: { weft_host: `host${i + 2}`, weft_instance: `web-${i}`, weft_version: i === 0 ? 'v1' : 'v2', weft_weight: '1', weft_metrics_path: '/metrics' },
    });
  }
  // A service without the weft tag must not be picked up by the weft-services job.
  await c.consul.agent.service.register({ name: 'other', id: 'other-1', address: '127.0.0.4', port: 9, tags: ['x'] });

  const shipped = readFileSync(new URL('../../grafana/prometheus-http-sd.yml', import.meta.url), 'utf8');
  const config = shipped
    .replaceAll('127.0.0.1:8500', c.address)
    .replaceAll('refresh_interval: 15s', 'refresh_interval: 1s')
    .replace('scrape_interval: 15s', 'scrape_interval: 1s');
  t.not(config, shipped, 'the shipped config points at the agent');
  const prom = await startPrometheus(t, config);

  const targets = await eventually(
    async () => {
      const data = await prom.api<{ activeTargets: Target[] }>('/api/v1/targets');
      const web = data.activeTargets.filter((x) => x.scrapePool === 'weft-services');
      return web.length === 2 && web.every((x) => x.health === 'up') ? web : undefined;
    },
    30_000,
    'both web instances discovered and scraped',
  );
  const byVersion = Object.fromEntries(targets.map((x) => [x.labels['version'], x]));
  t.strictSame(Object.keys(byVersion).sort(), ['v1', 'v2'], 'relabelled version label from weft_version');
  const v1 = byVersion['v1']!;
  t.equal(v1.discoveredLabels['__meta_consul_service'], 'web');
  t.equal(v1.discoveredLabels['__meta_consul_service_id'], 'host2-web-0');
  t.equal(v1.discoveredLabels['__meta_consul_service_address'], '127.0.0.2');
  t.equal(v1.discoveredLabels['__meta_consul_service_port'], String(ports[0]));
  t.equal(v1.discoveredLabels['__meta_consul_service_metadata_weft_host'], 'host2');
  t.equal(v1.discoveredLabels['__meta_consul_tags'], ',weft,http,');
  t.equal(v1.discoveredLabels['__meta_consul_dc'], 'dc1');
  t.equal(v1.discoveredLabels['__meta_consul_health'], 'passing');
  t.equal(v1.discoveredLabels['__address__'], `127.0.0.2:${ports[0]}`);
  t.equal(v1.labels['service'], 'web');

  const up = await eventually(
    async () => {
      const r = await prom.api<{ result: Array<{ metric: Record<string, string>; value: [number, string] }> }>(
        `/api/v1/query?query=${encodeURIComponent('demo_requests_total{service="web"}')}`,
      );
      return r.result.length === 2 ? r.result : undefined;
    },
    20_000,
    'samples scraped from both instances',
  );
  t.strictSame(up.map((r) => r.value[1]), ['42', '42'], 'scraped the apps through discovered targets');

  // Deregistering an instance removes its target within the refresh interval.
  await c.consul.agent.service.deregister('host3-web-1');
  await eventually(
    async () => {
      const data = await prom.api<{ activeTargets: Target[] }>('/api/v1/targets');
      const web = data.activeTargets.filter((x) => x.scrapePool === 'weft-services');
      return web.length === 1 ? true : undefined;
    },
    20_000,
    'the deregistered instance to drop out',
  );
  t.pass('deregistered instance dropped out of Prometheus');
});
