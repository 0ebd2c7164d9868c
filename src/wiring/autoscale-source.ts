/**
 * What the autoscaler's two metric sources share (autoscale-scrape.ts, the
 * embedded default, and autoscale-prometheus.ts): the names of the proxy
 * metrics they read, the snapshot they return (scheduler/autoscale/source.ts's
 * MetricSnapshot plus when it was taken), how a proxy's `instance` label
 * becomes a weft instance id, and how a host's in-flight gauge is shared out.
 *
 * The inbound proxy labels `weft_proxy_requests_total` with `instance` = the
 * Consul service ID `<host>-<weft_instance>` (proxy/ports.ts LocalInstance.id),
 * while the calculator keys per-instance readings by `weft_instance`
 * (InstanceView.id): resolveInstance strips the host. The in-flight gauge
 * `weft_proxy_requests_in_flight{direction, destination}` has no instance
 * label: it counts a service's requests on one host, so each source divides
 * it evenly among the group's instances on that host (exact with one
 * instance per host, the scheduler's usual spread).
 */
import type { AutoscaleMetric, AutoscalePolicy, InstanceView, MetricReading, MetricSnapshot } from '../../scheduler/index.js';

/** The proxy's metric names (proxy/metrics.ts) and the process start time every weft process exports (base/metrics.ts). */
export const PROXY_METRICS = {
  requests: 'weft_proxy_requests_total',
  duration: 'weft_proxy_request_duration_seconds',
  inFlight: 'weft_proxy_requests_in_flight',
  processStart: 'weft_process_start_time_seconds',
} as const;

/** The `instance` label of requests the inbound proxy refused before choosing an instance (intentions, no local instance). */
export const NO_INSTANCE = 'none';

/** What a source read, and when: `atMs` is the time its figures describe (the scrape, or Prometheus' evaluation time). */
export interface SourceSnapshot extends MetricSnapshot {
  atMs: number;
  /** Targets or queries that failed, one line each, for the loop's log (a metric they hid says why in its reading). */
  problems: string[];
}

/** The HTTP fetch the sources call (globalThis.fetch's shape); tests inject theirs. */
export type FetchLike = (url: string, init: { signal: AbortSignal; headers: Record<string, string> }) => Promise<Response>;

/** A reading the source could not produce. */
export function unavailable(reason: string): MetricReading {
  return { kind: 'unavailable', reason };
}

/** What both sources say for a metric that needs a service when the group registers none. */
export const NO_SERVICE = 'the group registers no service for the proxies to measure (set autoscale.service)';

/**
 * The weft instance id that a proxy's `instance` label names: the label itself
 * when it is one of `ids`, else the label less its `<host>-` prefix (the
 * Consul ID contract). undefined for an instance that is not the group's.
 */
export function resolveInstance(label: string, host: string | undefined, ids: ReadonlySet<string>): string | undefined {
  if (ids.has(label)) return label;
  if (host !== undefined && host !== '' && label.startsWith(`${host}-`)) {
    const rest = label.slice(host.length + 1);
    if (ids.has(rest)) return rest;
  }
  return undefined;
}

/**
 * Shares each host's in-flight count evenly among the group's instances on
 * that host. Instances on a host without a figure get none (missing); a
 * figure for a host without any of the group's instances is left out.
 */
export function shareByHost(perHost: ReadonlyMap<string, number>, hostOf: ReadonlyMap<string, string>): Record<string, number> {
  const onHost = new Map<string, string[]>();
  for (const [id, host] of hostOf) {
    const list = onHost.get(host);
    if (list === undefined) onHost.set(host, [id]);
    else list.push(id);
  }
  const out: Record<string, number> = {};
  for (const [host, ids] of onHost) {
    const value = perHost.get(host);
    if (value === undefined) continue;
    for (const id of ids) out[id] = value / ids.length;
  }
  return out;
}

/**
 * An instance as the leader's loop may hand it: InstanceView plus the node
 * its allocation runs on. The sources use `host` where their own data does
 * not place an instance (no registration or series yet).
 */
export type PlacedInstance = InstanceView & { host?: string | undefined };

/** Each instance's host as the caller gave it (PlacedInstance.host), by id. */
export function hostHints(instances: readonly InstanceView[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const i of instances as readonly PlacedInstance[]) if (typeof i.host === 'string' && i.host !== '') out.set(i.id, i.host);
  return out;
}

/** The ids of the group's instances, for resolveInstance. */
export function instanceIds(instances: readonly InstanceView[]): Set<string> {
  return new Set(instances.map((i) => i.id));
}

/**
 * One reading per policy metric, in order: `read` may throw (the reading is
 * then unavailable with the error's message), so one broken metric never
 * hides the others.
 */
export async function readAll(policy: AutoscalePolicy, read: (metric: AutoscaleMetric) => Promise<MetricReading>): Promise<MetricReading[]> {
  return Promise.all(
    policy.metrics.map(async (metric) => {
      try {
        return await read(metric);
      } catch (err) {
        return unavailable(err instanceof Error ? err.message : String(err));
      }
    }),
  );
}

/** A sample value as the text format and Prometheus' API write it: `+Inf`, `-Inf`, `NaN` or a float. */
export function parseSampleValue(text: string): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    case 'NaN':
      return Number.NaN;
    default:
      return text.trim() === '' ? Number.NaN : Number(text);
  }
}

/** An error as a reading's reason: fetch's "fetch failed" names its cause (ECONNREFUSED, ...). */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? ((cause as { code?: string }).code ?? cause.message) : undefined;
  return detail === undefined ? err.message : `${err.message} (${detail})`;
}
