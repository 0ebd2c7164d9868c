/**
 * The `scrape` metric source, the embedded default: nothing to install. The
 * leader finds every `weft-proxy` in Consul (a health watch, passing or not:
 * a draining proxy still serves /metrics), scrapes each one's /metrics over
 * HTTP with a timeout, keeps a short history of the inbound figures per
 * proxy, and computes rates and quantiles itself:
 *
 *   round (one per interval, shared by every group asking within it)
 *     └ per proxy: GET http://<Address>:<Port>/metrics ─ parse ─▶ sample { atMs, requests, buckets, in-flight }
 *   per group: window = the proxy's sample closest to `interval` before this one (at least half of it)
 *     rps ────── Σ increase(weft_proxy_requests_total{direction="inbound", destination=service, instance=X}) / window
 *     inflight ─ weft_proxy_requests_in_flight{direction="inbound", destination=service} of X's host, shared among its instances
 *     latency ── histogram quantile of Σ increase(weft_proxy_request_duration_seconds_bucket{..., version!="none"})
 *     errors ─── Σ increase(5xx) / Σ increase(all), instance != "none"
 *
 * Increases follow Prometheus' counter rules: a value lower than the one
 * before (or a changed process start time) is a reset, and the new value is
 * the increase since it. A proxy that fails its scrape, or has no earlier
 * sample yet, gives its instances no value (missing, never zero); an instance
 * whose proxy answered and has no series got no request: 0. Which host an
 * instance runs on comes from its own registration (a second watch, per
 * service, or the loop's own placement), so a silent instance is told apart
 * from an unmeasured one.
 *
 * Time comes in as `nowMs` (the samples' timestamps); the HTTP fetch is an
 * option. Finding, fetching and parsing are proxy-scrape.ts's, shared with
 * the stats API (mesh-stats.ts).
 */
import type { DiscoveryClient, Instance, WatchOptions } from '../../discovery/index.js';
import { type Logger, silentLogger } from '../../base/log.js';
import type { AutoscaleMetric, AutoscalePolicy, InstanceView, MetricReading, MetricSource, ScaleTarget, Traffic } from '../../scheduler/index.js';
import {
  errorText,
  type FetchLike,
  hostHints,
  instanceIds,
  NO_INSTANCE,
  NO_SERVICE,
  PROXY_METRICS,
  type PlacedInstance,
  parseSampleValue,
  readAll,
  resolveInstance,
  type SourceSnapshot,
  shareByHost,
  unavailable,
} from './autoscale-source.js';
import { fetchMetrics, histogramQuantile, increases, MeshWatches, metricsUrl, parseFamilies } from './proxy-scrape.js';

export { histogramQuantile };

/** What the scrape source answers for a `promql` metric. */
export const PROMQL_NEEDS_PROMETHEUS = 'promql needs source prometheus';

export interface ScrapeSourceOptions {
  client: DiscoveryClient;
  /** Default globalThis.fetch. */
  fetch?: FetchLike | undefined;
  /** Per scrape; default 2 s, and never more than the policy's interval. */
  timeoutMs?: number | undefined;
  /** An answer larger than this is refused (a proxy's /metrics is tens of KB). Default 16 MiB. */
  maxBytes?: number | undefined;
  /** Default /metrics. */
  path?: string | undefined;
  /** How long a first fetch waits for Consul's first answer. Default 5 s. */
  discoveryTimeoutMs?: number | undefined;
  /** Calls within this of the last round reuse it (several groups at one tick). Default 250 ms, at most half the interval. */
  reuseWithinMs?: number | undefined;
  /** A service's registration watch closes after this long unasked. Default 10 min. */
  idleWatchMs?: number | undefined;
  watch?: WatchOptions | undefined;
  logger?: Logger | undefined;
}

/** The inbound figures of one proxy at one scrape. */
export interface ProxySample {
  atMs: number;
  /** weft_process_start_time_seconds, when exported: a change means the proxy restarted. */
  startTime: number | undefined;
  /** destination -> `<instance>\0<code>` -> requests answered (summed over callers and versions). */
  requests: Map<string, Map<string, number>>;
  /** destination -> upper bound (s, +Inf included) -> cumulative count (summed over callers and versions, refusals left out). */
  buckets: Map<string, Map<number, number>>;
  /** destination -> requests in flight now. */
  inFlight: Map<string, number>;
}

interface Target {
  readonly id: string;
  readonly host: string;
  readonly url: string;
  /** Oldest first; kept for twice the longest interval asked for. */
  samples: ProxySample[];
  /** Whether the latest scrape failed (for logging the change only). */
  failing: boolean;
}

/** One scrape of every proxy, shared by the groups that ask within it. */
interface Round {
  atMs: number;
  done: Promise<void>;
  /** Consul could not name the proxies. */
  discoveryError: string | undefined;
  /** Per proxy scraped in this round: its sample, or why there is none. */
  outcomes: Array<{ target: Target; sample: ProxySample | undefined; error: string | undefined }>;
}

/** Parses a /metrics answer into the inbound figures the autoscaler reads (proxy-scrape.ts parseFamilies). */
export function parseProxyMetrics(text: string, atMs: number): ProxySample {
  const sample: ProxySample = { atMs, startTime: undefined, requests: new Map(), buckets: new Map(), inFlight: new Map() };
  for (const family of parseFamilies(text)) {
    switch (family.name) {
      case PROXY_METRICS.processStart:
        sample.startTime = parseSampleValue(family.metrics[0]?.value ?? '');
        break;
      case PROXY_METRICS.requests:
        for (const m of family.metrics) {
          const l = m.labels ?? {};
          if (l['direction'] !== 'inbound' || l['destination'] === undefined) continue;
          const value = parseSampleValue(m.value ?? '');
          if (!Number.isFinite(value)) continue;
          const key = `${l['instance'] ?? ''}\0${l['code'] ?? ''}`;
          const byKey = getOrCreate(sample.requests, l['destination']);
          byKey.set(key, (byKey.get(key) ?? 0) + value);
        }
        break;
      case `${PROXY_METRICS.duration}_bucket`:
        for (const m of family.metrics) {
          const l = m.labels ?? {};
          if (l['direction'] !== 'inbound' || l['destination'] === undefined || l['version'] === NO_INSTANCE || l['le'] === undefined) continue;
          const le = parseSampleValue(l['le']);
          const value = parseSampleValue(m.value ?? '');
          if (Number.isNaN(le) || !Number.isFinite(value)) continue;
          const byLe = getOrCreate(sample.buckets, l['destination']);
          byLe.set(le, (byLe.get(le) ?? 0) + value);
        }
        break;
      case PROXY_METRICS.inFlight:
        for (const m of family.metrics) {
          const l = m.labels ?? {};
          if (l['direction'] !== 'inbound' || l['destination'] === undefined) continue;
          const value = parseSampleValue(m.value ?? '');
          if (Number.isFinite(value)) sample.inFlight.set(l['destination'], (sample.inFlight.get(l['destination']) ?? 0) + value);
        }
        break;
    }
  }
  return sample;
}

function getOrCreate<K, V>(map: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = map.get(key);
  if (inner === undefined) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}

/** The scrape source: construct once per leader, `close()` when leadership ends. */
export class ScrapeSource implements MetricSource {
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #path: string;
  readonly #reuseWithinMs: number;
  readonly #idleWatchMs: number;
  readonly #logger: Logger;
  readonly #targets = new Map<string, Target>();
  readonly #watches: MeshWatches;
  #round: Round | undefined;
  /** The longest policy interval asked for: samples are kept for twice that. */
  #longestIntervalMs = 0;
  #closed = false;

  constructor(opts: ScrapeSourceOptions) {
    this.#fetch = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.#timeoutMs = opts.timeoutMs ?? 2_000;
    this.#maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
    this.#path = opts.path ?? '/metrics';
    this.#reuseWithinMs = opts.reuseWithinMs ?? 250;
    this.#idleWatchMs = opts.idleWatchMs ?? 600_000;
    this.#watches = new MeshWatches({ client: opts.client, discoveryTimeoutMs: opts.discoveryTimeoutMs, watch: opts.watch });
    this.#logger = opts.logger ?? silentLogger;
  }

  async fetch(target: ScaleTarget, policy: AutoscalePolicy, instances: readonly PlacedInstance[], nowMs: number): Promise<SourceSnapshot> {
    if (this.#closed) throw new Error('the scrape source is closed');
    this.#longestIntervalMs = Math.max(this.#longestIntervalMs, policy.intervalMs);
    const service = target.service;
    const [round, placement] = await Promise.all([this.#roundAt(nowMs, policy.intervalMs), service === undefined ? undefined : this.#watches.registrations(service, nowMs)]);
    this.#watches.closeIdle(nowMs, this.#idleWatchMs);
    const problems = this.#problems(round);
    if (service === undefined) {
      const readings = policy.metrics.map((m) => unavailable(m.kind === 'promql' ? PROMQL_NEEDS_PROMETHEUS : NO_SERVICE));
      return { atMs: round.atMs, readings, traffic: undefined, problems };
    }
    const view = this.#view(service, instances, placement, round, policy.intervalMs);
    const readings = await readAll(policy, async (metric) => view.read(metric));
    return { atMs: round.atMs, readings, traffic: view.traffic(), problems };
  }

  /** Stops the Consul watches; the source cannot be used after. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#watches.close();
  }

  // ── rounds ────────────────────────────────────────────────────────────

  #roundAt(nowMs: number, intervalMs: number): Promise<Round> {
    const last = this.#round;
    if (last !== undefined && (nowMs <= last.atMs || nowMs - last.atMs < Math.min(this.#reuseWithinMs, intervalMs / 2))) {
      return last.done.then(() => last);
    }
    const round: Round = { atMs: nowMs, done: Promise.resolve(), discoveryError: undefined, outcomes: [] };
    round.done = this.#scrapeAll(round, Math.min(this.#timeoutMs, Math.max(intervalMs, 100)));
    this.#round = round;
    return round.done.then(() => round);
  }

  async #scrapeAll(round: Round, timeoutMs: number): Promise<void> {
    let proxies: Instance[];
    try {
      proxies = await this.#watches.proxies();
    } catch (err) {
      round.discoveryError = `no weft-proxy list from Consul: ${errorText(err)}`;
      return;
    }
    const seen = new Set<string>();
    for (const p of proxies) {
      seen.add(p.id);
      const url = metricsUrl(p, this.#path);
      const known = this.#targets.get(p.id);
      // A proxy that moved (new address, port or host) starts a new history.
      if (known === undefined || known.url !== url || known.host !== p.host) this.#targets.set(p.id, { id: p.id, host: p.host, url, samples: [], failing: false });
    }
    for (const id of this.#targets.keys()) if (!seen.has(id)) this.#targets.delete(id);
    round.outcomes = await Promise.all([...this.#targets.values()].map((t) => this.#scrape(t, round.atMs, timeoutMs)));
  }

  async #scrape(target: Target, atMs: number, timeoutMs: number): Promise<Round['outcomes'][number]> {
    try {
      const text = await fetchMetrics(this.#fetch, target.url, timeoutMs, this.#maxBytes);
      const sample = parseProxyMetrics(text, atMs);
      const keepFrom = atMs - 2 * this.#longestIntervalMs - timeoutMs;
      // Sorted by time even if an earlier round's scrape ends after a later one's.
      target.samples = [...target.samples.filter((s) => s.atMs >= keepFrom && s.atMs !== atMs), sample].sort((x, y) => x.atMs - y.atMs);
      if (target.failing) this.#logger.info({ proxy: target.id, url: target.url }, 'autoscaler: proxy metrics answer again');
      target.failing = false;
      return { target, sample, error: undefined };
    } catch (err) {
      const why = errorText(err);
      if (!target.failing) this.#logger.warn({ proxy: target.id, url: target.url, err: why }, 'autoscaler: proxy metrics scrape failed: its instances are missing');
      target.failing = true;
      return { target, sample: undefined, error: why };
    }
  }

  #problems(round: Round): string[] {
    const out: string[] = [];
    if (round.discoveryError !== undefined) out.push(round.discoveryError);
    for (const o of round.outcomes) if (o.error !== undefined) out.push(`${o.target.host} (${o.target.url}): ${o.error}`);
    return out;
  }

  // ── figures ───────────────────────────────────────────────────────────

  #view(service: string, instances: readonly InstanceView[], placement: Instance[] | undefined, round: Round, intervalMs: number): ServiceView {
    const ids = instanceIds(instances);
    // The group's instances by host, from their registrations.
    const hostOf = new Map<string, string>();
    for (const reg of placement ?? []) {
      const id = resolveInstance(reg.id, reg.host, ids);
      if (id !== undefined) hostOf.set(id, reg.host);
    }
    // Where the loop says an instance runs, for those not registered (yet).
    for (const [id, host] of hostHints(instances)) if (!hostOf.has(id)) hostOf.set(id, host);
    // Every host that runs the service (any group's instance) or whose proxy has carried it.
    const serviceHosts = new Set([...(placement ?? []).map((reg) => reg.host), ...hostOf.values()]);
    const measured: MeasuredProxy[] = [];
    const failed: string[] = [];
    for (const { target, sample, error } of round.outcomes) {
      if (target.samples.some((s) => s.requests.has(service) || s.buckets.has(service))) serviceHosts.add(target.host);
      if (sample === undefined) {
        failed.push(`${target.host}: ${error ?? 'no sample'}`);
        continue;
      }
      const history = target.samples.filter((s) => s.atMs <= sample.atMs);
      const base = pickBase(history, intervalMs);
      measured.push({ host: target.host, cur: sample, window: base === undefined ? undefined : history.slice(history.indexOf(base)) });
      // An instance without a registration (yet) is placed by the series naming it.
      for (const key of sample.requests.get(service)?.keys() ?? []) {
        const id = resolveInstance(key.slice(0, key.indexOf('\0')), target.host, ids);
        if (id !== undefined && !hostOf.has(id)) hostOf.set(id, target.host);
      }
    }
    return new ServiceView({ service, ids, hostOf, serviceHosts, measured, failed, discoveryError: round.discoveryError, placementKnown: placement !== undefined });
  }
}

interface MeasuredProxy {
  host: string;
  cur: ProxySample;
  /** The samples from the window's start to `cur`; undefined until the proxy has an earlier sample. */
  window: ProxySample[] | undefined;
}

/** The earlier sample whose distance to the last is closest to `intervalMs`, at least half of it. */
function pickBase(samples: readonly ProxySample[], intervalMs: number): ProxySample | undefined {
  const cur = samples[samples.length - 1]!;
  let best: ProxySample | undefined;
  for (const s of samples) {
    const age = cur.atMs - s.atMs;
    if (age < intervalMs / 2) continue;
    if (best === undefined || Math.abs(age - intervalMs) < Math.abs(cur.atMs - best.atMs - intervalMs)) best = s;
  }
  return best;
}

/** One service's figures over the proxies measured in one round. */
class ServiceView {
  readonly #rates = new Map<string, number>();
  #ratesDone = false;
  #trafficRps = 0;
  #statusOk = 0;
  #status5xx = 0;
  readonly #buckets = new Map<number, number>();

  readonly service: string;
  readonly ids: ReadonlySet<string>;
  /** instance id -> host, for the group's instances whose host is known. */
  readonly hostOf: ReadonlyMap<string, string>;
  /** Hosts that run the service or whose proxy carried it: the proxies its service-wide figures need. */
  readonly serviceHosts: ReadonlySet<string>;
  readonly measured: readonly MeasuredProxy[];
  /** `<host>: <why>` per proxy without a sample this round. */
  readonly failed: readonly string[];
  readonly discoveryError: string | undefined;
  /** Consul answered for the service's registrations. */
  readonly placementKnown: boolean;

  constructor(v: {
    service: string;
    ids: ReadonlySet<string>;
    hostOf: ReadonlyMap<string, string>;
    serviceHosts: ReadonlySet<string>;
    measured: readonly MeasuredProxy[];
    failed: readonly string[];
    discoveryError: string | undefined;
    placementKnown: boolean;
  }) {
    this.service = v.service;
    this.ids = v.ids;
    this.hostOf = v.hostOf;
    this.serviceHosts = v.serviceHosts;
    this.measured = v.measured;
    this.failed = v.failed;
    this.discoveryError = v.discoveryError;
    this.placementKnown = v.placementKnown;
  }

  read(metric: AutoscaleMetric): MetricReading {
    switch (metric.kind) {
      case 'rps':
        return this.#perInstance(this.#rps(), 'rates');
      case 'inflight':
        return this.#perInstance(this.#inflight(), 'gauge');
      case 'latency': {
        this.#sums();
        if (!this.#serviceMeasured()) return unavailable(this.#why('rates'));
        const q = histogramQuantile(metric.quantile, this.#buckets);
        return { kind: 'service', value: q === null ? null : q * 1000 };
      }
      case 'errors': {
        this.#sums();
        if (!this.#serviceMeasured()) return unavailable(this.#why('rates'));
        return { kind: 'service', value: this.#statusOk + this.#status5xx > 0 ? this.#status5xx / (this.#statusOk + this.#status5xx) : null };
      }
      case 'promql':
        return unavailable(PROMQL_NEEDS_PROMETHEUS);
    }
  }

  /**
   * Requests/s and in-flight of the whole service. When a proxy of a host
   * that runs it was not measured and the others saw nothing, unknown
   * (undefined): the calculator then counts it as traffic.
   */
  traffic(): Traffic | undefined {
    this.#sums();
    let inflight = 0;
    for (const m of this.measured) inflight += m.cur.inFlight.get(this.service) ?? 0;
    const complete = this.discoveryError === undefined && this.placementKnown && [...this.serviceHosts].every((h) => this.#windowed(h));
    if (!complete && this.#trafficRps === 0 && inflight === 0) return undefined;
    return { rps: this.#trafficRps, inflight };
  }

  #anyWindow(): boolean {
    return this.measured.some((m) => m.window !== undefined);
  }

  #windowed(host: string): boolean {
    return this.measured.some((m) => m.host === host && m.window !== undefined);
  }

  /** A service-wide figure needs at least one proxy of the service's hosts measured over a window. */
  #serviceMeasured(): boolean {
    if (this.serviceHosts.size === 0) return this.#anyWindow();
    return [...this.serviceHosts].some((h) => this.#windowed(h));
  }

  /** Per instance requests/s: only instances whose host's proxy has a window; 0 for those without series there. */
  #rps(): Record<string, number> {
    this.#sums();
    const out: Record<string, number> = {};
    for (const m of this.measured) {
      if (m.window === undefined) continue;
      for (const [id, host] of this.hostOf) if (host === m.host) out[id] = this.#rates.get(id) ?? 0;
    }
    return out;
  }

  #inflight(): Record<string, number> {
    const perHost = new Map<string, number>();
    for (const m of this.measured) perHost.set(m.host, (perHost.get(m.host) ?? 0) + (m.cur.inFlight.get(this.service) ?? 0));
    return shareByHost(perHost, this.hostOf);
  }

  /** Window increases of every measured proxy, summed once. */
  #sums(): void {
    if (this.#ratesDone) return;
    this.#ratesDone = true;
    for (const m of this.measured) {
      if (m.window === undefined) continue;
      const seconds = (m.cur.atMs - m.window[0]!.atMs) / 1000;
      const requests = increases(m.window, (s) => s.requests.get(this.service), false);
      for (const [key, inc] of requests) {
        const sep = key.indexOf('\0');
        const label = key.slice(0, sep);
        if (label === NO_INSTANCE) continue;
        const code = key.slice(sep + 1);
        if (code.startsWith('5')) this.#status5xx += inc;
        else this.#statusOk += inc;
        this.#trafficRps += inc / seconds;
        const id = resolveInstance(label, m.host, this.ids);
        if (id !== undefined) this.#rates.set(id, (this.#rates.get(id) ?? 0) + inc / seconds);
      }
      for (const [le, inc] of increases(m.window, (s) => s.buckets.get(this.service), true)) this.#buckets.set(le, (this.#buckets.get(le) ?? 0) + inc);
    }
  }

  #perInstance(values: Record<string, number>, kind: 'rates' | 'gauge'): MetricReading {
    if (Object.keys(values).length === 0 && this.ids.size > 0) return unavailable(this.#why(kind));
    return { kind: 'instances', values };
  }

  /** Why no instance has a value. */
  #why(kind: 'rates' | 'gauge'): string {
    if (this.discoveryError !== undefined) return this.discoveryError;
    const parts: string[] = [];
    if (this.measured.length === 0 && this.failed.length === 0) parts.push('no weft-proxy registered in Consul');
    if (this.failed.length > 0) parts.push(`scrape failed: ${this.failed.join('; ')}`);
    if (kind === 'rates' && this.measured.length > 0 && !this.#serviceMeasured()) parts.push('first scrape of the proxies: a rate needs two');
    if (parts.length === 0) {
      parts.push(this.placementKnown ? `no proxy measured an instance of ${this.service}` : `Consul did not say where ${this.service} runs`);
    }
    return parts.join('; ');
  }
}
