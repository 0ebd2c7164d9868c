/**
 * Service detail: one service. Its instances as their own host's proxy sees
 * them (the inbound side: requests, errors and latency where the instance
 * runs), its version split as the callers' proxies applied it, what the
 * resilience layer did to it (ejections, retries, status codes, in-flight,
 * pooled connections), and how the autoscaler moves the groups that run it.
 *
 * The autoscaler's series are per weft job and group (`exported_job`, weft's
 * `job` label renamed by the scrape), and no series ties a service to the job
 * that runs it: the Autoscaling row has its own variable, `job` (the
 * autoscaled jobs), rather than guessing that a job is named after its
 * service.
 */
import type { Dashboard, QueryVariableBuilder } from '@grafana/grafana-foundation-sdk/dashboard';
import { datasourceVariable, finish, frame, hostVariable, labelTable, labelVariable, row, serviceVariable, timeSeries, versionVariable } from './common.js';

/** Inbound answers of the service's instances ("none": refused before reaching one, e.g. by an intention). */
const INBOUND = 'weft_proxy_requests_total{direction="inbound", destination="$service", version=~"$version", host=~"$host", exported_instance!="none"}';
const INBOUND_ERRORS = 'weft_proxy_requests_total{direction="inbound", destination="$service", version=~"$version", host=~"$host", exported_instance!="none", code=~"5.."}';
const INBOUND_BUCKETS = 'weft_proxy_request_duration_seconds_bucket{direction="inbound", destination="$service", version=~"$version", version!="none", host=~"$host"}';
/** Outbound answers for the service, at every caller's proxy (version "": refused before an instance was chosen). */
const OUTBOUND = 'weft_proxy_requests_total{direction="outbound", destination="$service", version=~"$version", version!="", host=~"$host"}';
const RATE = '[$__rate_interval]';
/** The autoscaled groups of the chosen jobs (only the leading scheduler reports them: max over schedulers is the leader's). */
const AUTOSCALED = 'exported_job=~"$job"';
const BY_GROUP = 'max by (exported_job, group)';
const BY_METRIC = 'max by (exported_job, group, metric)';

/** `job`: weft jobs with an autoscaled group (the leader's weft_autoscaler_* series). */
function autoscaledJobVariable(): QueryVariableBuilder {
  return labelVariable('job', 'Autoscaled job', 'label_values(weft_autoscaler_desired_replicas, exported_job)', { multi: true });
}

/** The Service detail dashboard. */
export function serviceDetail(): Dashboard {
  return finish(
    frame('weft-service-detail', 'weft / Service detail', 'One service: its instances, its version split, ejections and retries, and the autoscaling of its job.')
      .withVariable(datasourceVariable())
      .withVariable(serviceVariable({ multi: false }))
      .withVariable(versionVariable())
      .withVariable(hostVariable())
      .withVariable(autoscaledJobVariable())

      .withRow(row('Instances'))
      .withPanel(
        labelTable({
          title: 'Instances',
          description: 'Every instance that answered in the time range: its host, version and mean requests/s (measured by the proxy on its host).',
          unit: 'reqps',
          span: 24,
          height: 7,
          queries: [{ expr: `sum by (host, version, exported_instance) (rate(${INBOUND}[$__range]))` }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Requests/s per instance',
          description: 'Requests answered per second by each instance.',
          unit: 'reqps',
          span: 8,
          queries: [{ expr: `sum by (exported_instance, version) (rate(${INBOUND}${RATE}))`, legend: '{{exported_instance}} {{version}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Error rate per instance',
            description: 'Share of 5xx answers per instance (an instance that is down shows as 502 from its host\'s proxy).',
            unit: 'percentunit',
            span: 8,
            queries: [
              {
                expr: `(sum by (exported_instance) (rate(${INBOUND_ERRORS}${RATE})) or sum by (exported_instance) (rate(${INBOUND}${RATE})) * 0) / sum by (exported_instance) (rate(${INBOUND}${RATE}))`,
                legend: '{{exported_instance}}',
              },
            ],
          },
          { min: 0 },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'Latency per host and version',
          description: 'p50 and p99 latency measured where the instances run, per host and version (the latency histogram has no instance label: one instance per host and version reads as per instance).',
          unit: 's',
          span: 8,
          queries: [0.5, 0.99].map((q) => ({
            expr: `histogram_quantile(${q}, sum by (host, version, le) (rate(${INBOUND_BUCKETS}${RATE})))`,
            legend: `{{host}} {{version}} p${Math.round(q * 100)}`,
          })),
        }),
      )

      .withRow(row('Versions'))
      .withPanel(
        timeSeries(
          {
            title: 'Traffic share per version',
            description: 'Share of the callers\' requests each version received: the split as applied (configured in KV weft/splits/<service>).',
            unit: 'percentunit',
            span: 8,
            queries: [{ expr: `sum by (version) (rate(${OUTBOUND}${RATE})) / ignoring (version) group_left sum(rate(${OUTBOUND}${RATE}))`, legend: '{{version}}' }],
          },
          { stacked: true, min: 0, max: 1 },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'Requests/s per version',
          description: 'Requests per second per version, from the callers\' proxies.',
          unit: 'reqps',
          span: 8,
          queries: [{ expr: `sum by (version) (rate(${OUTBOUND}${RATE}))`, legend: '{{version}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Success rate per version',
            description: 'Share of non-5xx answers per version, from the callers\' proxies.',
            unit: 'percentunit',
            span: 8,
            queries: [
              {
                expr: `1 - (sum by (version) (rate(weft_proxy_requests_total{direction="outbound", destination="$service", version=~"$version", version!="", host=~"$host", code=~"5.."}${RATE})) or sum by (version) (rate(${OUTBOUND}${RATE})) * 0) / sum by (version) (rate(${OUTBOUND}${RATE}))`,
                legend: '{{version}}',
              },
            ],
          },
          { max: 1 },
        ),
      )

      .withRow(row('Resilience'))
      .withPanel(
        timeSeries({
          title: 'Ejections',
          description: 'Outlier ejections of the service\'s instances, per instance and the caller\'s host that ejected it (5 consecutive failures eject for 30 s x times ejected).',
          span: 8,
          queries: [
            { expr: `sum by (exported_instance, host) (increase(weft_proxy_ejections_total{destination="$service", host=~"$host"}${RATE}))`, legend: '{{exported_instance}} by {{host}}' },
          ],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Retries by reason',
          description: 'Retry attempts per second towards the service, by what failed.',
          unit: 'ops',
          span: 8,
          queries: [{ expr: `sum by (reason) (rate(weft_proxy_retries_total{destination="$service", host=~"$host"}${RATE}))`, legend: '{{reason}}' }],
        }),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Status codes',
            description: 'Answers per second by status code, as the callers saw them (the proxy\'s own refusals included).',
            unit: 'reqps',
            span: 8,
            queries: [
              { expr: `sum by (code) (rate(weft_proxy_requests_total{direction="outbound", destination="$service", version=~"$version", host=~"$host"}${RATE}))`, legend: '{{code}}' },
            ],
          },
          { stacked: true },
        ),
      )
      .withPanel(
        timeSeries({
          title: 'In flight',
          description: 'Requests in flight towards the service: at the callers\' proxies (outbound) and at the instances\' proxies (inbound).',
          queries: [{ expr: 'sum by (direction) (weft_proxy_requests_in_flight{destination="$service", host=~"$host"})', legend: '{{direction}}' }],
        }),
      )
      .withPanel(
        timeSeries({
          title: 'Pooled connections',
          description: 'Keep-alive connections to the service held by the proxies\' pools: outbound (callers to the host proxies) and inbound (host proxies to the instances).',
          queries: [{ expr: 'sum by (direction, state) (weft_proxy_pool_connections{destination="$service", host=~"$host"})', legend: '{{direction}} {{state}}' }],
        }),
      )

      .withRow(row('Autoscaling'))
      .withPanel(
        timeSeries(
          {
            title: 'Replicas: desired, current, healthy',
            description:
              'Per autoscaled group of the chosen jobs: the count the autoscaler\'s last decision set (desired; in a dry run, would set), the group\'s count when it decided (current), its allocations running with passing checks (healthy, from the leader\'s reconciliation) and autoscale.max.',
            span: 8,
            queries: [
              { expr: `${BY_GROUP} (weft_autoscaler_desired_replicas{${AUTOSCALED}})`, legend: '{{exported_job}}/{{group}} desired' },
              { expr: `${BY_GROUP} (weft_autoscaler_current_replicas{${AUTOSCALED}})`, legend: '{{exported_job}}/{{group}} current' },
              {
                expr: `${BY_GROUP} (weft_scheduler_replicas{state="healthy", ${AUTOSCALED}}) and on (exported_job, group) weft_autoscaler_desired_replicas`,
                legend: '{{exported_job}}/{{group}} healthy',
              },
              { expr: `${BY_GROUP} (weft_autoscaler_max_replicas{${AUTOSCALED}})`, legend: '{{exported_job}}/{{group}} max' },
            ],
          },
          { min: 0 },
        ),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Autoscaling metrics against their targets',
            description:
              'Each policy metric as the autoscaler last read it (per instance, averaged over ready instances; ceilings for the whole service) and its target, in base units: requests/s, requests, seconds, a 0..1 error ratio. A gap: the metric was unavailable.',
            span: 8,
            queries: [
              { expr: `${BY_METRIC} (weft_autoscaler_metric_value{${AUTOSCALED}})`, legend: '{{exported_job}}/{{group}} {{metric}}' },
              { expr: `${BY_METRIC} (weft_autoscaler_metric_target{${AUTOSCALED}})`, legend: '{{exported_job}}/{{group}} {{metric}} target' },
            ],
          },
          { min: 0 },
        ),
      )
      .withPanel(
        timeSeries(
          {
            title: 'Autoscaler decisions by reason',
            description:
              'Decisions per interval, by direction and reason: metrics (the metrics decided), held (a stabilization window or cooldown), capped (autoscale.max or a step), activation, idle, min, zero, on-error, failed, no-data, dry-run.',
            span: 8,
            queries: [
              {
                expr: `sum by (exported_job, group, direction, reason) (increase(weft_autoscaler_decisions_total{${AUTOSCALED}}${RATE}))`,
                legend: '{{exported_job}}/{{group}} {{direction}} ({{reason}})',
              },
            ],
          },
          { stacked: true },
        ),
      ),
  );
}
