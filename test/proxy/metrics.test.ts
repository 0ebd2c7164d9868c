import { spawnSync } from 'node:child_process';
import { Registry } from 'prom-client';
import t from 'tap';
import { ProxyMetrics, tlsFailureReason } from '../../proxy/metrics.js';

function filled(): { registry: Registry; metrics: ProxyMetrics } {
  const registry = new Registry();
  const metrics = new ProxyMetrics(registry);
  const route = metrics.route({ direction: 'inbound', source: 'web', destination: 'api', version: 'v2', instance: 'h1-a' });
  route.end(route.start(), 200);
  route.end(route.start(), 200);
  route.end(route.start(), 503);
  route.start(); // still in flight
  metrics.retries.inc({ destination: 'api', reason: '503' });
  metrics.retriesSkipped.inc({ destination: 'api', reason: 'budget-exhausted' });
  metrics.ejections.inc({ destination: 'api', instance: 'h1-a' });
  metrics.tlsFailures.inc({ direction: 'inbound', reason: 'untrusted' });
  metrics.setCertificateExpiry('api', new Date('2030-01-01T00:00:00Z'));
  metrics.addPoolSource('inbound', () => [{ destination: 'api', active: 2, idle: 3 }]);
  metrics.connections.inc({ direction: 'inbound' });
  metrics.protocolErrors.inc({ direction: 'inbound', code: '400' });
  metrics.denials.inc({ source: 'web', destination: 'api' });
  return { registry, metrics };
}

t.test('promtool check metrics accepts the exposition', async (t) => {
  const { registry } = filled();
  const text = await registry.metrics();
  const run = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(run.status, 0, `promtool: ${run.stdout}${run.stderr}`);
  t.equal(`${run.stdout}${run.stderr}`.trim(), '', 'no lint findings');
});

t.test('a route counts by status code, times and tracks in-flight', async (t) => {
  const { registry } = filled();
  const text = await registry.metrics();
  t.match(text, /weft_proxy_requests_total\{direction="inbound",source="web",destination="api",version="v2",instance="h1-a",code="200"\} 2/);
  t.match(text, /weft_proxy_requests_total\{[^}]*code="503"\} 1/);
  t.match(text, /weft_proxy_requests_in_flight\{direction="inbound",destination="api"\} 1/);
  t.match(text, /weft_proxy_request_duration_seconds_count\{direction="inbound",source="web",destination="api",version="v2"\} 3/);
  t.match(text, /weft_proxy_pool_connections\{direction="inbound",destination="api",state="idle"\} 3/);
  t.match(text, /weft_proxy_certificate_expiry_timestamp_seconds\{service="api"\} 1893456000/);
});

t.test('route() returns the same handles for the same labels', async (t) => {
  const metrics = new ProxyMetrics(new Registry());
  const labels = { direction: 'outbound', source: 'a', destination: 'b', version: 'v1', instance: 'i' } as const;
  t.equal(metrics.route(labels), metrics.route({ ...labels }));
  t.not(metrics.route(labels), metrics.route({ ...labels, instance: 'j' }));
});

t.test('TLS failures map to a few reasons', async (t) => {
  const cases: Array<[Error & { code?: string }, string]> = [
    [Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'plaintext'],
    [Object.assign(new Error('peer did not return a certificate'), { code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' }), 'no_client_certificate'],
    [Object.assign(new Error('sslv3 alert certificate expired'), { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED' }), 'expired'],
    [Object.assign(new Error('certificate verify failed'), { code: 'ERR_SSL_CERTIFICATE_VERIFY_FAILED' }), 'untrusted'],
    [new Error('peer certificate has no SPIFFE ID'), 'identity'],
    [new Error('something else'), 'protocol'],
  ];
  for (const [err, reason] of cases) t.equal(tlsFailureReason(err), reason, err.message);
});
