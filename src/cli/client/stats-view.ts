/**
 * Golden signals in the terminal, from `GET /v1/stats` (StatsResponse in
 * base/contracts/scheduler-api.ts): one row per service, and on request per
 * version (with its share of the traffic against the split in force) and per
 * instance (with its host). Shared by `weft stat`, `weft top` and `weft up`'s
 * live view; pure functions of the answer, so tests compare exact text.
 */
import type { EdgeStats, GoldenSignals, ServiceStats, StatsResponse, VersionStats } from '../../../base/contracts/scheduler-api.js';
import { type Column, type Tone, renderTable } from './table.js';

/** What to show. */
export interface StatsViewOptions {
  color: boolean;
  /** A row per version under each service. */
  versions?: boolean;
  /** A row per instance under each service (or version). */
  instances?: boolean;
}

/** One row of the table: a service, one of its versions, or one of its instances. */
interface Row extends GoldenSignals {
  service: string;
  version: string;
  instances: string;
  host: string;
  share: string;
  healthy?: boolean;
}

/** `12.3`, `0.25`, `1,204` requests/s. */
export function rate(v: number): string {
  if (v === 0) return '0';
  if (v < 1) return v.toFixed(2);
  if (v < 100) return v.toFixed(1);
  return Math.round(v).toLocaleString('en-US');
}

/** `100.00%`, `99.50%`, `-` without requests. */
export function percent(v: number | null): string {
  if (v === null) return '-';
  return `${(Math.floor(v * 10_000) / 100).toFixed(2)}%`;
}

/** `0.8 ms`, `12 ms`, `1.24 s`, `-` without a value. */
export function millis(v: number | null): string {
  if (v === null) return '-';
  if (v < 10) return `${(Math.round(v * 10) / 10).toFixed(1)} ms`;
  if (v < 1000) return `${Math.round(v)} ms`;
  return `${(v / 1000).toFixed(2)} s`;
}

/** A version's share of the traffic against its split weight: `91% of 90%`, `9%` without a split. */
export function share(v: VersionStats): string {
  const s = v.share === null ? '-' : `${Math.round(v.share * 100)}%`;
  return v.splitWeight === null ? s : `${s} (split ${Math.round(v.splitWeight * 100)}%)`;
}

/** `vm-1 x2, vm-2`: instances per host, for one version or service. */
export function hostsOf(instances: ReadonlyArray<{ host: string }>): string {
  const counts = new Map<string, number>();
  for (const i of instances) counts.set(i.host, (counts.get(i.host) ?? 0) + 1);
  return [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([h, n]) => (n === 1 ? h : `${h} x${n}`))
    .join(', ');
}

function successTone(v: number | null): Tone | undefined {
  if (v === null) return 'dim';
  if (v < 0.95) return 'red';
  if (v < 0.99) return 'yellow';
  return undefined;
}

/** The rows of one service: itself, then its versions and instances when asked. */
function serviceRows(s: ServiceStats, o: StatsViewOptions): Row[] {
  const versions = [...s.versions].sort((a, b) => a.version.localeCompare(b.version));
  const showVersions = o.versions === true && versions.length > 1;
  const rows: Row[] = [
    {
      ...signals(s),
      service: s.service,
      version: s.versions.length === 1 ? s.versions[0]!.version : '',
      instances: `${s.instances.healthy}/${s.instances.total}`,
      // With a row per version below, the hosts are on those.
      host: showVersions ? '' : hostsOf(s.instanceStats),
      share: '',
    },
  ];
  if (showVersions) {
    for (const v of versions) {
      const mine = s.instanceStats.filter((i) => i.version === v.version);
      rows.push({ ...signals(v), service: '', version: v.version, instances: String(v.instances), host: hostsOf(mine), share: share(v) });
      if (o.instances) rows.push(...instanceRows(mine));
    }
  } else if (o.instances) {
    rows.push(...instanceRows(s.instanceStats));
  }
  return rows;
}

function instanceRows(list: ServiceStats['instanceStats']): Row[] {
  return [...list]
    .sort((a, b) => a.host.localeCompare(b.host) || a.id.localeCompare(b.id))
    .map((i) => ({ ...signals(i), service: '', version: `  ${i.id}`, instances: i.healthy ? 'healthy' : 'unhealthy', host: i.host, share: '', healthy: i.healthy }));
}

function signals(g: GoldenSignals): GoldenSignals {
  return { rps: g.rps, successRate: g.successRate, p50Ms: g.p50Ms, p99Ms: g.p99Ms };
}

/** The services table (`weft stat`). */
export function renderServices(r: StatsResponse, o: StatsViewOptions): string {
  if (r.services.length === 0) return 'no services with instances yet (deploy one: `weft deploy examples/hello.yaml`)';
  const services = [...r.services].sort((a, b) => a.service.localeCompare(b.service));
  const rows = services.flatMap((s) => serviceRows(s, o));
  const columns: Array<Column<Row>> = [
    { header: 'SERVICE', cell: (x) => x.service },
    { header: o.instances ? 'VERSION/INSTANCE' : 'VERSION', cell: (x) => x.version },
    { header: 'INSTANCES', cell: (x) => x.instances, tone: (x) => (x.healthy === false ? 'red' : undefined) },
    { header: 'HOSTS', cell: (x) => x.host },
    { header: 'RPS', cell: (x) => rate(x.rps), align: 'right' },
    { header: 'SUCCESS', cell: (x) => percent(x.successRate), align: 'right', tone: (x) => successTone(x.successRate) },
    { header: 'P50', cell: (x) => millis(x.p50Ms), align: 'right' },
    { header: 'P99', cell: (x) => millis(x.p99Ms), align: 'right' },
  ];
  if (o.versions) columns.push({ header: 'SHARE', cell: (x) => x.share });
  return trimLines(renderTable(rows, columns, { color: o.color, empty: '' }));
}

/** Who calls whom (`weft top`, the live view): caller -> destination with its signals and denials. */
export function renderEdges(edges: readonly EdgeStats[], o: { color: boolean }): string {
  if (edges.length === 0) return '';
  const sorted = [...edges].sort((a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination));
  return renderTable(
    sorted,
    [
      { header: 'CALLER', cell: (e) => e.source },
      { header: 'CALLS', cell: (e) => e.destination },
      { header: 'RPS', cell: (e) => rate(e.rps), align: 'right' },
      { header: 'SUCCESS', cell: (e) => percent(e.successRate), align: 'right', tone: (e) => successTone(e.successRate) },
      { header: 'P50', cell: (e) => millis(e.p50Ms), align: 'right' },
      { header: 'P99', cell: (e) => millis(e.p99Ms), align: 'right' },
      { header: 'DENIED/S', cell: (e) => (e.deniedPerSecond === 0 ? '' : rate(e.deniedPerSecond)), align: 'right', tone: (e) => (e.deniedPerSecond > 0 ? 'red' : undefined) },
    ],
    { color: o.color, empty: '' },
  ).replace(/ +$/gm, '');
}

function trimLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** The line above the tables: the window and the scrape behind the figures. */
export function statsHeader(r: StatsResponse, now: number = Date.now()): string {
  const age = Math.max(0, Math.round((now - Date.parse(r.at)) / 1000));
  const failed = r.proxies.failed > 0 ? `, ${r.proxies.failed} did not answer` : '';
  return `over the last ${Math.round(r.windowSeconds)}s from ${r.proxies.scraped} ${r.proxies.scraped === 1 ? 'proxy' : 'proxies'}${failed}; scraped ${age}s ago`;
}
