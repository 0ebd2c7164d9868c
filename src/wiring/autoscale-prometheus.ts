/**
 * The `prometheus` metric source, for clusters that already run Prometheus
 * scraping the proxies (grafana/prometheus.yml's `weft-proxy` job): PromQL
 * instant queries over its HTTP API (`GET /api/v1/query`), evaluated at the
 * decision's time. The built-in metrics use the queries below (written out
 * in docs/autoscaling.md, "Metric sources"); `promql` metrics send the
 * user's expression as it is.
 *
 * Label names follow weft's scrape config: the proxy's own `instance` label
 * (`<host>-<weft_instance>`) becomes `exported_instance` because the scrape
 * target's `instance` label takes the name, and `host` comes from the
 * proxy's Meta `weft_host`. Every failure (Prometheus unreachable, an HTTP
 * error, a query Prometheus refuses, an empty result) is an `unavailable`
 * reading that says why, with Prometheus' own error text.
 */
import { formatDuration } from '../../base/duration.js';
import type { AutoscaleMetric, AutoscalePolicy, InstanceView, MetricReading, MetricSource, ScaleTarget, Traffic } from '../../scheduler/index.js';
import { errorText, type FetchLike, hostHints, instanceIds, NO_SERVICE, type PlacedInstance, parseSampleValue, readAll, resolveInstance, type SourceSnapshot, shareByHost, unavailable } from './autoscale-source.js';

const INBOUND = 'weft_proxy_requests_total{direction="inbound", destination="$service", exported_instance!="none"}';

/** rps: requests/s per instance over the window, with the host that measured it (the instance id is `exported_instance` less `<host>-`). */
export const PROMQL_RPS = `sum by (host, exported_instance) (rate(${INBOUND}[$window]))`;

/** inflight: requests in flight per host; weft shares each host's figure among the group's instances on it (placed by the rps series, else by the loop). */
export const PROMQL_INFLIGHT = 'sum by (host) (weft_proxy_requests_in_flight{direction="inbound", destination="$service"})';

/** latency: the policy's quantile (0.95 or 0.99) of the service's inbound latency over the window, in seconds (weft reads it in ms). */
export const PROMQL_LATENCY =
  'histogram_quantile($quantile, sum by (le) (rate(weft_proxy_request_duration_seconds_bucket{direction="inbound", destination="$service", version!="none"}[$window])))';

/** errors: the share of 5xx answers over the window (0 when none was a 5xx; NaN, read as "no request", when nothing was answered). */
export const PROMQL_ERRORS = `(sum(rate(weft_proxy_requests_total{direction="inbound", destination="$service", exported_instance!="none", code=~"5.."}[$window])) or vector(0)) / sum(rate(${INBOUND}[$window]))`;

/** The built-in queries, with `$service`, `$window` and (latency) `$quantile` filled in per decision. */
export const DEFAULT_QUERIES = { rps: PROMQL_RPS, inflight: PROMQL_INFLIGHT, latency: PROMQL_LATENCY, errors: PROMQL_ERRORS } as const;

/** The window of rate(): at least this, and at least the policy's interval. Four scrapes at Prometheus' default 15 s. */
export const DEFAULT_MIN_WINDOW_MS = 60_000;

export interface PrometheusSourceOptions {
  /** Prometheus' base URL, e.g. http://127.0.0.1:9090 (a path prefix is kept). */
  url: string;
  /** Per query; default 5 s, and never more than the policy's interval (at least 1 s). */
  timeoutMs?: number | undefined;
  /** Default DEFAULT_MIN_WINDOW_MS: a rate over fewer than two of Prometheus' samples is empty. */
  minWindowMs?: number | undefined;
  /** Replacements for the built-in queries (same placeholders), for a Prometheus labelled otherwise. */
  queries?: Partial<Record<keyof typeof DEFAULT_QUERIES, string>> | undefined;
  /** Sent with every query (e.g. authorization for a hosted Prometheus). */
  headers?: Record<string, string> | undefined;
  /** Default globalThis.fetch. */
  fetch?: FetchLike | undefined;
}

/** One series of an instant vector. */
export interface Series {
  labels: Record<string, string>;
  value: number;
}

/** A query's answer: the series of an instant vector (a scalar is one series without labels), or why there is none. */
export type QueryAnswer = { ok: true; series: Series[] } | { ok: false; reason: string };

/** The PromQL string literal for `text`. */
function quote(text: string): string {
  return text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

/** A built-in query with its placeholders filled in. */
export function fillQuery(template: string, values: { service: string; windowMs: number; quantile?: number }): string {
  return template
    .replaceAll('$service', quote(values.service))
    .replaceAll('$window', formatDuration(values.windowMs))
    .replaceAll('$quantile', String(values.quantile ?? 0.99));
}

/** The Prometheus source: stateless, one instance per leader. */
export class PrometheusSource implements MetricSource {
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #minWindowMs: number;
  readonly #queries: Record<keyof typeof DEFAULT_QUERIES, string>;
  readonly #headers: Record<string, string>;
  readonly #fetch: FetchLike;

  constructor(opts: PrometheusSourceOptions) {
    this.#base = opts.url.replace(/\/+$/, '');
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
    this.#minWindowMs = opts.minWindowMs ?? DEFAULT_MIN_WINDOW_MS;
    this.#queries = { ...DEFAULT_QUERIES, ...opts.queries };
    this.#headers = { accept: 'application/json', ...opts.headers };
    this.#fetch = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
  }

  async fetch(target: ScaleTarget, policy: AutoscalePolicy, instances: readonly PlacedInstance[], nowMs: number): Promise<SourceSnapshot> {
    const windowMs = Math.max(this.#minWindowMs, policy.intervalMs);
    const timeoutMs = Math.min(this.#timeoutMs, Math.max(policy.intervalMs, 1_000));
    const ids = instanceIds(instances);
    const service = target.service;
    // Each distinct query goes out once per decision (rps also places instances for inflight and traffic).
    const sent = new Map<string, Promise<QueryAnswer>>();
    const ask = (query: string): Promise<QueryAnswer> => {
      let p = sent.get(query);
      if (p === undefined) {
        p = this.query(query, nowMs, timeoutMs);
        sent.set(query, p);
      }
      return p;
    };
    const builtin = (name: keyof typeof DEFAULT_QUERIES, quantile?: number): Promise<QueryAnswer> | undefined =>
      service === undefined ? undefined : ask(fillQuery(this.#queries[name], { service, windowMs, ...(quantile === undefined ? {} : { quantile }) }));

    const read = async (metric: AutoscaleMetric): Promise<MetricReading> => {
      if (metric.kind === 'promql') return userQuery(await ask(metric.query), ids, instances);
      const answer = builtin(metric.kind, metric.kind === 'latency' ? metric.quantile : undefined);
      if (answer === undefined) return unavailable(NO_SERVICE);
      switch (metric.kind) {
        case 'rps':
          return perInstance(await answer, ids);
        case 'inflight':
          return inflight(await answer, await builtin('rps')!, ids, hostHints(instances));
        case 'latency':
          return serviceValue(await answer, (v) => v * 1000);
        case 'errors':
          return serviceValue(await answer, (v) => v);
      }
    };
    const readings = await readAll(policy, read);
    let traffic: Traffic | undefined;
    const problems: string[] = [];
    if (service !== undefined) {
      const [rps, flight] = await Promise.all([builtin('rps')!, builtin('inflight')!]);
      traffic = rps.ok && flight.ok && rps.series.length > 0 ? { rps: sum(rps.series), inflight: sum(flight.series) } : undefined;
    }
    for (const [query, p] of sent) {
      const a = await p;
      if (!a.ok) problems.push(`${query}: ${a.reason}`);
    }
    return { atMs: nowMs, readings, traffic, problems };
  }

  /** One instant query at `atMs`; never throws. */
  async query(expr: string, atMs: number, timeoutMs = this.#timeoutMs): Promise<QueryAnswer> {
    const url = `${this.#base}/api/v1/query?${new URLSearchParams({ query: expr, time: (atMs / 1000).toFixed(3) })}`;
    let res: Response;
    let text: string;
    try {
      res = await this.#fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: this.#headers });
      text = await res.text();
    } catch (err) {
      if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return fail(`prometheus at ${this.#base}: no answer within ${timeoutMs} ms`);
      return fail(`prometheus at ${this.#base} unreachable: ${errorText(err)}`);
    }
    let body: { status?: string; errorType?: string; error?: string; data?: { resultType?: string; result?: unknown } } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    if (body?.status === 'error') return fail(`prometheus: ${body.errorType ?? 'error'}: ${body.error ?? `HTTP ${res.status}`}`);
    if (!res.ok || body?.status !== 'success' || body.data === undefined) {
      return fail(`prometheus: HTTP ${res.status}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`);
    }
    const { resultType, result } = body.data;
    if (resultType === 'scalar') return { ok: true, series: [{ labels: {}, value: parseSampleValue(String((result as [number, string])[1])) }] };
    if (resultType !== 'vector' || !Array.isArray(result)) {
      return fail(`prometheus: the query gives a ${resultType ?? 'strange'} result, not a number or an instant vector`);
    }
    const series = (result as Array<{ metric?: Record<string, string>; value?: [number, string] }>).map((r) => ({
      labels: r.metric ?? {},
      value: parseSampleValue(String(r.value?.[1] ?? 'NaN')),
    }));
    if (series.length === 0) return fail(`prometheus: empty result (no series matches at ${new Date(atMs).toISOString()})`);
    return { ok: true, series };
  }
}

function fail(reason: string): QueryAnswer {
  return { ok: false, reason };
}

function sum(series: readonly Series[]): number {
  return series.reduce((n, s) => n + (Number.isFinite(s.value) ? s.value : 0), 0);
}

/** The group's instances present in `series`, keyed by id; NaN leaves an instance missing. */
function byInstance(series: readonly Series[], ids: ReadonlySet<string>): Map<string, { value: number; host: string | undefined }> {
  const out = new Map<string, { value: number; host: string | undefined }>();
  for (const s of series) {
    const label = s.labels['exported_instance'] ?? s.labels['instance'];
    if (label === undefined) continue;
    const id = resolveInstance(label, s.labels['host'], ids);
    if (id === undefined) continue;
    const prev = out.get(id);
    out.set(id, { value: (prev?.value ?? 0) + s.value, host: s.labels['host'] ?? prev?.host });
  }
  return out;
}

function perInstance(answer: QueryAnswer, ids: ReadonlySet<string>): MetricReading {
  if (!answer.ok) return unavailable(answer.reason);
  const values: Record<string, number> = {};
  for (const [id, { value }] of byInstance(answer.series, ids)) if (Number.isFinite(value)) values[id] = value;
  return { kind: 'instances', values };
}

/** Each host's in-flight count shared among the group's instances the rps series place on it. */
function inflight(perHost: QueryAnswer, rps: QueryAnswer, ids: ReadonlySet<string>, hints: ReadonlyMap<string, string>): MetricReading {
  if (!perHost.ok) return unavailable(perHost.reason);
  if (!rps.ok && hints.size === 0) return unavailable(`no instance placed on a host: ${rps.reason}`);
  const hosts = new Map<string, number>();
  for (const s of perHost.series) {
    const host = s.labels['host'];
    if (host !== undefined && Number.isFinite(s.value)) hosts.set(host, (hosts.get(host) ?? 0) + s.value);
  }
  const hostOf = new Map<string, string>();
  if (rps.ok) for (const [id, { host }] of byInstance(rps.series, ids)) if (host !== undefined) hostOf.set(id, host);
  for (const [id, host] of hints) if (!hostOf.has(id)) hostOf.set(id, host);
  return { kind: 'instances', values: shareByHost(hosts, hostOf) };
}

/** A service-wide value: one series; NaN (0/0: no request in the window) is "nothing to measure". */
function serviceValue(answer: QueryAnswer, scale: (v: number) => number): MetricReading {
  if (!answer.ok) return unavailable(answer.reason);
  if (answer.series.length !== 1) return unavailable(`the query gives ${answer.series.length} series, not one`);
  const v = answer.series[0]!.value;
  return { kind: 'service', value: Number.isNaN(v) ? null : scale(v) };
}

/**
 * A `promql` metric: one series per instance (label `instance_id` = the weft
 * instance id), or one number (a scalar, or a single series without
 * `instance_id`) that is shared evenly among the group's instances, as the
 * HPA's AverageValue target does for an external metric.
 */
function userQuery(answer: QueryAnswer, ids: ReadonlySet<string>, instances: readonly InstanceView[]): MetricReading {
  if (!answer.ok) return unavailable(answer.reason);
  const labelled = answer.series.filter((s) => s.labels['instance_id'] !== undefined);
  if (labelled.length === 0) {
    if (answer.series.length !== 1) {
      return unavailable(`the query gives ${answer.series.length} series without label instance_id: aggregate them to one number, or by (instance_id)`);
    }
    const total = answer.series[0]!.value;
    if (!Number.isFinite(total)) return unavailable(`the query gives ${total}`);
    const values: Record<string, number> = {};
    for (const i of instances) values[i.id] = total / instances.length;
    return { kind: 'instances', values };
  }
  const values: Record<string, number> = {};
  for (const s of labelled) {
    const id = s.labels['instance_id']!;
    if (ids.has(id) && Number.isFinite(s.value)) values[id] = (values[id] ?? 0) + s.value;
  }
  return { kind: 'instances', values };
}
