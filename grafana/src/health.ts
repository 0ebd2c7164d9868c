/**
 * Health: the proxies themselves (memory, CPU, event loop, connections), the
 * host agents (heartbeat to Consul, allocations, proxy restarts),
 * certificates and mTLS (as the proxies present them and as the agents hold
 * them), and what the data plane refused or ejected.
 *
 * The scheduler's Consul reachability and allocation health flaps are on the
 * Scheduler dashboard. Not here yet, for want of a metric (grafana/README.md,
 * "Not on the dashboards yet"): passing vs registered instances per service,
 * the proxies' own Consul reachability and last-known-good use.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { bars, datasourceVariable, finish, frame, hostVariable, row, serviceVariable, singleStat, timeSeries } from './common.js';

/** The proxies' process metrics (the scheduler exports the same weft_process_* names: the scrape job tells them apart). */
const PROXY = 'job="weft-proxy", host=~"$host"';
const RATE = '[$__rate_interval]';
/** Agents' series (job weft-agent; they carry the scrape's host label). */
const AGENTS = 'host=~"$host"';
/** Seconds since each agent's heartbeat last reached Consul (0 before the first: no series until then). */
const HEARTBEAT_AGE = `time() - (weft_agent_heartbeat_last_success_timestamp_seconds{${AGENTS}} > 0)`;
const AGENT_EXPIRY = 'weft_agent_certificate_expiry_timestamp_seconds{service=~"$service", host=~"$host"}';
const AGENT_NOT_BEFORE = 'weft_agent_certificate_not_before_timestamp_seconds{service=~"$service", host=~"$host"}';

/** The Health dashboard. */
export function health(): Dashboard {
  return finish(
    frame('weft-health', 'weft / Health', 'weft proxies and host agents, certificates and mTLS, ejections and refusals.')
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

      .withRow(row('Agents'))
      .withPanel(
        singleStat({
          title: 'Agents reporting',
          description: 'weft agents Prometheus scraped at the last scrape (an agent whose metrics port was taken runs unscraped).',
          queries: [{ expr: `count(weft_agent_tasks_registered{${AGENTS}})` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Oldest agent heartbeat',
          description: "Seconds since the heartbeat of the most out-of-touch agent last reached Consul: past the heartbeat TTL the scheduler sees its node down, past scheduler.lostAfterMs lost.",
          unit: 's',
          queries: [{ expr: `max(${HEARTBEAT_AGE})` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Soonest agent certificate expiry',
          description: 'Time until the first leaf certificate an agent holds for a local service expires (the agent renews at 60-90% of its life).',
          unit: 's',
          queries: [{ expr: `min(${AGENT_EXPIRY}) - time()` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'Proxy restarts',
          description: 'Times the agents found their supervised weft proxy dead and restarted it, over the time range (0 for agents that supervise none).',
          queries: [{ expr: `sum(increase(weft_agent_proxy_restarts_total{${AGENTS}}[$__range]))` }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Agent heartbeat age',
            description: "Seconds since each agent's heartbeat (its weft-agent TTL check) last reached Consul: a sawtooth below the TTL is healthy; a line climbing is an agent cut off from Consul.",
            unit: 's',
            span: 8,
            queries: [{ expr: `max by (host) (${HEARTBEAT_AGE})`, legend: '{{host}}' }],
          },
          { min: 0 },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'Agent heartbeat failures',
          description: 'Heartbeats Consul did not take, per agent (Consul unreachable, or the check gone).',
          span: 8,
          queries: [{ expr: `sum by (host) (increase(weft_agent_heartbeat_failures_total{${AGENTS}}${RATE}))`, legend: '{{host}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Allocations per agent',
            description: 'Allocations each agent runs, by the state it last reported (pending, running, failed, stopped), and the instances it registered in Consul.',
            span: 8,
            queries: [
              { expr: `sum by (host, state) (weft_agent_allocations{${AGENTS}})`, legend: '{{host}} {{state}}' },
              { expr: `sum by (host) (weft_agent_tasks_registered{${AGENTS}})`, legend: '{{host}} registered' },
            ],
          },
          { min: 0 },
        ),
      )

      .withRow(row('Certificates and mTLS'))
      .withPanel(
        bars({
          title: 'Certificate expiry per service',
          description: 'Time until the leaf certificate each service presents expires, soonest over every host whose proxy presents it.',
          unit: 's',
          span: 8,
          queries: [{ expr: 'sort(min by (service) (weft_proxy_certificate_expiry_timestamp_seconds{service=~"$service", host=~"$host"}) - time())', legend: '{{service}}' }],
        }),
      )
      .withPanel(
        bars({
          title: 'Agent certificate expiry per host',
          description: 'Time until the leaf certificate each agent holds for each local service expires (the files its host proxy presents), per host and service.',
          unit: 's',
          span: 8,
          queries: [{ expr: `sort(min by (host, service) (${AGENT_EXPIRY}) - time())`, legend: '{{host}} {{service}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Certificate life left',
            description: 'Share of the lifetime (notBefore to notAfter) of each leaf an agent holds still ahead: renewal, at 60-90% of the life, brings it back to 1; below 0.1 and falling, renewal is failing.',
            unit: 'percentunit',
            span: 8,
            queries: [
              {
                expr: `min by (host, service) ((${AGENT_EXPIRY} - time()) / (${AGENT_EXPIRY} - ${AGENT_NOT_BEFORE}))`,
                legend: '{{host}} {{service}}',
              },
            ],
          },
          { min: 0, max: 1 },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'TLS handshake failures',
          description: 'Failed mTLS handshakes per second, by direction and reason (untrusted, expired, identity, plaintext, ...).',
          unit: 'ops',
          span: 24,
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
