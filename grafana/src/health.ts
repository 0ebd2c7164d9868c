/**
 * Health: the proxies themselves (memory, CPU, event loop, connections),
 * certificates and mTLS, and what the data plane refused or ejected.
 *
 * Not here yet, for want of a metric (grafana/README.md, "Not on the
 * dashboards yet"): passing vs registered instances per service, health-check
 * flaps, Consul reachability and last-known-good use.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { bars, datasourceVariable, finish, frame, hostVariable, row, serviceVariable, singleStat, timeSeries } from './common.js';

/** The proxies' process metrics (the scheduler exports the same weft_process_* names: the scrape job tells them apart). */
const PROXY = 'job="weft-proxy", host=~"$host"';
const RATE = '[$__rate_interval]';

/** The Health dashboard. */
export function health(): Dashboard {
  return finish(
    frame('weft-health', 'weft / Health', 'weft proxies, certificates and mTLS, ejections and refusals.')
      .withVariable(datasourceVariable())
      .withVariable(serviceVariable({ multi: true }))
      .withVariable(hostVariable())

      .withRow(row('Proxies'))
      .withPanel(singleStat({ title: 'Proxies reporting', description: 'weft proxies Prometheus scraped at the last scrape.', queries: [{ expr: `count(weft_process_start_time_seconds{${PROXY}})` }] }))
      .withPanel(
        singleStat({
          title: 'Open connections',
          description: 'Client connections open on every proxy listener (apps on outbound, peer proxies on inbound).',
          queries: [{ expr: 'sum(weft_proxy_connections_open{host=~"$host"})' }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Largest proxy memory',
          description: 'Resident memory of the largest proxy.',
          unit: 'bytes',
          queries: [{ expr: `max(weft_process_resident_memory_bytes{${PROXY}})` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Soonest certificate expiry',
          description: 'Time until the first leaf certificate a proxy presents expires (renewal normally keeps it far away).',
          unit: 's',
          queries: [{ expr: 'min(weft_proxy_certificate_expiry_timestamp_seconds{service=~"$service", host=~"$host"}) - time()' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Proxy memory',
          description: 'Resident memory per proxy.',
          unit: 'bytes',
          span: 8,
          queries: [{ expr: `weft_process_resident_memory_bytes{${PROXY}}`, legend: '{{host}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Proxy CPU',
          description: 'CPU per proxy (1 = one core busy).',
          unit: 'percentunit',
          span: 8,
          queries: [{ expr: `rate(weft_process_cpu_seconds_total{${PROXY}}${RATE})`, legend: '{{host}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Proxy event loop lag p99',
          description: '99th percentile event loop delay per proxy: every request waits at least this long when it is high.',
          unit: 's',
          span: 8,
          queries: [{ expr: `weft_nodejs_eventloop_lag_p99_seconds{${PROXY}}`, legend: '{{host}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Open connections per proxy',
          description: 'Client connections open on the listeners, per proxy and direction.',
          queries: [{ expr: 'sum by (host, direction) (weft_proxy_connections_open{host=~"$host"})', legend: '{{host}} {{direction}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Pooled connections per proxy',
          description: 'Upstream keep-alive connections per proxy, active or idle.',
          queries: [{ expr: 'sum by (host, direction, state) (weft_proxy_pool_connections{host=~"$host"})', legend: '{{host}} {{direction}} {{state}}' }],
        }),
      )

      .withRow(row('Certificates and mTLS'))
      .withPanel(
        bars({
          title: 'Certificate expiry per service',
          description: 'Time until the leaf certificate each service presents expires, soonest over every host that holds it.',
          unit: 's',
          queries: [{ expr: 'sort(min by (service) (weft_proxy_certificate_expiry_timestamp_seconds{service=~"$service", host=~"$host"}) - time())', legend: '{{service}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'TLS handshake failures',
          description: 'Failed mTLS handshakes per second, by direction and reason (untrusted, expired, identity, plaintext, ...).',
          unit: 'ops',
          queries: [{ expr: `sum by (direction, reason) (rate(weft_proxy_tls_handshake_failures_total{host=~"$host"}${RATE}))`, legend: '{{direction}} {{reason}}' }],
        }),
      )

      .withRow(row('Ejections and refusals'))
      .withPanel(
        timeSeries({
          title: 'Outlier ejections',
          description: 'Instances ejected by outlier detection, per service.',
          span: 8,
          queries: [{ expr: `sum by (destination) (increase(weft_proxy_ejections_total{destination=~"$service", host=~"$host"}${RATE}))`, legend: '{{destination}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'HTTP protocol errors',
          description: 'Requests refused by the parser before routing: 400 (malformed, smuggling), 408 (slow head), 431 (head too large).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (direction, code) (rate(weft_proxy_http_protocol_errors_total{host=~"$host"}${RATE}))`, legend: '{{direction}} {{code}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Slow clients and full listeners',
          description: 'Connections closed for a slow client (by phase), and connections refused at accept because a listener was full.',
          unit: 'ops',
          span: 8,
          queries: [
            { expr: `sum by (direction, phase) (rate(weft_proxy_client_timeouts_total{host=~"$host"}${RATE}))`, legend: 'timeout {{direction}} {{phase}}' },
            { expr: `sum by (listener, reason) (rate(weft_proxy_connections_refused_total{host=~"$host"}${RATE}))`, legend: 'refused {{listener}} {{reason}}' },
          ],
        }),
      ),
  );
}
