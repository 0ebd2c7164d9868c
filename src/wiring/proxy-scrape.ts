/**
 * Finding and reading the proxies' own metrics: what the autoscaler's scrape
 * source (autoscale-scrape.ts) and the stats API (mesh-stats.ts) share.
 *
 *   MeshWatches ─── Consul: every `weft-proxy` (passing or not: a draining proxy still
 *                   serves /metrics) and the registrations of the services asked about
 *   fetchMetrics ── GET http://<Address>:<Port>/metrics, with a timeout and a byte limit
 *                   counted as the body streams in (no Content-Length needed)
 *   parseFamilies ─ the text format, one plain sample per line (parse-prometheus-text-format)
 *   increases ───── Prometheus' counter rules over consecutive samples (resets, restarts)
 *   histogramQuantile ─ Prometheus' histogram_quantile over cumulative bucket counts
 */
import { createRequire } from 'node:module';
import { PROXY_SERVICE } from '../../base/contracts/meta.js';
import type { BlockingWatch, DiscoveryClient, Instance, WatchOptions } from '../../discovery/index.js';
import { watchService } from '../../discovery/index.js';
import { errorText, type FetchLike } from './autoscale-source.js';

/** One metric family as parse-prometheus-text-format gives it (summaries and histograms are flattened, see parseFamilies). */
export interface Family {
  name: string;
  metrics: Array<{ value?: string; labels?: Record<string, string> }>;
}

type ParseFn = (text: string) => Family[];
const parseText = createRequire(import.meta.url)('parse-prometheus-text-format') as ParseFn;

/**
 * Parses a /metrics answer into families of plain samples.
 *
 * parse-prometheus-text-format folds a labelled histogram into one bucket
 * map (the last label set's) and drops its _sum/_count (upstream issues #8,
 * #13), so the comment lines (# HELP, # TYPE) are left out before parsing:
 * every line then stays the plain sample it is (name, labels, value), which
 * is also how Prometheus stores it; `<name>_bucket` is a family of its own.
 */
export function parseFamilies(text: string): Family[] {
  const lines = text.split('\n').filter((line) => !line.trimStart().startsWith('#'));
  // The parser writes out a family when the next line starts another: end with an empty line.
  lines.push('');
  return parseText(lines.join('\n'));
}

/** The /metrics URL of a registered proxy. */
export function metricsUrl(proxy: Instance, path: string): string {
  return `http://${proxy.address.includes(':') ? `[${proxy.address}]` : proxy.address}:${proxy.port}${path}`;
}

/**
 * One bounded scrape: the body of `url` as text. Fails on a status other
 * than 2xx, after `timeoutMs` (headers and body together), and as soon as
 * the body passes `maxBytes` (declared or counted).
 */
export async function fetchMetrics(fetch: FetchLike, url: string, timeoutMs: number, maxBytes: number): Promise<string> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'text/plain;version=0.0.4' } });
    if (!res.ok) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? Number.NaN);
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new Error(`answer of ${declared} bytes is over the ${maxBytes}-byte limit`);
    }
    if (res.body === null) return '';
    const chunks: Uint8Array[] = [];
    let bytes = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > maxBytes) {
        await reader.cancel();
        throw new Error(`answer of more than ${maxBytes} bytes is over the limit`);
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    throw new Error(timedOut ? `no answer within ${timeoutMs} ms` : errorText(err));
  }
}

export interface MeshWatchOptions {
  client: DiscoveryClient;
  /** How long a first read waits for Consul's first answer. Default 5 s. */
  discoveryTimeoutMs?: number | undefined;
  watch?: WatchOptions | undefined;
}

interface ServiceWatch {
  watch: BlockingWatch<Instance[]>;
  ready: Promise<void>;
  lastUsedMs: number;
}

/**
 * Consul watches opened on first use: the `weft-proxy` list and, per
 * service asked about, its registrations. `closeIdle` closes the service
 * watches nobody asked about for a while; `close` closes all of them, and
 * the next call opens them again.
 */
export class MeshWatches {
  readonly #client: DiscoveryClient;
  readonly #discoveryTimeoutMs: number;
  readonly #watchOptions: WatchOptions;
  readonly #services = new Map<string, ServiceWatch>();
  #proxies: { watch: BlockingWatch<Instance[]>; ready: Promise<void> } | undefined;

  constructor(opts: MeshWatchOptions) {
    this.#client = opts.client;
    this.#discoveryTimeoutMs = opts.discoveryTimeoutMs ?? 5_000;
    this.#watchOptions = opts.watch ?? {};
  }

  /** Every registered `weft-proxy`; throws when Consul has not answered. */
  async proxies(): Promise<Instance[]> {
    if (this.#proxies === undefined) {
      const watch = watchService(this.#client, PROXY_SERVICE, { ...this.#watchOptions, passingOnly: false });
      this.#proxies = { watch, ready: this.#firstAnswer(watch) };
    }
    const proxies = this.#proxies;
    await proxies.ready;
    const list = proxies.watch.current();
    if (list === undefined) throw proxies.watch.lastError ?? new Error(`Consul did not answer within ${this.#discoveryTimeoutMs} ms`);
    return list;
  }

  /** The registrations of `service` (passing or not); undefined while Consul has not answered. */
  async registrations(service: string, nowMs: number): Promise<Instance[] | undefined> {
    let entry = this.#services.get(service);
    if (entry === undefined) {
      const watch = watchService(this.#client, service, { ...this.#watchOptions, passingOnly: false });
      entry = { watch, ready: this.#firstAnswer(watch), lastUsedMs: nowMs };
      this.#services.set(service, entry);
    }
    entry.lastUsedMs = Math.max(entry.lastUsedMs, nowMs);
    await entry.ready;
    return entry.watch.current();
  }

  /** How many watches are open (the proxy list counts as one). */
  get open(): number {
    return this.#services.size + (this.#proxies === undefined ? 0 : 1);
  }

  /** Closes the service watches not asked about within `idleMs` before `nowMs`. */
  closeIdle(nowMs: number, idleMs: number): void {
    for (const [service, entry] of this.#services) {
      if (nowMs - entry.lastUsedMs < idleMs) continue;
      this.#services.delete(service);
      void entry.watch.close();
    }
  }

  /** Closes every watch. */
  async close(): Promise<void> {
    const watches = [...this.#services.values()].map((s) => s.watch.close());
    if (this.#proxies !== undefined) watches.push(this.#proxies.watch.close());
    this.#services.clear();
    this.#proxies = undefined;
    await Promise.all(watches);
  }

  /** Resolves at the watch's first value, or after the discovery timeout (never rejects). */
  #firstAnswer(watch: BlockingWatch<Instance[]>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.#discoveryTimeoutMs);
      timer.unref();
    });
    const done = (): void => clearTimeout(timer);
    return Promise.race([watch.ready().then(() => undefined), timeout]).then(done, done);
  }
}

/** A scrape's counters, as `increases` needs them: the process start time tells a restart. */
export interface CounterSample {
  /** weft_process_start_time_seconds, when exported: a change means the process restarted. */
  startTime: number | undefined;
}

/**
 * Sums a counter family's increases over consecutive samples, by Prometheus'
 * rules without extrapolation: a value below the one before, or a changed
 * process start time, is a reset, and the new value is the increase since.
 * `whole`: the family resets as one (a histogram: one bucket going down
 * means every count restarted).
 */
export function increases<S extends CounterSample, K>(samples: readonly S[], pick: (s: S) => ReadonlyMap<K, number> | undefined, whole: boolean): Map<K, number> {
  const out = new Map<K, number>();
  for (let i = 1; i < samples.length; i++) {
    const prev = samples[i - 1]!;
    const cur = samples[i]!;
    const before = pick(prev);
    const after = pick(cur);
    if (after === undefined) continue;
    const restarted = prev.startTime !== undefined && cur.startTime !== undefined && prev.startTime !== cur.startTime;
    const wholeReset = restarted || (whole && before !== undefined && [...after].some(([k, v]) => v < (before.get(k) ?? 0)));
    for (const [k, v] of after) {
      const old = before?.get(k) ?? 0;
      const inc = wholeReset || v < old ? v : v - old;
      out.set(k, (out.get(k) ?? 0) + inc);
    }
  }
  return out;
}

/**
 * The q-quantile of a histogram given as cumulative counts per upper bound
 * (+Inf included), as Prometheus' histogram_quantile computes it: the bucket
 * where the rank falls, then linear interpolation within it (from 0 for the
 * first bucket); a rank in the +Inf bucket answers the highest finite bound.
 * null when the histogram holds no observation or has no +Inf bucket.
 */
export function histogramQuantile(q: number, cumulative: ReadonlyMap<number, number>): number | null {
  const bounds = [...cumulative.keys()].sort((a, b) => a - b);
  if (bounds.length < 2 || bounds[bounds.length - 1] !== Number.POSITIVE_INFINITY) return null;
  // Counts must not fall with the bound; a scrape taken mid-update may break that, so even it out.
  const counts: number[] = [];
  for (const b of bounds) counts.push(Math.max(cumulative.get(b)!, counts[counts.length - 1] ?? 0));
  const total = counts[counts.length - 1]!;
  if (!(total > 0)) return null;
  if (q <= 0) return bounds[0]! <= 0 ? bounds[0]! : 0;
  if (q >= 1) return bounds[bounds.length - 2]!;
  const rank = q * total;
  const i = counts.findIndex((c) => c >= rank);
  if (i === bounds.length - 1) return bounds[bounds.length - 2]!;
  const upper = bounds[i]!;
  if (i === 0 && upper <= 0) return upper;
  const lower = i === 0 ? 0 : bounds[i - 1]!;
  const below = i === 0 ? 0 : counts[i - 1]!;
  const inBucket = counts[i]! - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}
