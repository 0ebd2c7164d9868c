/**
 * Mesh traffic: the golden signals of every service as its callers see them
 * (the outbound side of each caller's proxy), per service and per version,
 * then who calls whom, status codes, and what the resilience layer did
 * (retries, the retry budget, in-flight requests, refusals, intentions).
 *
 * Success means "not a 5xx": a 4xx is the caller's error, not the service's.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { bars, datasourceVariable, finish, frame, hostVariable, row, serviceVariable, singleStat, timeSeries, versionVariable } from './common.js';

const FILTER = 'direction="outbound", destination=~"$service", version=~"$version", host=~"$host"';
const REQUESTS = `weft_proxy_requests_total{${FILTER}}`;
const ERRORS = `weft_proxy_requests_total{${FILTER}, code=~"5.."}`;
const BUCKETS = `weft_proxy_request_duration_seconds_bucket{${FILTER}}`;
const RATE = '[$__rate_interval]';

/** p50/p95/p99 of the outbound latency, grouped `by`. */
function quantiles(by: string, legend: string, wrap: (expr: string) => string = (e) => e) {
  return [0.5, 0.95, 0.99].map((q) => ({
    expr: wrap(`histogram_quantile(${q}, sum by (${by}le) (rate(${BUCKETS}${RATE})))`),
    legend: `${legend} p${Math.round(q * 100)}`,
  }));
}

/** Names the empty version of refused requests `none`, as the inbound side does, so legends read "backend none". */
function versionOrNone(expr: string): string {
  return `label_replace(${expr}, "version", "none", "version", "")`;
}

/** Success rate (non-5xx share) grouped `by` (empty: overall). */
function successRate(by: string): string {
  const sum = by === '' ? 'sum(' : `sum by (${by}) (`;
  return `1 - (${sum}rate(${ERRORS}${RATE})) or ${sum}rate(${REQUESTS}${RATE})) * 0) / ${sum}rate(${REQUESTS}${RATE}))`;
}

/** The Mesh traffic dashboard. */
export function meshTraffic(): Dashboard {
  return finish(
    frame('weft-mesh-traffic', 'weft / Mesh traffic', 'Golden signals of the services in the weft mesh, as their callers see them (outbound side of each proxy).')
      .withVariable(datasourceVariable())
      .withVariable(serviceVariable({ multi: true }))
      .withVariable(versionVariable())
      .withVariable(hostVariable())

      .withRow(row('Mesh overview'))
      .withPanel(
        singleStat({ title: 'Requests/s', description: 'Requests answered per second to the selected services, over every caller.', unit: 'reqps', queries: [{ expr: `sum(rate(${REQUESTS}${RATE}))` }] }),
      )
      .withPanel(
        singleStat(
          { title: 'Success rate', description: 'Share of answers that were not 5xx (the proxy\'s own 502/503/504 included).', unit: 'percentunit', queries: [{ expr: successRate('') }] },
          { decimals: 2 },
        ),
      )
      .withPanel(
        singleStat({
          title: 'p99 latency',
          description: '99th percentile of request start to response end, measured by the calling proxy.',
          unit: 's',
          queries: [{ expr: `histogram_quantile(0.99, sum by (le) (rate(${BUCKETS}${RATE})))` }],
        }),
      )
      .withPanel(
        singleStat({
          title: 'In flight',
          description: 'Requests received by the callers\' proxies and not answered yet.',
          queries: [{ expr: 'sum(weft_proxy_requests_in_flight{direction="outbound", destination=~"$service", host=~"$host"})' }],
        }),
      )

      .withRow(row('Per service'))
      .withPanel(
        timeSeries({
          title: 'Requests/s per service',
          description: 'Requests answered per second, per destination service.',
          unit: 'reqps',
          span: 8,
          queries: [{ expr: `sum by (destination) (rate(${REQUESTS}${RATE}))`, legend: '{{destination}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          { title: 'Success rate per service', description: 'Share of non-5xx answers per destination service.', unit: 'percentunit', span: 8, queries: [{ expr: successRate('destination'), legend: '{{destination}}' }] },
          { max: 1 },
        ),
      )
      .withPanel(
        timeSeries({ title: 'Latency per service', description: 'p50, p95 and p99 latency per destination service, as the caller saw it (retries included).', unit: 's', span: 8, queries: quantiles('destination, ', '{{destination}}') }),
      )

      .withRow(row('Per version'))
      .withPanel(
        timeSeries({
          title: 'Requests/s per version',
          description: 'Requests answered per second, per service and version (version none: refused before an instance was chosen).',
          unit: 'reqps',
          span: 8,
          queries: [{ expr: versionOrNone(`sum by (destination, version) (rate(${REQUESTS}${RATE}))`), legend: '{{destination}} {{version}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Success rate per version',
            description: 'Share of non-5xx answers per service and version: a canary that fails shows here first.',
            unit: 'percentunit',
            span: 8,
            queries: [{ expr: versionOrNone(successRate('destination, version')), legend: '{{destination}} {{version}}' }],
          },
          { max: 1 },
        ),
      )
      .withPanel(
        timeSeries({ title: 'Latency per version', description: 'p50, p95 and p99 latency per service and version.', unit: 's', span: 8, queries: quantiles('destination, version, ', '{{destination}} {{version}}', versionOrNone) }),
      )

      .withRow(row('Callers and status codes'))
      .withPanel(
        bars({
          title: 'Top callers',
          description: 'The 10 busiest caller -> service pairs over the selected time range (mean requests/s).',
          unit: 'reqps',
          queries: [{ expr: `topk(10, sum by (source, destination) (rate(${REQUESTS}[$__range])))`, legend: '{{source}} -> {{destination}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Status codes',
            description: 'Answers per second by HTTP status code (499: the caller left before the answer).',
            unit: 'reqps',
            queries: [{ expr: `sum by (code) (rate(${REQUESTS}${RATE}))`, legend: '{{code}}' }],
          },
          { stacked: true },
        ),
      )

      .withRow(row('Resilience'))
      .withPanel(
        timeSeries({
          title: 'Retries/s',
          description: 'Retry attempts per second, per service and what failed (a 5xx status, reset, connect, timeout).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (destination, reason) (rate(weft_proxy_retries_total{destination=~"$service", host=~"$host"}${RATE}))`, legend: '{{destination}} {{reason}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Retry budget exhausted',
          description: 'Failures not retried because the service\'s retry budget (20% of requests + 10/s) was spent.',
          unit: 'ops',
          span: 8,
          queries: [
            {
              expr: `sum by (destination) (rate(weft_proxy_retries_skipped_total{reason="budget-exhausted", destination=~"$service", host=~"$host"}${RATE}))`,
              legend: '{{destination}}',
            },
          ],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Failures not retried',
          description: 'Failed attempts the retry policy did not retry, by its reason (not-idempotent, body-streamed, deadline, max-retries, ...).',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (reason) (rate(weft_proxy_retries_skipped_total{destination=~"$service", host=~"$host"}${RATE}))`, legend: '{{reason}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'In flight per service',
          description: 'Requests in flight per destination service, at the callers\' proxies; the pending limit (default 1024) refuses beyond it.',
          span: 8,
          queries: [{ expr: 'sum by (destination) (weft_proxy_requests_in_flight{direction="outbound", destination=~"$service", host=~"$host"})', legend: '{{destination}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Refused before an instance was chosen',
          description:
            '503s the outbound proxy answered itself, without an instance: pending-request limit reached, no routable instance, or a caller without an identity (the x-weft-reason header and the proxy log tell which).',
          unit: 'reqps',
          span: 8,
          queries: [
            {
              expr: 'sum by (destination) (rate(weft_proxy_requests_total{direction="outbound", code="503", version="", destination=~"$service", host=~"$host"}[$__rate_interval]))',
              legend: '{{destination}}',
            },
          ],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Intention denials',
          description: 'Requests refused (403) by intentions at the destination\'s proxy, per caller and service.',
          unit: 'reqps',
          span: 8,
          queries: [
            { expr: `sum by (source, destination) (rate(weft_proxy_intention_denials_total{destination=~"$service", host=~"$host"}${RATE}))`, legend: '{{source}} -> {{destination}}' },
          ],
        }),
      ),
  );
}
