/**
 * What the bench observes besides its own requests, without adding load:
 *
 * - ConsulWatch: a Consul blocking query on one path (as weft's own watches
 *   do), calling back with the body and the wall-clock time of each change;
 *   the stage times of a scale-up or a cold start (key written, allocation
 *   written, instance registered, check passing) come from these.
 * - DecisionLog: the autoscaler's decisions from GET /v1/jobs/:job/autoscale,
 *   polled every 200 ms and kept by their timestamp (the API keeps the last
 *   10 moves; at 5 polls a second none is missed), and the newest decision
 *   of each poll (those that moved nothing: what was recommended and held).
 *
 * Both stop on `close()`; every request has a time limit.
 */
import http from 'node:http';
import { parseFamilies } from '../../src/wiring/proxy-scrape.js';
import { TOKEN } from './cluster.js';

/** One Consul blocking query, repeated until closed. */
export class ConsulWatch {
  #closed = false;
  #req: http.ClientRequest | undefined;
  readonly done: Promise<void>;

  /** `path` is e.g. `/v1/health/service/web` (with its own query string or not). */
  constructor(consulAddress: string, path: string, onChange: (body: unknown, atMs: number) => void) {
    const [host, port] = consulAddress.split(':');
    this.done = (async () => {
      let index = '0';
      let lastBody: string | undefined;
      while (!this.#closed) {
        const sep = path.includes('?') ? '&' : '?';
        const r = await new Promise<{ status: number; index: string; body: string } | undefined>((resolve) => {
          const req = http.get({ host, port: Number(port), path: `${path}${sep}index=${index}&wait=5s`, agent: false, timeout: 15_000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, index: String(res.headers['x-consul-index'] ?? index), body }));
            res.on('error', () => resolve(undefined));
          });
          this.#req = req;
          req.on('timeout', () => req.destroy());
          req.on('error', () => resolve(undefined));
        });
        const at = Date.now();
        if (this.#closed) return;
        if (r === undefined) {
          await new Promise((res) => setTimeout(res, 100));
          continue;
        }
        // An index going backwards (Consul restarted) starts over, as Consul's docs say.
        index = Number(r.index) < Number(index) ? '0' : r.index;
        const body = r.status === 200 ? r.body : '';
        if (body === lastBody) continue;
        lastBody = body;
        let parsed: unknown;
        try {
          parsed = body === '' ? undefined : JSON.parse(body);
        } catch {
          parsed = undefined;
        }
        onChange(parsed, at);
      }
    })();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#req?.destroy();
    await this.done;
  }
}

/** The value of a KV entry as Consul returns it (base64), parsed as JSON. */
export function kvValue<T>(body: unknown): T | undefined {
  const entry = Array.isArray(body) ? (body[0] as { Value?: string | null } | undefined) : undefined;
  if (entry?.Value === undefined || entry.Value === null) return undefined;
  try {
    return JSON.parse(Buffer.from(entry.Value, 'base64').toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Every KV entry of a recursive read, values parsed as JSON. */
export function kvValues<T>(body: unknown): Array<{ key: string; value: T | undefined }> {
  if (!Array.isArray(body)) return [];
  return (body as Array<{ Key: string; Value?: string | null }>).map((e) => ({ key: e.Key, value: kvValue<T>([e]) }));
}

/** An instance in /v1/health/service/<name>: its ID and whether every check passes. */
export function healthEntries(body: unknown): Array<{ id: string; port: number; passing: boolean }> {
  if (!Array.isArray(body)) return [];
  return (body as Array<{ Service: { ID: string; Port: number }; Checks: Array<{ Status: string }> }>).map((e) => ({
    id: e.Service.ID,
    port: e.Service.Port,
    passing: e.Checks.every((c) => c.Status === 'passing'),
  }));
}

/** When each instance of a service was first registered and first passing (wall-clock ms), from a health watch. */
export class InstanceTimes {
  readonly registered = new Map<number, number>();
  readonly passing = new Map<number, number>();
  /** Ports registered at the last change. */
  current: number[] = [];
  readonly #watch: ConsulWatch;

  constructor(consulAddress: string, service: string) {
    this.#watch = new ConsulWatch(consulAddress, `/v1/health/service/${service}`, (body, at) => {
      const entries = healthEntries(body);
      this.current = entries.map((e) => e.port);
      for (const e of entries) {
        if (!this.registered.has(e.port)) this.registered.set(e.port, at);
        if (e.passing && !this.passing.has(e.port)) this.passing.set(e.port, at);
      }
    });
  }

  close(): Promise<void> {
    return this.#watch.close();
  }
}

/** An autoscaler decision as the API shows it, `at` in wall-clock ms. */
export interface Decision {
  atMs: number;
  from: number;
  to: number;
  direction: 'up' | 'down' | 'none';
  applied: boolean;
  failed: boolean;
  activation: boolean;
  reason: string;
}

interface AutoscaleAnswer {
  groups: Array<{ current: number; last?: RawDecision; decisions: RawDecision[] }>;
}
type RawDecision = Omit<Decision, 'atMs'> & { at: string };

/** The decisions of a job's first autoscaled group, collected by polling the scheduler API. */
export class DecisionLog {
  readonly #seen = new Map<string, Decision>();
  readonly #every = new Map<string, Decision>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #polling: Promise<void> = Promise.resolve();
  /** The group's count at the last poll. */
  current: number | undefined;
  last: Decision | undefined;

  constructor(
    private readonly schedulerUrl: string,
    private readonly job: string,
  ) {
    const tick = (): void => {
      this.#polling = this.poll().finally(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, 200);
      });
    };
    tick();
  }

  /** Every decision seen that moved the count or failed, oldest first. */
  get decisions(): Decision[] {
    return [...this.#seen.values()].sort((a, b) => a.atMs - b.atMs);
  }

  /** Every decision seen as the newest one (those that moved nothing too), oldest first; polled, so one may be missed. */
  get every(): Decision[] {
    return [...this.#every.values()].sort((a, b) => a.atMs - b.atMs);
  }

  /** Applied moves at or after `fromMs` (and before `toMs`). */
  moves(fromMs: number, toMs = Number.POSITIVE_INFINITY): Decision[] {
    return this.decisions.filter((d) => d.applied && d.from !== d.to && d.atMs >= fromMs && d.atMs < toMs);
  }

  async poll(): Promise<void> {
    try {
      const res = await fetch(`${this.schedulerUrl}/v1/jobs/${this.job}/autoscale`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5000) });
      if (!res.ok) return;
      const g = ((await res.json()) as AutoscaleAnswer).groups[0];
      if (g === undefined) return;
      this.current = g.current;
      for (const raw of g.last === undefined ? g.decisions : [...g.decisions, g.last]) {
        const d: Decision = { ...raw, atMs: Date.parse(raw.at) };
        if (raw === g.last) {
          this.last = d;
          this.#every.set(raw.at, d);
        }
        if (!d.applied && !d.failed) continue;
        this.#seen.set(`${raw.at}|${raw.from}|${raw.to}`, d);
      }
    } catch {
      // the next poll tries again
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#polling;
  }
}

/** Direction changes among moves: up then down, or down then up. */
export function reversals(moves: readonly Decision[]): number {
  let n = 0;
  for (let i = 1; i < moves.length; i++) if (moves[i]!.direction !== moves[i - 1]!.direction) n++;
  return n;
}

/** The figures a MeshProbe keeps of each /metrics answer: family{label=value} -> summed value. */
const PROBED: Record<string, (labels: Record<string, string>) => string | undefined> = {
  weft_proxy_pool_connections: (l) => `pool ${l['state']}`,
  weft_proxy_requests_in_flight: (l) => `in flight ${l['direction']}`,
  weft_proxy_connections_open: (l) => `conns ${l['direction']}`,
  weft_proxy_retries_total: () => 'retries',
  weft_proxy_ejections_total: () => 'ejections',
};

/**
 * Each proxy's /metrics every `everyMs`: how long it took to answer (the
 * autoscaler scrapes the same URLs at its interval and dates each sample at
 * its decision's start, so this latency is the error of a 1 s rate window),
 * and a few gauges and counters of the mesh (pool connections, requests in
 * flight, open connections, retries, ejections) for a timeline.
 */
export class MeshProbe {
  readonly latencies = new Map<string, number[]>();
  readonly snapshots = new Map<string, Array<{ atMs: number; values: Map<string, number> }>>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #running: Promise<void> = Promise.resolve();

  constructor(urls: ReadonlyMap<string, string>, everyMs: number) {
    const tick = (): void => {
      this.#running = Promise.all(
        [...urls].map(async ([node, url]) => {
          const t0 = performance.now();
          const atMs = Date.now();
          try {
            const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
            const text = await res.text();
            push(this.latencies, node, performance.now() - t0);
            const values = new Map<string, number>();
            for (const family of parseFamilies(text)) {
              const name = PROBED[family.name];
              if (name === undefined) continue;
              for (const m of family.metrics) {
                const key = name(m.labels ?? {});
                if (key !== undefined) values.set(key, (values.get(key) ?? 0) + Number(m.value));
              }
            }
            push(this.snapshots, node, { atMs, values });
          } catch {
            // a timeout shows as a missing sample
          }
        }),
      ).then(() => {
        if (!this.#closed) this.#timer = setTimeout(tick, everyMs);
      });
    };
    tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key) ?? [];
  list.push(value);
  map.set(key, list);
}
