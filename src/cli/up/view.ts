/**
 * `weft up`'s live view, while it runs: the services with their instances per
 * version and host, requests/s, success rate, p50/p99 and each version's
 * share against the split (GET /v1/stats), who calls whom, the load
 * generator's progress, and the autoscaler's decisions as they happen
 * (GET /v1/jobs/:job/autoscale), like `linkerd viz stat` and `top`.
 *
 * On a terminal it is redrawn in place every couple of seconds, with weft
 * up's own events (a piece restarted) in it. Elsewhere it prints plain lines:
 * a scaling decision when it happens, and the traffic every `plainEveryMs`.
 * Every poll is bounded by the client's timeout; a failed one is shown and
 * the next one tries again.
 */
import type { AutoscaleDecisionView, StatsResponse } from '../../../base/contracts/scheduler-api.js';
import type { SchedulerClient } from '../client/scheduler-client.js';
import { hostsOf, millis, percent, rate, renderEdges, renderServices, share } from '../client/stats-view.js';
import { paint } from '../client/table.js';
import { age } from '../client/views.js';
import type { SimHost } from './hosts.js';
import { seconds, UP_PREFIX } from './progress.js';

/** What the load generator says about itself (examples/demo/loadgen.mjs GET /status). */
export interface LoadStatus {
  target: string;
  phase: 'waiting' | 'running' | 'done';
  stage: number | null;
  stages: number;
  /** The running stage's direction. */
  trend?: 'up' | 'down' | 'steady' | null;
  rps: number;
  elapsedMs: number;
  totalMs: number;
  sent: number;
  ok: number;
  failed: number;
  skipped: number;
  lastFailure: string | null;
}

/** One scaling decision as the view lists it. */
export interface ScalingEvent extends Pick<AutoscaleDecisionView, 'at' | 'from' | 'to' | 'reason' | 'applied' | 'failed'> {
  job: string;
  group: string;
}

/** Everything one frame shows. */
export interface LiveInput {
  startedAt: number;
  now: number;
  driver: string;
  hosts: readonly SimHost[];
  /** Whether weft up started the demo (Ctrl-C stops it then). */
  demo: boolean;
  stats?: StatsResponse | undefined;
  statsError?: string | undefined;
  load?: LoadStatus | undefined;
  /** Newest last. */
  scaling: readonly ScalingEvent[];
  /** weft up's own lines (restarts), newest last, with when they happened. */
  events: ReadonlyArray<{ at: number; text: string }>;
}

/** One line on the load generator. */
export function loadLine(l: LoadStatus): string {
  const counts = `${l.sent.toLocaleString('en-US')} sent, ${l.failed.toLocaleString('en-US')} failed${l.skipped > 0 ? `, ${l.skipped} skipped` : ''}`;
  const clock = `${seconds(l.elapsedMs)} of ${seconds(l.totalMs)}`;
  if (l.phase === 'waiting') return `loadgen -> ${l.target}: waiting for a first answer through the mesh${l.lastFailure === null ? '' : ` (last: ${l.lastFailure})`}`;
  if (l.phase === 'done') return `loadgen -> ${l.target}: done after ${seconds(l.totalMs)} (${counts}); it sends nothing more`;
  const trend = l.trend === 'up' ? 'ramping up' : l.trend === 'down' ? 'ramping down' : 'steady';
  return `loadgen -> ${l.target}: ${rate(l.rps)} req/s, ${trend} (stage ${(l.stage ?? 0) + 1}/${l.stages}, ${clock}; ${counts})`;
}

/** One line per scaling decision. */
export function scalingLine(e: ScalingEvent, now: number): string {
  const what = e.applied ? `${e.from} -> ${e.to}` : e.failed ? 'failed' : `${e.from} -> ${e.to} (not applied)`;
  return `${age(e.at, now).padEnd(8)} ${`${e.job}.${e.group}`.padEnd(14)} ${what.padEnd(7)} ${e.reason}`;
}

/** The frame's lines (pure). */
export function renderLive(input: LiveInput, o: { color: boolean; maxScaling?: number; maxEvents?: number }): string[] {
  const hosts = input.hosts.map((h) => `${h.node} ${h.address}`).join(', ');
  const stopNote = input.demo ? 'Ctrl-C stops weft and the demo' : 'Ctrl-C stops weft';
  const lines = [
    paint(`weft up · running ${seconds(input.now - input.startedAt)} · ${input.driver} driver · hosts ${hosts} · ${stopNote}`, 'dim', o.color),
  ];
  if (input.load !== undefined) lines.push(`load     ${loadLine(input.load)}`);
  lines.push('');
  if (input.stats !== undefined) {
    lines.push(...renderServices(input.stats, { color: o.color, versions: true }).split('\n'));
    const edges = renderEdges(input.stats.edges, o);
    if (edges !== '') lines.push('', ...edges.split('\n'));
  } else {
    lines.push(input.statsError === undefined ? 'waiting for the first figures from the proxies...' : paint(`traffic figures unavailable: ${input.statsError}`, 'yellow', o.color));
  }
  const scaling = input.scaling.slice(-(o.maxScaling ?? 5));
  lines.push('', paint('scaling decisions', 'dim', o.color));
  if (scaling.length === 0) lines.push(paint('  none yet', 'dim', o.color));
  for (const e of scaling) lines.push(`  ${paint(scalingLine(e, input.now), e.failed && !e.applied ? 'red' : undefined, o.color)}`);
  const events = input.events.slice(-(o.maxEvents ?? 4));
  if (events.length > 0) {
    lines.push('', paint('weft up', 'dim', o.color));
    for (const e of events) lines.push(`  ${seconds(input.now - e.at).padEnd(7)} ago  ${e.text}`);
  }
  return lines;
}

/** Plain lines for a log: one per service version with traffic. */
export function trafficLines(r: StatsResponse): string[] {
  const out: string[] = [];
  for (const s of [...r.services].sort((a, b) => a.service.localeCompare(b.service))) {
    const versions = s.versions.length > 1 ? [...s.versions].sort((a, b) => a.version.localeCompare(b.version)) : [];
    const figures = (g: { rps: number; successRate: number | null; p50Ms: number | null; p99Ms: number | null }): string =>
      `${rate(g.rps)} req/s, ${percent(g.successRate)} ok, p50 ${millis(g.p50Ms)}, p99 ${millis(g.p99Ms)}`;
    out.push(`traffic: ${s.service}: ${s.instances.healthy}/${s.instances.total} instances (${hostsOf(s.instanceStats)}), ${figures(s)}`);
    for (const v of versions) {
      const mine = s.instanceStats.filter((i) => i.version === v.version);
      out.push(`traffic: ${s.service} ${v.version}: ${v.instances} instances (${hostsOf(mine)}), ${figures(v)}, share ${share(v)}`);
    }
  }
  return out;
}

/** What the view reads; injectable for tests. */
export interface LiveSources {
  stats(): Promise<StatsResponse>;
  /** Every autoscaled group's recent decisions, per job. */
  decisions(): Promise<ScalingEvent[]>;
  load(): Promise<LoadStatus | undefined>;
}

/** The sources over the scheduler API; `loadgenJob` names the load generator's job (the demo's). */
export function apiSources(client: SchedulerClient, opts: { windowSeconds: number; loadgenJob?: string | undefined; maxJobs?: number }): LiveSources {
  let nodes: Map<string, string> | undefined;
  return {
    stats: () => client.call('stats', { query: { window: opts.windowSeconds } }),
    async decisions() {
      const jobs = (await client.call('listJobs')).jobs.filter((j) => !j.stopped).slice(0, opts.maxJobs ?? 20);
      const out: ScalingEvent[] = [];
      for (const j of jobs) {
        const r = await client.call('jobAutoscale', { params: { job: j.name } });
        for (const g of r.groups) {
          // Moves only: a failed read (the first scrape has no rate yet) is `weft autoscale JOB`'s detail.
          for (const d of g.decisions) if (d.applied) out.push({ job: r.job, group: g.group, at: d.at, from: d.from, to: d.to, reason: d.reason, applied: d.applied, failed: d.failed });
        }
      }
      return out;
    },
    async load() {
      if (opts.loadgenJob === undefined) return undefined;
      const s = await client.call('jobStatus', { params: { job: opts.loadgenJob } });
      const a = s.allocations.find((x) => x.status === 'running' && x.ports.length > 0);
      if (a === undefined) return undefined;
      if (nodes === undefined || !nodes.has(a.node)) nodes = new Map((await client.call('listNodes')).nodes.map((n) => [n.name, n.address]));
      const address = nodes.get(a.node);
      if (address === undefined) return undefined;
      const res = await fetch(`http://${address}:${a.ports[0]}/status`, { signal: AbortSignal.timeout(2000) });
      return res.ok ? ((await res.json()) as LoadStatus) : undefined;
    },
  };
}

/** How the view shows itself. */
export interface LiveViewOptions {
  tty: boolean;
  color: boolean;
  write: (text: string) => void;
  /** Terminal size, for clipping the frame (redrawing in place needs it to fit). */
  size?: () => { columns: number; rows: number };
  sources: LiveSources;
  frame: Omit<LiveInput, 'now' | 'stats' | 'statsError' | 'load' | 'scaling' | 'events'>;
  /** Between polls: 2 s on a terminal. */
  intervalMs?: number;
  /** Plain mode: traffic lines this often (decisions at once). */
  plainEveryMs?: number;
  /** weft up's own log file gets the plain lines too. */
  log?: (line: string) => void;
}

/** The running view: polls, draws, and takes weft up's events. */
export class LiveView {
  readonly #o: LiveViewOptions;
  readonly #events: Array<{ at: number; text: string }> = [];
  readonly #seen = new Set<string>();
  readonly #scaling: ScalingEvent[] = [];
  #input: Partial<LiveInput> = {};
  #shownRows = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastPlainTraffic = 0;

  constructor(opts: LiveViewOptions) {
    this.#o = opts;
  }

  /** Starts polling and drawing. */
  start(): void {
    const loop = (): void => {
      if (this.#stopped) return;
      void this.#poll().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs ?? 2000);
      });
    };
    loop();
  }

  /** One of weft up's own lines (a restart, a warning): in the frame on a terminal, else printed. */
  event(text: string): void {
    if (!this.#o.tty || this.#stopped) {
      this.#o.write(`${UP_PREFIX}${text}\n`);
      this.#o.log?.(text);
      return;
    }
    this.#o.log?.(text);
    this.#events.push({ at: Date.now(), text });
    if (this.#events.length > 20) this.#events.shift();
    this.#draw();
  }

  /** Stops polling; the last frame stays on the screen. A poll in flight draws nothing more. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  async #poll(): Promise<void> {
    const [stats, decisions, load] = await Promise.allSettled([this.#o.sources.stats(), this.#o.sources.decisions(), this.#o.sources.load()]);
    if (this.#stopped) return;
    if (stats.status === 'fulfilled') this.#input = { ...this.#input, stats: stats.value, statsError: undefined };
    else this.#input = { ...this.#input, statsError: (stats.reason as Error).message };
    if (load.status === 'fulfilled') this.#input.load = load.value;
    const fresh: ScalingEvent[] = [];
    if (decisions.status === 'fulfilled') {
      for (const d of decisions.value.sort((a, b) => Date.parse(a.at) - Date.parse(b.at))) {
        const key = `${d.job}/${d.group}/${d.at}`;
        if (this.#seen.has(key)) continue;
        this.#seen.add(key);
        this.#scaling.push(d);
        fresh.push(d);
      }
      if (this.#scaling.length > 50) this.#scaling.splice(0, this.#scaling.length - 50);
    }
    if (this.#o.tty) {
      this.#draw();
      return;
    }
    const now = Date.now();
    for (const d of fresh) this.#plain(`scaling: ${d.job}.${d.group} ${d.applied ? `${d.from} -> ${d.to}` : 'failed'}: ${d.reason}`);
    if (now - this.#lastPlainTraffic >= (this.#o.plainEveryMs ?? 10_000)) {
      this.#lastPlainTraffic = now;
      if (this.#input.load !== undefined) this.#plain(`load: ${loadLine(this.#input.load)}`);
      if (this.#input.stats !== undefined) for (const l of trafficLines(this.#input.stats)) this.#plain(l);
      else if (this.#input.statsError !== undefined) this.#plain(`traffic: unavailable: ${this.#input.statsError}`);
    }
  }

  #plain(text: string): void {
    this.#o.write(`${UP_PREFIX}${text}\n`);
    this.#o.log?.(text);
  }

  #draw(): void {
    const frame = renderLive(
      { ...this.#o.frame, now: Date.now(), stats: this.#input.stats, statsError: this.#input.statsError, load: this.#input.load, scaling: this.#scaling, events: this.#events },
      { color: this.#o.color },
    );
    const size = this.#o.size?.() ?? { columns: 120, rows: 40 };
    // Each line must fit on one row, and the frame on the screen, or moving up over it misses.
    const fitted = frame.slice(0, Math.max(1, size.rows - 1)).map((l) => clip(l, size.columns - 1));
    this.#o.write(`${this.#shownRows > 0 ? `\u001b[${this.#shownRows}F\u001b[J` : ''}${fitted.join('\n')}\n`);
    this.#shownRows = fitted.length;
  }
}

const ESC = '\u001b';

/** Cuts `line` to `columns` visible characters, keeping its colour codes (and resetting them). */
export function clip(line: string, columns: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; ) {
    if (line[i] === ESC && line[i + 1] === '[') {
      // An SGR sequence (ESC [ digits ; m) takes no room.
      let end = i + 2;
      while (end < line.length && /[0-9;]/.test(line[end]!)) end++;
      if (line[end] === 'm') {
        out += line.slice(i, end + 1);
        i = end + 1;
        continue;
      }
    }
    const ch = String.fromCodePoint(line.codePointAt(i)!);
    if (visible >= columns) return out.includes('\u001b[') ? `${out}\u001b[0m` : out;
    out += ch;
    visible++;
    i += ch.length;
  }
  return out;
}
