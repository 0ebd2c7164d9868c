/**
 * docs/metrics.md's table of metric families, read back as data: what the
 * dashboards may query (test/grafana/dashboards.test.ts) and what the
 * processes must export (test/grafana/metrics-doc.test.ts). Also the labels
 * each family carries once Prometheus has scraped it with the shipped scrape
 * configuration (grafana/prometheus*.yml).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** docs/metrics.md */
export const METRICS_DOC = join(import.meta.dirname, '..', '..', 'docs', 'metrics.md');

/** The weft processes that serve `/metrics`. */
export const PROCESSES = ['proxy', 'agent', 'scheduler'] as const;
export type Process = (typeof PROCESSES)[number];

/** One row of the table. */
export interface DocumentedFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** Label names as the process exports them (without `le` / `quantile`). */
  readonly labels: readonly string[];
  /** `proxy`, `agent`, `scheduler`: the processes that serve it. */
  readonly processes: readonly Process[];
  readonly meaning: string;
}

const ROW = /^\|\s*`(weft_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$/;

/** The families of the table in `markdown` (rows whose first cell is a `weft_` name), in table order. */
export function parseMetricsTable(markdown: string): DocumentedFamily[] {
  const out: DocumentedFamily[] = [];
  for (const line of markdown.split('\n')) {
    const m = ROW.exec(line);
    if (m === null) continue;
    const type = m[2]!;
    if (type !== 'counter' && type !== 'gauge' && type !== 'histogram' && type !== 'summary') throw new Error(`docs/metrics.md: ${m[1]} has an unknown type ${type}`);
    const labels = [...m[3]!.matchAll(/`([a-zA-Z_][a-zA-Z0-9_]*)`/g)].map((l) => l[1]!);
    const processes = m[4]!.split(',').map((p) => p.trim()).filter((p) => p !== '');
    for (const p of processes) if (!(PROCESSES as readonly string[]).includes(p)) throw new Error(`docs/metrics.md: ${m[1]} names an unknown process ${p}`);
    out.push({ name: m[1]!, type, labels, processes: processes as Process[], meaning: m[5]!.trim() });
  }
  return out;
}

/** The table of docs/metrics.md. */
export function documentedFamilies(): DocumentedFamily[] {
  return parseMetricsTable(readFileSync(METRICS_DOC, 'utf8'));
}

/**
 * Target labels every series of a weft process gets: Prometheus' own `job`
 * and `instance`, and `weft_version` (Meta weft_version), which every weft
 * job of grafana/prometheus*.yml relabels.
 */
export const TARGET_LABELS = ['job', 'instance', 'weft_version'] as const;

/** Each process's scrape job in grafana/prometheus*.yml. */
export const SCRAPE_JOBS: Readonly<Record<Process, string>> = { proxy: 'weft-proxy', agent: 'weft-agent', scheduler: 'weft-scheduler' };

/**
 * The target labels each process's scrape job adds beside TARGET_LABELS
 * (grafana/prometheus*.yml relabelling; test/grafana/dashboards.test.ts holds
 * the files to these): `host` (Meta weft_host) on all three, `node` (the
 * Consul node) on proxies.
 */
export const PROCESS_TARGET_LABELS: Readonly<Record<Process, readonly string[]>> = {
  proxy: ['host', 'node'],
  agent: ['host'],
  scheduler: ['host'],
};

/** The target labels a series of `process` carries in Prometheus. */
export function targetLabelsOf(process: Process): Set<string> {
  return new Set<string>([...TARGET_LABELS, ...PROCESS_TARGET_LABELS[process]]);
}

/**
 * The label names a series of `family` has in Prometheus: its own (renamed
 * `exported_<name>` where a target label takes the name: honor_labels is
 * false), the target labels, and `le` on histogram buckets.
 */
export function labelsInPrometheus(family: DocumentedFamily, series: 'bucket' | 'plain' = 'plain'): Set<string> {
  // A family several processes serve (the process metrics) may carry any of their target labels.
  const target = new Set<string>(family.processes.flatMap((p) => [...targetLabelsOf(p)]));
  const out = new Set<string>(target);
  for (const label of family.labels) out.add(target.has(label) ? `exported_${label}` : label);
  if (series === 'bucket') out.add('le');
  return out;
}

/**
 * The family a series name belongs to (`x_bucket`, `x_sum`, `x_count` of a
 * histogram `x`) and which kind of series it is, or undefined when no
 * documented family has it.
 */
export function familyOfSeries(name: string, families: readonly DocumentedFamily[]): { family: DocumentedFamily; series: 'bucket' | 'plain' } | undefined {
  const exact = families.find((f) => f.name === name);
  if (exact !== undefined && exact.type !== 'histogram' && exact.type !== 'summary') return { family: exact, series: 'plain' };
  for (const suffix of ['_bucket', '_sum', '_count'] as const) {
    if (!name.endsWith(suffix)) continue;
    const base = families.find((f) => f.name === name.slice(0, -suffix.length));
    if (base === undefined || base.type === 'counter' || base.type === 'gauge') continue;
    if (suffix === '_bucket' && base.type !== 'histogram') continue;
    return { family: base, series: suffix === '_bucket' ? 'bucket' : 'plain' };
  }
  return undefined;
}
