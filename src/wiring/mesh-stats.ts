/**
 * The stats API's collector (`GET /v1/stats`, base/contracts/scheduler-api.ts
 * "stats"): golden signals per service, version, instance and caller ->
 * destination edge, from the proxies' own metrics, for the console and
 * `weft stat`. It scrapes only while someone asks:
 *
 *   stats(window) ── a round younger than cacheMs? reuse it : scrape a round now
 *     round: every weft-proxy in Consul (at most maxProxies, 8 at a time, timeout and byte limit each)
 *            + the weft services (catalog, tag `weft`) and their registrations (health, version, host)
 *            + the splits in force (KV weft/splits/)
 *     no earlier round within the window? wait minSpanMs and scrape a second one (a rate needs two)
 *   ring of rounds (at most ringSize, thinned evenly; none older than 10 min)
 *   answer: increases over the rounds inside the window (proxy-scrape.ts increases, histogramQuantile)
 *     service, version, instance ─ weft_proxy_requests_total / _duration_seconds{direction="inbound"}
 *     edge source -> destination ── the same, direction="outbound" (at the caller's proxy),
 *                                   + weft_proxy_intention_denials_total (at the destination's proxy)
 *   nobody asked for idleMs: the ring is dropped and the Consul watches closed
 *
 * Refusals (inbound `instance="none"`: intentions, no local instance) are
 * left out of the service's figures and counted as denials on the edge.
 * An instance's latency is its host proxy's histogram for the service and
 * version (the histogram has no instance label): exact with one instance of
 * a version per host, the scheduler's usual spread.
 */
import { WEFT_TAG, AGENT_SERVICE, PROXY_SERVICE, SCHEDULER_SERVICE } from '../../base/contracts/meta.js';
import type { EdgeStats, GoldenSignals, InstanceStats, ServiceStats, StatsResponse, VersionStats } from '../../base/contracts/scheduler-api.js';
import { type Logger, silentLogger } from '../../base/log.js';
import type { DiscoveryClient, Instance, WatchOptions } from '../../discovery/index.js';
import { listEntries } from '../../discovery/index.js';
import { SPLIT_KV_PREFIX, validateSplit } from '../../proxy/index.js';
import { unwrapDocument } from '../../base/signing.js';
import { errorText, type FetchLike, NO_INSTANCE, PROXY_METRICS, parseSampleValue } from './autoscale-source.js';
import { type CounterSample, fetchMetrics, histogramQuantile, increases, MeshWatches, metricsUrl, parseFamilies } from './proxy-scrape.js';
import type { Handlers } from './scheduler-api.js';

/** The denial counter (docs/metrics.md). */
const DENIALS = 'weft_proxy_intention_denials_total';
/** The longest window the API accepts (StatsQuerySchema), in ms: older rounds are dropped. */
const MAX_WINDOW_MS = 600_000;
/** The window when the query names none, in seconds. */
export const DEFAULT_WINDOW_SECONDS = 30;
/** Proxies scraped at once. */
const CONCURRENCY = 8;
/** The label separator inside the flattened keys below. */
const SEP = '\u0000';

export interface MeshStatsOptions {
  client: DiscoveryClient;
  /** Default globalThis.fetch. */
  fetch?: FetchLike | undefined;
  /** Wall clock, epoch ms (default Date.now): the rounds' timestamps. */
  now?: (() => number) | undefined;
  /** Waits between the first two rounds (default a timer); tests move their clock instead. */
  sleep?: ((ms: number) => Promise<void>) | undefined;
  /** Per proxy scrape. Default 2 s. */
  timeoutMs?: number | undefined;
  /** A larger /metrics answer is refused (a proxy's is tens of KB). Default 4 MiB. */
  maxBytes?: number | undefined;
  /** Proxies scraped per round; the rest count as failed. Default 256. */
  maxProxies?: number | undefined;
  /** Services reported. Default 256. */
  maxServices?: number | undefined;
  /** Asks within this of the last round reuse it. Default 1 s. */
  cacheMs?: number | undefined;
  /** The shortest span a rate is taken over. Default 1 s. */
  minSpanMs?: number | undefined;
  /** Rounds kept. Default 64. */
  ringSize?: number | undefined;
  /** After this long without an ask, the ring is dropped and the watches closed. Default 60 s. */
  idleMs?: number | undefined;
  watch?: WatchOptions | undefined;
  logger?: Logger | undefined;
}

/** One proxy's figures at one round, flattened: `<labels joined by SEP>` -> cumulative count. */
interface StatsSample extends CounterSample {
  atMs: number;
  /** The proxy's host (its registration's weft_host). */
  host: string;
  /** inbound answers: destination, version, instance, `1` for a 5xx else `0`. */
  inbound: Map<string, number>;
  /** inbound latency buckets: destination, version, le (refusals left out). */
  inboundBuckets: Map<string, number>;
  /** outbound answers: source, destination, `1` for a 5xx else `0`. */
  outbound: Map<string, number>;
  /** outbound latency buckets: source, destination, le. */
  outboundBuckets: Map<string, number>;
  /** intention refusals: source, destination. */
  denials: Map<string, number>;
}

/** What one round learnt about the cluster besides the samples (kept for the newest round only). */
interface Cluster {
  services: Map<string, Instance[] | undefined>;
  splits: Map<string, ReadonlyMap<string, number>>;
}

interface Round {
  atMs: number;
  /** Per proxy (`<id> <url>`): its sample. */
  samples: Map<string, StatsSample>;
  scraped: number;
  failed: number;
  cluster: Cluster | undefined;
}

/** Parses a proxy's /metrics into the figures the stats need. */
export function parseStatsSample(text: string, atMs: number): StatsSample {
  const s: StatsSample = { atMs, host: '', startTime: undefined, inbound: new Map(), inboundBuckets: new Map(), outbound: new Map(), outboundBuckets: new Map(), denials: new Map() };
  const add = (map: Map<string, number>, key: string, value: number): void => {
    map.set(key, (map.get(key) ?? 0) + value);
  };
  for (const family of parseFamilies(text)) {
    const bucket = family.name === `${PROXY_METRICS.duration}_bucket`;
    if (family.name === PROXY_METRICS.processStart) s.startTime = parseSampleValue(family.metrics[0]?.value ?? '');
    if (family.name !== PROXY_METRICS.requests && !bucket && family.name !== DENIALS) continue;
    for (const m of family.metrics) {
      const l = m.labels ?? {};
      const value = parseSampleValue(m.value ?? '');
      const source = l['source'] ?? '';
      const destination = l['destination'];
      if (!Number.isFinite(value) || destination === undefined) continue;
      if (family.name === DENIALS) {
        add(s.denials, `${source}${SEP}${destination}`, value);
        continue;
      }
      const inbound = l['direction'] === 'inbound';
      if (!inbound && l['direction'] !== 'outbound') continue;
      if (bucket) {
        if (l['le'] === undefined || Number.isNaN(parseSampleValue(l['le']))) continue;
        if (inbound) {
          if (l['version'] !== NO_INSTANCE) add(s.inboundBuckets, `${destination}${SEP}${l['version'] ?? ''}${SEP}${l['le']}`, value);
        } else add(s.outboundBuckets, `${source}${SEP}${destination}${SEP}${l['le']}`, value);
        continue;
      }
      const bad = (l['code'] ?? '').startsWith('5') ? '1' : '0';
      if (inbound) add(s.inbound, `${destination}${SEP}${l['version'] ?? ''}${SEP}${l['instance'] ?? ''}${SEP}${bad}`, value);
      else add(s.outbound, `${source}${SEP}${destination}${SEP}${bad}`, value);
    }
  }
  return s;
}

/** Requests, 5xx and latency counts of one thing (a service, a version, an instance, an edge), summed over proxies. */
class Tally {
  rps = 0;
  ok = 0;
  bad = 0;
  readonly buckets = new Map<number, number>();

  signals(): GoldenSignals {
    const total = this.ok + this.bad;
    const q = (p: number): number | null => {
      const v = histogramQuantile(p, this.buckets);
      return v === null ? null : round3(v * 1000);
    };
    return { rps: round3(this.rps), successRate: total > 0 ? round3(this.ok / total) : null, p50Ms: q(0.5), p99Ms: q(0.99) };
  }

  count(n: number, seconds: number, bad: boolean): void {
    this.rps += n / seconds;
    if (bad) this.bad += n;
    else this.ok += n;
  }

  addBuckets(le: number, n: number): void {
    this.buckets.set(le, (this.buckets.get(le) ?? 0) + n);
  }
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function tally<K>(map: Map<K, Tally>, key: K): Tally {
  let t = map.get(key);
  if (t === undefined) {
    t = new Tally();
    map.set(key, t);
  }
  return t;
}

/** The collector behind `GET /v1/stats`: one per scheduler process. */
export class MeshStats {
  readonly #client: DiscoveryClient;
  readonly #fetch: FetchLike;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #maxProxies: number;
  readonly #maxServices: number;
  readonly #cacheMs: number;
  readonly #minSpanMs: number;
  readonly #ringSize: number;
  readonly #idleMs: number;
  readonly #logger: Logger;
  readonly #watches: MeshWatches;
  #rounds: Round[] = [];
  #refreshing: Promise<void> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #warnedProxies = false;
  /** Asks being answered now. */
  #asking = 0;
  /** Rounds scraped since start (tests and logs). */
  roundsScraped = 0;

  constructor(opts: MeshStatsOptions) {
    this.#client = opts.client;
    this.#fetch = opts.fetch ?? ((url, init) => globalThis.fetch(url, init));
    this.#now = opts.now ?? Date.now;
    this.#sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#timeoutMs = opts.timeoutMs ?? 2_000;
    this.#maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
    this.#maxProxies = opts.maxProxies ?? 256;
    this.#maxServices = opts.maxServices ?? 256;
    this.#cacheMs = opts.cacheMs ?? 1_000;
    this.#minSpanMs = opts.minSpanMs ?? 1_000;
    this.#ringSize = Math.max(3, opts.ringSize ?? 64);
    this.#idleMs = opts.idleMs ?? 60_000;
    this.#logger = opts.logger ?? silentLogger;
    this.#watches = new MeshWatches({ client: opts.client, watch: opts.watch });
  }

  /** Whether anything is held: rounds in the ring or Consul watches open (false once idle). */
  get active(): boolean {
    return this.#rounds.length > 0 || this.#watches.open > 0;
  }

  /** The golden signals over the last `windowSeconds` (scrapes first when the ring cannot answer). */
  async stats(windowSeconds: number = DEFAULT_WINDOW_SECONDS): Promise<StatsResponse> {
    // The idle clock runs only between asks: it starts again when the last ask in flight is answered.
    clearTimeout(this.#idleTimer);
    this.#asking++;
    try {
      const windowMs = Math.min(Math.max(windowSeconds, 1) * 1000, MAX_WINDOW_MS);
      await this.#refresh(windowMs);
      return this.#answer(windowMs);
    } finally {
      if (--this.#asking === 0) this.#armIdle();
    }
  }

  /** Drops the ring and closes the watches; a later ask starts again. */
  async close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    await this.#refreshing?.catch(() => {});
    this.#rounds = [];
    await this.#watches.close();
  }

  #armIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      this.#logger.debug('stats: nobody asked for a while: scraping stops');
      void this.close();
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  // ── rounds ────────────────────────────────────────────────────────────

  /** Scrapes what the answer needs: a fresh round, and an earlier one within the window. Concurrent asks share rounds. */
  async #refresh(windowMs: number): Promise<void> {
    // Another ask is scraping: wait for it, then see whether this window still lacks a round.
    while (this.#refreshing !== undefined) await this.#refreshing;
    const newest = this.#rounds[this.#rounds.length - 1];
    const fresh = newest !== undefined && this.#now() - newest.atMs < this.#cacheMs;
    if (fresh && this.#base(windowMs) !== undefined) return;
    this.#refreshing = (async () => {
      if (!fresh) await this.#scrapeRound();
      if (this.#base(windowMs) === undefined) {
        await this.#sleep(this.#minSpanMs);
        await this.#scrapeRound();
      }
    })().finally(() => {
      this.#refreshing = undefined;
    });
    await this.#refreshing;
  }

  /** The oldest earlier round inside the window, at least minSpanMs before the newest. */
  #base(windowMs: number): Round | undefined {
    const newest = this.#rounds[this.#rounds.length - 1];
    if (newest === undefined) return undefined;
    return this.#rounds.find((r) => newest.atMs - r.atMs <= windowMs && newest.atMs - r.atMs >= this.#minSpanMs);
  }

  async #scrapeRound(): Promise<void> {
    const atMs = this.#now();
    const round: Round = { atMs, samples: new Map(), scraped: 0, failed: 0, cluster: undefined };
    let proxies: Instance[] = [];
    try {
      proxies = [...(await this.#watches.proxies())].sort((a, b) => a.id.localeCompare(b.id));
    } catch (err) {
      this.#logger.warn({ err: errorText(err) }, 'stats: no weft-proxy list from Consul');
    }
    if (proxies.length > this.#maxProxies) {
      if (!this.#warnedProxies) this.#logger.warn({ proxies: proxies.length, max: this.#maxProxies }, 'stats: more proxies than scraped per round; the rest count as failed');
      this.#warnedProxies = true;
      round.failed += proxies.length - this.#maxProxies;
      proxies = proxies.slice(0, this.#maxProxies);
    }
    const [cluster] = await Promise.all([this.#cluster(atMs), this.#scrapeAll(proxies, round)]);
    round.cluster = cluster;
    this.roundsScraped++;
    for (const r of this.#rounds) r.cluster = undefined;
    this.#rounds = [...this.#rounds.filter((r) => r.atMs < atMs && atMs - r.atMs <= MAX_WINDOW_MS + this.#cacheMs), round];
    this.#thin();
  }

  async #scrapeAll(proxies: readonly Instance[], round: Round): Promise<void> {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < proxies.length) {
        const p = proxies[next++]!;
        const url = metricsUrl(p, '/metrics');
        try {
          const sample = parseStatsSample(await fetchMetrics(this.#fetch, url, this.#timeoutMs, this.#maxBytes), round.atMs);
          sample.host = p.host;
          round.samples.set(`${p.id} ${url}`, sample);
          round.scraped++;
        } catch (err) {
          round.failed++;
          this.#logger.debug({ proxy: p.id, url, err: errorText(err) }, 'stats: proxy metrics scrape failed');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, proxies.length) }, worker));
  }

  /** The weft services with their registrations, and the splits in force. */
  async #cluster(nowMs: number): Promise<Cluster> {
    const services = new Map<string, Instance[] | undefined>();
    const splits = new Map<string, ReadonlyMap<string, number>>();
    const [catalog, entries] = await Promise.all([
      this.#client.call('catalog.service.list', (c) => c.catalog.service.list() as Promise<Record<string, string[]>>).catch((err: unknown) => {
        this.#logger.warn({ err: errorText(err) }, 'stats: no service list from Consul');
        return {} as Record<string, string[]>;
      }),
      listEntries(this.#client, SPLIT_KV_PREFIX).catch(() => []),
    ]);
    const own = new Set([PROXY_SERVICE, AGENT_SERVICE, SCHEDULER_SERVICE]);
    const names = Object.entries(catalog)
      .filter(([name, tags]) => !own.has(name) && Array.isArray(tags) && tags.includes(WEFT_TAG))
      .map(([name]) => name)
      .sort()
      .slice(0, this.#maxServices);
    const regs = await Promise.all(names.map((name) => this.#watches.registrations(name, nowMs)));
    for (const [i, name] of names.entries()) services.set(name, regs[i]);
    this.#watches.closeIdle(nowMs, this.#idleMs);
    for (const e of entries) {
      const service = e.key.slice(SPLIT_KV_PREFIX.length);
      try {
        // The scheduler writes splits signed (docs/security.md); one without an envelope is not in force.
        splits.set(service, validateSplit(service, JSON.parse(unwrapDocument(e.value) ?? '')));
      } catch {
        // An invalid or unsigned split is not in force (the proxies refuse it too).
      }
    }
    return { services, splits };
  }

  /** Keeps at most ringSize rounds, spread evenly: drops the inner round whose neighbours are closest. */
  #thin(): void {
    while (this.#rounds.length > this.#ringSize) {
      let drop = 1;
      let gap = Number.POSITIVE_INFINITY;
      for (let i = 1; i < this.#rounds.length - 1; i++) {
        const g = this.#rounds[i + 1]!.atMs - this.#rounds[i - 1]!.atMs;
        if (g < gap) {
          gap = g;
          drop = i;
        }
      }
      this.#rounds.splice(drop, 1);
    }
  }

  // ── the answer ────────────────────────────────────────────────────────

  #answer(windowMs: number): StatsResponse {
    const newest = this.#rounds[this.#rounds.length - 1];
    if (newest === undefined) return { at: new Date(this.#now()).toISOString(), windowSeconds: 0, proxies: { scraped: 0, failed: 0 }, services: [], edges: [] };
    const base = this.#base(windowMs) ?? newest;
    const chain = this.#rounds.slice(this.#rounds.indexOf(base));
    const services = new Map<string, Tally>();
    const versions = new Map<string, Tally>();
    const instances = new Map<string, Tally>();
    /** `<host><SEP><service><SEP><version>` -> latency of that host's instances of that version. */
    const hostLatency = new Map<string, Tally>();
    const edges = new Map<string, Tally>();
    const denied = new Map<string, number>();
    /** Versions and instances seen in the newest samples, so a quiet one still shows. */
    const seenVersions = new Map<string, Set<string>>();
    const seenEdges = new Set<string>();
    for (const [key, cur] of newest.samples) {
      const host = cur.host;
      for (const k of cur.inbound.keys()) {
        const [dest, version, instance] = k.split(SEP) as [string, string, string];
        if (instance === NO_INSTANCE) continue;
        if (!seenVersions.has(dest)) seenVersions.set(dest, new Set());
        seenVersions.get(dest)!.add(version);
      }
      for (const k of cur.outbound.keys()) seenEdges.add(k.split(SEP).slice(0, 2).join(SEP));
      for (const k of cur.denials.keys()) seenEdges.add(k);
      const samples = chain.map((r) => r.samples.get(key)).filter((s): s is StatsSample => s !== undefined);
      if (samples.length < 2) continue;
      const seconds = (samples[samples.length - 1]!.atMs - samples[0]!.atMs) / 1000;
      if (!(seconds > 0)) continue;
      for (const [k, n] of increases(samples, (s) => s.inbound, false)) {
        const [dest, version, instance, bad] = k.split(SEP) as [string, string, string, string];
        if (instance === NO_INSTANCE) continue;
        for (const t of [tally(services, dest), tally(versions, `${dest}${SEP}${version}`), tally(instances, `${dest}${SEP}${instance}`)]) t.count(n, seconds, bad === '1');
      }
      for (const [k, n] of increases(samples, (s) => s.inboundBuckets, true)) {
        const [dest, version, le] = k.split(SEP) as [string, string, string];
        const bound = parseSampleValue(le);
        tally(services, dest).addBuckets(bound, n);
        tally(versions, `${dest}${SEP}${version}`).addBuckets(bound, n);
        tally(hostLatency, `${host}${SEP}${dest}${SEP}${version}`).addBuckets(bound, n);
      }
      for (const [k, n] of increases(samples, (s) => s.outbound, false)) {
        const [source, dest, bad] = k.split(SEP) as [string, string, string];
        tally(edges, `${source}${SEP}${dest}`).count(n, seconds, bad === '1');
      }
      for (const [k, n] of increases(samples, (s) => s.outboundBuckets, true)) {
        const [source, dest, le] = k.split(SEP) as [string, string, string];
        tally(edges, `${source}${SEP}${dest}`).addBuckets(parseSampleValue(le), n);
      }
      for (const [k, n] of increases(samples, (s) => s.denials, false)) denied.set(k, (denied.get(k) ?? 0) + n / seconds);
    }
    const cluster = newest.cluster ?? { services: new Map(), splits: new Map() };
    const names = new Set([...cluster.services.keys(), ...seenVersions.keys()]);
    const serviceStats: ServiceStats[] = [...names]
      .sort()
      .slice(0, this.#maxServices)
      .map((name) => this.#service(name, cluster, services, versions, instances, hostLatency, seenVersions.get(name)));
    const edgeStats: EdgeStats[] = [...new Set([...seenEdges, ...edges.keys(), ...denied.keys()])].sort().map((k) => {
      const [source, destination] = k.split(SEP) as [string, string];
      return { source, destination, deniedPerSecond: round3(denied.get(k) ?? 0), ...(edges.get(k) ?? new Tally()).signals() };
    });
    return {
      at: new Date(newest.atMs).toISOString(),
      windowSeconds: (newest.atMs - base.atMs) / 1000,
      proxies: { scraped: newest.scraped, failed: newest.failed },
      services: serviceStats,
      edges: edgeStats,
    };
  }

  #service(
    name: string,
    cluster: Cluster,
    services: Map<string, Tally>,
    versions: Map<string, Tally>,
    instances: Map<string, Tally>,
    hostLatency: Map<string, Tally>,
    seen: Set<string> | undefined,
  ): ServiceStats {
    const regs = cluster.services.get(name) ?? [];
    const split = cluster.splits.get(name);
    const splitTotal = split === undefined ? 0 : [...split.values()].reduce((a, b) => a + b, 0);
    const versionOf = (reg: Instance): string => reg.version ?? 'unknown';
    const all = services.get(name) ?? new Tally();
    const names = new Set([...regs.map(versionOf), ...(seen ?? []), ...(split?.keys() ?? [])]);
    const versionStats: VersionStats[] = [...names].sort().map((version) => {
      const t = versions.get(`${name}${SEP}${version}`) ?? new Tally();
      return {
        version,
        instances: regs.filter((r) => versionOf(r) === version).length,
        share: all.rps > 0 ? round3(t.rps / all.rps) : null,
        splitWeight: split === undefined || splitTotal <= 0 ? null : round3((split.get(version) ?? 0) / splitTotal),
        ...t.signals(),
      };
    });
    const instanceStats: InstanceStats[] = [...regs]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((reg) => {
        const t = instances.get(`${name}${SEP}${reg.id}`) ?? new Tally();
        const latency = hostLatency.get(`${reg.host}${SEP}${name}${SEP}${versionOf(reg)}`);
        const signals = t.signals();
        if (latency !== undefined) {
          const l = latency.signals();
          signals.p50Ms = l.p50Ms;
          signals.p99Ms = l.p99Ms;
        }
        return { id: reg.id, version: versionOf(reg), host: reg.host, healthy: reg.healthy, ...signals };
      });
    return {
      service: name,
      instances: { total: regs.length, healthy: regs.filter((r) => r.healthy).length },
      versions: versionStats,
      instanceStats,
      ...all.signals(),
    };
  }
}

/** The route: `GET /v1/stats?window=<seconds>`. */
export function statsHandlers(stats: MeshStats): Pick<Handlers, 'stats'> {
  return {
    async stats(req) {
      const { window } = req.query as { window?: number };
      return stats.stats(window ?? DEFAULT_WINDOW_SECONDS);
    },
  };
}
