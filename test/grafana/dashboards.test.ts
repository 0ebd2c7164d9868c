/**
 * The Grafana dashboards (grafana/dashboards/*.json, generated from
 * grafana/src/): fresh, valid for a current Grafana, bound to the datasource
 * variable, every variable they use defined, and every PromQL query parsed by
 * Prometheus' own grammar and naming only metrics and labels weft exports
 * (docs/metrics.md, itself checked against the processes by
 * metrics-doc.test.ts). That the queries return data from real processes is
 * metrics-doc.test.ts's second half.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as sdk from '@grafana/grafana-foundation-sdk/dashboard';
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { DASHBOARDS_DIR, GRAFANA_DIR, staleFiles } from '../../scripts/gen-dashboards.js';
import { DATASOURCE_VARIABLE } from '../../grafana/src/common.js';
import { DASHBOARDS } from '../../grafana/src/index.js';
import { documentedFamilies, familyOfSeries, labelsInPrometheus, PROCESSES, SCRAPE_JOBS, targetLabelsOf } from '../../grafana/src/metrics-table.js';
import { analyse, BUILTIN_DURATIONS, interpolate, variablesIn } from '../../grafana/src/promql.js';

interface Target {
  refId?: string;
  expr?: string;
  legendFormat?: string;
  datasource?: { type?: string; uid?: string };
}
interface PanelJson {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: PanelJson[];
}
interface VariableJson {
  type: string;
  name: string;
  query?: unknown;
  definition?: string;
  datasource?: { type?: string; uid?: string };
}
interface DashboardJson {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: PanelJson[];
  templating?: { list?: VariableJson[] };
}

const DS = { type: 'prometheus', uid: DATASOURCE_VARIABLE };
/** Grafana 12's dashboard schema; the SDK pinned in package.json tracks the newest. */
const MIN_SCHEMA_VERSION = 41;
const PANEL_TYPES = new Set(['row', 'timeseries', 'stat', 'bargauge', 'table']);

const files = readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json'));
const dashboards = files.map((file) => ({ file, json: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as DashboardJson }));
const families = documentedFamilies();

interface ScrapeConfig {
  job_name: string;
  relabel_configs?: Array<{ target_label?: string; action?: string }>;
}
/** The shipped scrape configurations, grafana/prometheus*.yml, by file name. */
const scrapeFiles = readdirSync(GRAFANA_DIR)
  .filter((f) => /^prometheus.*\.ya?ml$/.test(f))
  .map((file) => ({ file, jobs: (parseYaml(readFileSync(join(GRAFANA_DIR, file), 'utf8')) as { scrape_configs?: ScrapeConfig[] }).scrape_configs ?? [] }));

/** Every panel, rows' nested panels included. */
function panelsOf(d: DashboardJson): PanelJson[] {
  return (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query of a dashboard: panel targets, and the selectors inside label_values() of query variables. */
function queriesOf(d: DashboardJson): Array<{ where: string; expr: string; variable?: boolean }> {
  const out: Array<{ where: string; expr: string; variable?: boolean }> = [];
  for (const p of panelsOf(d)) for (const target of p.targets ?? []) out.push({ where: `panel "${p.title}" ${target.refId}`, expr: target.expr ?? '' });
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const m = /^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(String(v.query));
    out.push({ where: `variable ${v.name}`, expr: m === null ? String(v.query) : m[1]!, variable: true });
  }
  return out;
}

t.test('the JSON and the README panel list are what the sources generate (else: npm run gen:dashboards)', async (t) => {
  t.strictSame(staleFiles(), [], 'no generated file is stale');
  t.strictSame(files.sort(), DASHBOARDS.map((d) => d.file).sort(), 'one JSON file per dashboard source, no other');
});

t.test('every dashboard is a dashboard a current Grafana loads', async (t) => {
  const current = sdk.defaultDashboard().schemaVersion;
  t.ok(current >= MIN_SCHEMA_VERSION, `the SDK's schema version ${current} is Grafana 12's or newer`);
  const uids = new Set<string>();
  for (const { file, json: d } of dashboards) {
    t.equal(d.schemaVersion, current, `${file}: schemaVersion ${current}`);
    t.ok(typeof d.uid === 'string' && /^[a-z0-9-]{1,40}$/.test(d.uid), `${file}: a uid Grafana accepts`);
    t.ok(!uids.has(d.uid!), `${file}: its uid is unique`);
    uids.add(d.uid!);
    t.ok(typeof d.title === 'string' && d.title.length > 0, `${file}: a title`);

    const panels = panelsOf(d);
    const ids = panels.map((p) => p.id);
    t.ok(
      ids.every((id) => Number.isInteger(id) && id! > 0),
      `${file}: every panel has a positive integer id`,
    );
    t.equal(new Set(ids).size, ids.length, `${file}: panel ids are unique`);
    for (const p of panels) {
      const where = `${file}: panel ${p.id} "${p.title}"`;
      t.ok(PANEL_TYPES.has(p.type), `${where}: type ${p.type} is a core panel`);
      const g = p.gridPos;
      t.ok(
        g !== undefined && [g.x, g.y, g.w, g.h].every(Number.isInteger) && g.x >= 0 && g.y >= 0 && g.w >= 1 && g.h >= 1 && g.x + g.w <= 24,
        `${where}: gridPos inside the 24-column grid`,
      );
    }
    // No two panels share a grid cell.
    const cells = new Map<string, number>();
    const overlaps: string[] = [];
    for (const p of panels) {
      const g = p.gridPos!;
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          if (cells.has(key)) overlaps.push(`panels ${cells.get(key)} and ${p.id} at ${key}`);
          cells.set(key, p.id!);
        }
      }
    }
    t.strictSame(overlaps, [], `${file}: no two panels overlap`);
  }
});

t.test('every panel and query uses the datasource variable, never a fixed uid', async (t) => {
  for (const { file, json: d } of dashboards) {
    const vars = d.templating?.list ?? [];
    const ds = vars.find((v) => v.name === 'datasource');
    t.match(ds, { type: 'datasource', query: 'prometheus' }, `${file}: a datasource variable over Prometheus datasources`);
    for (const v of vars.filter((v) => v.type === 'query')) t.strictSame(v.datasource, DS, `${file}: variable ${v.name} queries \${datasource}`);
    for (const p of panelsOf(d).filter((p) => p.type !== 'row')) {
      t.strictSame(p.datasource, DS, `${file}: panel "${p.title}" uses \${datasource}`);
      t.ok((p.targets ?? []).length > 0, `${file}: panel "${p.title}" has queries`);
      const refIds = (p.targets ?? []).map((q) => q.refId);
      t.equal(new Set(refIds).size, refIds.length, `${file}: panel "${p.title}" has unique refIds`);
      for (const q of p.targets ?? []) t.strictSame(q.datasource, DS, `${file}: panel "${p.title}" query ${q.refId} uses \${datasource}`);
    }
    // Anywhere in the file: a datasource reference is the variable.
    const fixed: string[] = [];
    const walk = (v: unknown, path: string): void => {
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, `${path}[${i}]`);
      else if (v !== null && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === 'datasource' && x !== null && typeof x === 'object' && (x as { uid?: string }).uid !== DATASOURCE_VARIABLE) fixed.push(`${path}.${k}`);
          walk(x, `${path}.${k}`);
        }
      }
    };
    walk(d, file);
    t.strictSame(fixed, [], `${file}: no datasource reference other than ${DATASOURCE_VARIABLE}`);
  }
});

t.test('every variable a dashboard uses is defined, and every one it defines is used', async (t) => {
  for (const { file, json: d } of dashboards) {
    const defined = new Set((d.templating?.list ?? []).map((v) => v.name));
    const texts: Array<{ where: string; text: string }> = [];
    for (const p of panelsOf(d)) {
      texts.push({ where: `panel "${p.title}" title`, text: p.title ?? '' });
      for (const q of p.targets ?? []) {
        texts.push({ where: `panel "${p.title}" ${q.refId} expr`, text: q.expr ?? '' });
        texts.push({ where: `panel "${p.title}" ${q.refId} legend`, text: (q.legendFormat ?? '').replace(/\{\{[^}]*\}\}/g, '') });
      }
    }
    for (const v of d.templating?.list ?? []) if (v.type === 'query') texts.push({ where: `variable ${v.name}`, text: String(v.query) });
    const used = new Set<string>(['datasource']);
    for (const { where, text } of texts) {
      for (const name of variablesIn(text)) {
        used.add(name);
        t.ok(defined.has(name) || name in BUILTIN_DURATIONS, `${file}: ${where} uses $${name}, which is defined`);
      }
    }
    for (const name of defined) t.ok(used.has(name), `${file}: variable ${name} is used by a query`);
  }
});

t.test('every query parses as PromQL and names only metrics and labels weft exports', async (t) => {
  const jobs = new Set(scrapeFiles.flatMap((f) => f.jobs.map((j) => j.job_name)));
  let checked = 0;
  for (const { file, json: d } of dashboards) {
    for (const { where, expr, variable } of queriesOf(d)) {
      const at = `${file}: ${where}`;
      const facts = analyse(interpolate(expr));
      t.strictSame(facts.errors, [], `${at} parses: ${expr}`);
      t.ok(facts.selectors.length > 0, `${at} reads at least one metric`);
      for (const s of facts.selectors) {
        const found = familyOfSeries(s.metric, families);
        if (!t.ok(found, `${at}: ${s.metric} is a documented weft series (docs/metrics.md)`)) continue;
        const labels = labelsInPrometheus(found!.family, found!.series);
        for (const l of s.labels) t.ok(labels.has(l), `${at}: ${s.metric} has label ${l} in Prometheus`);
        const counterLike = found!.family.type === 'counter' || found!.family.type === 'histogram';
        t.equal(s.rated, s.rated && counterLike, `${at}: ${s.metric} is ${s.rated ? 'a counter, inside rate()/increase()' : 'read as is'}`);
        // label_values() only lists series: there a counter is read as is.
        if (variable !== true && (found!.family.type === 'counter' || found!.series === 'bucket')) t.ok(s.rated, `${at}: counter ${s.metric} is read through rate() or increase()`);
      }
      for (const g of facts.groupings) {
        const available = new Set<string>();
        for (const m of g.metrics) {
          const found = familyOfSeries(m, families);
          if (found !== undefined) for (const l of labelsInPrometheus(found.family, found.series)) available.add(l);
        }
        for (const l of g.labels) t.ok(available.has(l), `${at}: "${g.clause}" groups by ${l}, a label of ${g.metrics.join(', ')}`);
      }
      for (const m of expr.matchAll(/\bjob="([^"]+)"/g)) t.ok(jobs.has(m[1]!), `${at}: scrape job ${m[1]} is one of grafana/prometheus*.yml`);
      // A regex over plain alternatives (`job=~"a|b"`): each one a shipped job.
      for (const m of expr.matchAll(/\bjob=~"([\w|-]+)"/g)) for (const job of m[1]!.split('|')) t.ok(jobs.has(job), `${at}: scrape job ${job} is one of grafana/prometheus*.yml`);
      checked++;
    }
  }
  t.ok(checked >= 60, `${checked} queries checked`);
});

t.test('the target labels the checks assume are the ones grafana/prometheus*.yml add', async (t) => {
  t.ok(scrapeFiles.length >= 2, 'prometheus.yml and prometheus-http-sd.yml');
  for (const { file, jobs } of scrapeFiles) {
    for (const process of PROCESSES) {
      const job = jobs.find((j) => j.job_name === SCRAPE_JOBS[process]);
      if (!t.ok(job, `${file}: a scrape job ${SCRAPE_JOBS[process]} for the ${process}`)) continue;
      const relabelled = (job!.relabel_configs ?? []).filter((r) => (r.action ?? 'replace') === 'replace' && r.target_label !== undefined && !r.target_label.startsWith('__'));
      const added = [...new Set(relabelled.map((r) => r.target_label!))].sort();
      // job and instance are Prometheus' own; the rest come from the relabelling.
      const expected = [...targetLabelsOf(process)].filter((l) => l !== 'job' && l !== 'instance').sort();
      t.strictSame(added, expected, `${file}: ${job!.job_name} adds ${expected.join(', ')} (grafana/src/metrics-table.ts)`);
      t.notOk(
        (job!.relabel_configs ?? []).some((r) => r.action === 'labelmap'),
        `${file}: ${job!.job_name} maps no labels wholesale (the checks could not know them)`,
      );
    }
  }
});

t.test('the checks catch a broken query', async (t) => {
  t.not(analyse('sum(rate(weft_proxy_requests_total{code=~"5.."}[5m])').errors.length, 0, 'an unclosed parenthesis');
  t.not(analyse('rate(weft_proxy_requests_total[$__rate_interval])').errors.length, 0, 'an uninterpolated interval');
  t.equal(familyOfSeries('weft_proxy_request_total', families), undefined, 'a misspelt metric');
  t.equal(familyOfSeries('weft_proxy_request_duration_seconds', families), undefined, 'a histogram read without _bucket/_sum/_count');
  t.equal(familyOfSeries('weft_proxy_retries_total_bucket', families), undefined, 'buckets of a counter');
  const requests = familyOfSeries('weft_proxy_requests_total', families)!;
  t.notOk(labelsInPrometheus(requests.family).has('instance_id'), 'a label the family does not have');
  t.ok(labelsInPrometheus(requests.family).has('exported_instance'), "the family's instance label, renamed by the scrape");
  const capacity = labelsInPrometheus(familyOfSeries('weft_scheduler_node_cpu_capacity_cores', families)!.family);
  t.ok(capacity.has('node') && capacity.has('host') && capacity.has('weft_version'), "a scheduler family: its node label kept (no node target label on schedulers), the scheduler's host and weft_version");
  t.ok(labelsInPrometheus(familyOfSeries('weft_autoscaler_desired_replicas', families)!.family).has('exported_job'), "the autoscaler's job label, renamed by the scrape");
  t.notOk(labelsInPrometheus(familyOfSeries('weft_agent_tasks_registered', families)!.family).has('node'), 'no node label on agents');
  const facts = analyse('sum by (destination, le) (rate(weft_proxy_request_duration_seconds_bucket{host="a"}[5m])) / ignoring (version) group_left sum(weft_proxy_requests_in_flight)');
  t.strictSame(
    facts.selectors.map((s) => [s.metric, s.labels, s.rated]),
    [
      ['weft_proxy_request_duration_seconds_bucket', ['host'], true],
      ['weft_proxy_requests_in_flight', [], false],
    ],
  );
  t.strictSame(
    facts.groupings.map((g) => [g.labels, g.metrics]),
    [
      [['destination', 'le'], ['weft_proxy_request_duration_seconds_bucket']],
      [['version'], ['weft_proxy_request_duration_seconds_bucket', 'weft_proxy_requests_in_flight']],
    ],
  );
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal.
  const grafanaText = 'a{b="$service", c=~"${version:regex}"}[[host]] $__range';
  t.strictSame(variablesIn(grafanaText), ['service', 'version', 'host', '__range']);
});

t.test('the provisioning files load the dashboards folder and a Prometheus datasource', async (t) => {
  const ds = parseYaml(readFileSync(join(GRAFANA_DIR, 'provisioning/datasources/weft.yaml'), 'utf8')) as { apiVersion: number; datasources: Array<Record<string, unknown>> };
  t.equal(ds.apiVersion, 1);
  t.match(ds.datasources, [{ name: String, type: 'prometheus', access: 'proxy', url: /^http/ }]);
  const dash = parseYaml(readFileSync(join(GRAFANA_DIR, 'provisioning/dashboards/weft.yaml'), 'utf8')) as { apiVersion: number; providers: Array<Record<string, unknown>> };
  t.equal(dash.apiVersion, 1);
  t.match(dash.providers, [{ name: 'weft', type: 'file', folder: 'weft', options: { path: String } }]);
});
