/**
 * /v1/agent/metrics: the agent's telemetry in Consul's JSON shape (go-metrics'
 * in-memory sink: Timestamp, Gauges, Points, Counters, Samples, shown for the
 * last finished 10-second interval, or the current one when it is the only
 * one), or in Prometheus' text format with `?format=prometheus` (or an
 * OpenMetrics Accept header).
 *
 * What it measures: every request as the `consul.api.http` sample (ms, with
 * Consul's method and path labels, path like `v1.kv._`), and gauges read at
 * request time: the process' memory (`consul.runtime.alloc_bytes`,
 * `sys_bytes`), the catalog's size (`consul.state.*`), active sessions, the
 * index, and that this single server leads and is healthy.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { param, queryOf, type RouteContext, sendJson } from './common.js';

/** go-metrics' interval for the in-memory sink, and how many intervals it keeps (Consul: 10 s, 1 min). */
const INTERVAL_MS = 10_000;
const RETAIN_INTERVALS = 6;

type Labels = Readonly<Record<string, string>>;

interface Aggregate {
  readonly name: string;
  readonly labels: Labels;
  count: number;
  sum: number;
  sumSq: number;
  min: number;
  max: number;
}

interface Interval {
  readonly start: number;
  readonly samples: Map<string, Aggregate>;
}

/** The in-memory sink: per-interval aggregates for JSON, running totals for Prometheus. */
export class MetricsSink {
  private readonly intervals: Interval[] = [];
  private readonly totals = new Map<string, { name: string; labels: Labels; count: number; sum: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records one observation of a sample (a timer, in ms). */
  sample(name: string, labels: Labels, value: number): void {
    const key = seriesKey(name, labels);
    const iv = this.current();
    let a = iv.samples.get(key);
    if (a === undefined) {
      a = { name, labels, count: 0, sum: 0, sumSq: 0, min: value, max: value };
      iv.samples.set(key, a);
    }
    a.count++;
    a.sum += value;
    a.sumSq += value * value;
    a.min = Math.min(a.min, value);
    a.max = Math.max(a.max, value);
    const t = this.totals.get(key) ?? { name, labels, count: 0, sum: 0 };
    t.count++;
    t.sum += value;
    this.totals.set(key, t);
  }

  /** go-metrics' DisplayMetrics: the last finished interval, or the current one when it is the only one. */
  display(gauges: ReadonlyArray<{ name: string; value: number; labels?: Labels }>): Record<string, unknown> {
    this.current();
    const shown = this.intervals.length >= 2 ? this.intervals.at(-2)! : this.intervals.at(-1)!;
    const samples = [...shown.samples.values()].sort((a, b) => cmp(seriesKey(a.name, a.labels), seriesKey(b.name, b.labels)));
    return {
      Timestamp: goTime(shown.start),
      Gauges: [...gauges].sort((a, b) => cmp(a.name, b.name)).map((g) => ({ Name: g.name, Value: g.value, Labels: { ...g.labels } })),
      Points: [],
      Counters: [],
      Samples: samples.map((a) => ({
        Name: a.name,
        Count: a.count,
        Rate: a.sum / (INTERVAL_MS / 1000),
        Sum: a.sum,
        Min: a.min,
        Max: a.max,
        Mean: a.sum / a.count,
        Stddev: a.count < 2 ? 0 : Math.sqrt(Math.max(0, (a.count * a.sumSq - a.sum * a.sum) / (a.count * (a.count - 1)))),
        Labels: { ...a.labels },
      })),
    };
  }

  /** The Prometheus text exposition (format 0.0.4): gauges, and samples as summaries (sum and count). */
  prometheus(gauges: ReadonlyArray<{ name: string; value: number; labels?: Labels }>): string {
    const lines: string[] = [];
    const byName = new Map<string, string[]>();
    for (const g of gauges) {
      const n = promName(g.name);
      const rows = byName.get(n) ?? [];
      rows.push(`${n}${promLabels(g.labels ?? {})} ${promValue(g.value)}`);
      byName.set(n, rows);
    }
    for (const [n, rows] of [...byName].sort((a, b) => cmp(a[0], b[0]))) lines.push(`# HELP ${n} ${n}`, `# TYPE ${n} gauge`, ...rows);
    const summaries = new Map<string, string[]>();
    for (const t of this.totals.values()) {
      const n = promName(t.name);
      const rows = summaries.get(n) ?? [];
      rows.push(`${n}_sum${promLabels(t.labels)} ${promValue(t.sum)}`, `${n}_count${promLabels(t.labels)} ${t.count}`);
      summaries.set(n, rows);
    }
    for (const [n, rows] of [...summaries].sort((a, b) => cmp(a[0], b[0]))) lines.push(`# HELP ${n} ${n}`, `# TYPE ${n} summary`, ...rows);
    return `${lines.join('\n')}\n`;
  }

  private current(): Interval {
    const start = Math.floor(this.now() / INTERVAL_MS) * INTERVAL_MS;
    const last = this.intervals.at(-1);
    if (last !== undefined && last.start === start) return last;
    const iv: Interval = { start, samples: new Map() };
    this.intervals.push(iv);
    if (this.intervals.length > RETAIN_INTERVALS) this.intervals.shift();
    return iv;
  }
}

/** Registers the request timer and /v1/agent/metrics; call before the other routes so every route is timed. */
export function metricsRoutes(app: FastifyInstance, ctx: RouteContext): MetricsSink {
  const sink = new MetricsSink();
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url;
    if (route === undefined) return; // Consul times only the endpoints it has
    sink.sample('consul.api.http', { method: req.method, path: pathLabel(route) }, reply.elapsedTime);
  });
  app.get('/v1/agent/metrics', (req, reply) => {
    const gauges = gaugesOf(ctx);
    if (wantsPrometheus(req)) {
      return reply.code(200).header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8').send(sink.prometheus(gauges));
    }
    return sendJson(reply, sink.display(gauges));
  });
  return sink;
}

function gaugesOf(ctx: RouteContext): Array<{ name: string; value: number }> {
  const { store } = ctx;
  const mem = process.memoryUsage();
  const names = new Set<string>();
  for (const s of store.services.values()) names.add(s.name);
  let ttlSessions = 0;
  for (const s of store.sessions.values()) if (s.ttlMs > 0) ttlSessions++;
  return [
    { name: 'consul.runtime.alloc_bytes', value: mem.heapUsed },
    { name: 'consul.runtime.sys_bytes', value: mem.rss },
    { name: 'consul.state.nodes', value: store.nodes.size },
    { name: 'consul.state.services', value: names.size },
    { name: 'consul.state.service_instances', value: store.services.size },
    { name: 'consul.state.kv_entries', value: store.kv.size },
    { name: 'consul.session_ttl.active', value: ttlSessions },
    { name: 'consul.raft.applied_index', value: store.index },
    { name: 'consul.raft.last_index', value: store.index },
    { name: 'consul.server.isLeader', value: 1 },
    { name: 'consul.autopilot.healthy', value: 1 },
  ];
}

/** Consul's enablePrometheusOutput: ?format=prometheus, or an OpenMetrics / text 0.4.0 Accept header. */
function wantsPrometheus(req: FastifyRequest): boolean {
  if (param(queryOf(req), 'format') === 'prometheus') return true;
  for (const part of (req.headers.accept ?? '').split(',')) {
    const [mime, ...params] = part.split(';').map((x) => x.trim());
    if (mime?.toLowerCase() === 'application/openmetrics-text') return true;
    if (mime?.toLowerCase() === 'text/plain' && params[0] === 'version=0.4.0') return true;
  }
  return false;
}

/** A route pattern as Consul's path label: `/v1/kv/*` -> `v1.kv._`, `/v1/agent/self` -> `v1.agent.self`. */
export function pathLabel(route: string): string {
  return route
    .replace(/^\//, '')
    .split('/')
    .map((seg) => (seg.startsWith(':') || seg.includes('*') ? '_' : seg))
    .join('.');
}

function seriesKey(name: string, labels: Labels): string {
  return `${name}\u0000${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000')}`;
}

function promName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_:]/g, '_');
}

function promLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const esc = (v: string): string => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
  return `{${keys.map((k) => `${promName(k)}="${esc(labels[k]!)}"`).join(',')}}`;
}

function promValue(v: number): string {
  return Number.isFinite(v) ? String(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf';
}

/** Go's time.Time.String() in UTC, to the second: `2017-08-08 02:55:10 +0000 UTC`. */
function goTime(ms: number): string {
  const d = new Date(Math.round(ms / 1000) * 1000);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000 UTC`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
