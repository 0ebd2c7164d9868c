/**
 * The shipped Prometheus configuration and rules, checked with Prometheus' own
 * promtool (Debian's 2.42, run as a child process):
 *
 * - `promtool check config` on grafana/prometheus-http-sd.yml, its rule files
 *   and its scheduler token file included (staged as a checkout would have
 *   them), and on the configuration `weft up --prometheus` writes;
 * - grafana/prometheus.yml: Debian's promtool is built without consul_sd and
 *   refuses the file outright, so it is checked as the HTTP-SD file it must
 *   equal once each consul_sd block becomes the weft HTTP SD URL serving the
 *   same targets (with promtool on that), and its consul_sd blocks may use
 *   only keys upstream's consul_sd_config has;
 * - `promtool check rules` on every rules file and `promtool test rules` on
 *   every unit test file in grafana/rules/tests/;
 * - coverage: every recording rule appears in a promql_expr_test, every alert
 *   in an alert_rule_test where it fires and one where it does not; a rule
 *   without them fails here;
 * - every alert has a summary, a description and a runbook_url whose section
 *   exists in docs/runbooks.md; the SLO alerts' `(1 - objective)` agree with
 *   their `objective` label; every metric a rule reads is one weft declares.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import t from 'tap';
import { parse, stringify } from 'yaml';
import { prometheusUpConfig } from '../../src/cli/up/prometheus.js';

const ROOT = join(import.meta.dirname, '../..');
const GRAFANA = join(ROOT, 'grafana');
const RULES_DIR = join(GRAFANA, 'rules');
const TESTS_DIR = join(RULES_DIR, 'tests');

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: Array<{ name: string; interval?: string; rules: Rule[] }>;
}
interface UnitTestFile {
  rule_files: string[];
  tests: Array<{
    promql_expr_test?: Array<{ expr: string }>;
    alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] | null }>;
  }>;
}
interface ScrapeConfig {
  job_name: string;
  consul_sd_configs?: Array<Record<string, unknown>>;
  http_sd_configs?: Array<{ url: string; refresh_interval?: string }>;
  [key: string]: unknown;
}
interface PromConfig {
  rule_files?: string[];
  scrape_configs: ScrapeConfig[];
  [key: string]: unknown;
}

/** Runs promtool; never rejects (a failure is a non-zero code with promtool's output). */
function promtool(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('promtool', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

const ymls = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith('.yml'))
    .sort();

const ruleFiles = ymls(RULES_DIR);
const unitTestFiles = ymls(TESTS_DIR);
const rules = new Map(ruleFiles.map((f) => [f, parse(readFileSync(join(RULES_DIR, f), 'utf8')) as RuleFile]));
const allRules = [...rules.values()].flatMap((f) => f.groups.flatMap((g) => g.rules));
const alerts = allRules.filter((r) => r.alert !== undefined);
const records = allRules.filter((r) => r.record !== undefined);

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-rules-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('the rules directory has rules and unit tests', async (t) => {
  t.ok(ruleFiles.length >= 2, `rules files: ${ruleFiles.join(', ')}`);
  t.ok(unitTestFiles.length >= 1, `unit test files: ${unitTestFiles.join(', ')}`);
  t.ok(records.length > 0 && alerts.length > 0, `${records.length} recording rules, ${alerts.length} alerts`);
});

t.test('promtool check rules passes on every rules file', async (t) => {
  for (const file of ruleFiles) {
    const r = await promtool(['check', 'rules', join(RULES_DIR, file)]);
    t.equal(r.code, 0, `promtool check rules ${file}\n${r.output}`);
    t.match(r.output, /SUCCESS: \d+ rules found/, file);
  }
});

/** A checkout's layout in a temporary directory: grafana/ with its configs and rules, and the token `weft up` writes. */
function stageCheckout(t: { teardown(fn: () => void): void }): string {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'grafana'));
  for (const f of ['prometheus.yml', 'prometheus-http-sd.yml']) cpSync(join(GRAFANA, f), join(dir, 'grafana', f));
  cpSync(RULES_DIR, join(dir, 'grafana', 'rules'), { recursive: true });
  mkdirSync(join(dir, '.weft', 'scheduler'), { recursive: true });
  writeFileSync(join(dir, '.weft', 'scheduler', 'token'), 'test-operator-token-0123456789abcdef', { mode: 0o600 });
  return dir;
}

t.test('promtool check config passes on prometheus-http-sd.yml, its rule files and token file included', async (t) => {
  const dir = stageCheckout(t);
  const r = await promtool(['check', 'config', join(dir, 'grafana', 'prometheus-http-sd.yml')]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, `SUCCESS: ${ruleFiles.length} rule files found`, 'the rule_files glob finds every rules file');
  for (const file of ruleFiles) t.match(r.output, `Checking ${join(dir, 'grafana', 'rules', file)}`, `${file} checked through the config`);
  t.notMatch(r.output, /tests\//, 'the unit tests are not loaded as rules');
});

/** The weft HTTP SD URL serving what a consul_sd block selects (discovery/prometheus-sd.ts: `service` and `tag`, repeatable). */
function httpSdOf(sd: Record<string, unknown>): { url: string; refresh_interval?: string } {
  const query = new URLSearchParams();
  for (const s of (sd['services'] as string[] | undefined) ?? []) query.append('service', s);
  for (const tag of (sd['tags'] as string[] | undefined) ?? []) query.append('tag', tag);
  const out: { url: string; refresh_interval?: string } = { url: `http://${sd['server'] as string}/v1/weft/prometheus-sd?${query.toString()}` };
  if (sd['refresh_interval'] !== undefined) out.refresh_interval = sd['refresh_interval'] as string;
  return out;
}

/** The keys of upstream Prometheus' consul_sd_config (documentation of 2.42) that a shipped block may use. */
const CONSUL_SD_KEYS = new Set([
  'server',
  'token',
  'datacenter',
  'namespace',
  'partition',
  'scheme',
  'services',
  'tags',
  'node_meta',
  'tag_separator',
  'allow_stale',
  'refresh_interval',
  'basic_auth',
  'authorization',
  'oauth2',
  'proxy_url',
  'follow_redirects',
  'enable_http2',
  'tls_config',
]);

t.test('prometheus.yml is prometheus-http-sd.yml with consul_sd: the same jobs, relabelling, rules and auth', async (t) => {
  const consul = parse(readFileSync(join(GRAFANA, 'prometheus.yml'), 'utf8')) as PromConfig;
  const http = parse(readFileSync(join(GRAFANA, 'prometheus-http-sd.yml'), 'utf8')) as PromConfig;
  for (const job of consul.scrape_configs) {
    t.ok(job.consul_sd_configs !== undefined && job.http_sd_configs === undefined, `${job.job_name} uses consul_sd only`);
    for (const sd of job.consul_sd_configs ?? []) {
      const unknown = Object.keys(sd).filter((k) => !CONSUL_SD_KEYS.has(k));
      t.strictSame(unknown, [], `${job.job_name}: consul_sd keys upstream knows`);
    }
  }
  const converted: PromConfig = {
    ...consul,
    scrape_configs: consul.scrape_configs.map(({ consul_sd_configs, ...rest }) => {
      const out: ScrapeConfig = { job_name: rest.job_name };
      for (const [k, v] of Object.entries(rest)) {
        if (k === 'relabel_configs') out['http_sd_configs'] = (consul_sd_configs ?? []).map(httpSdOf);
        out[k] = v;
      }
      return out;
    }),
  };
  t.strictSame(converted, http, 'consul_sd -> weft HTTP SD turns prometheus.yml into prometheus-http-sd.yml');
  t.strictSame(
    http.scrape_configs.map((s) => s.job_name),
    ['weft-proxy', 'weft-agent', 'weft-scheduler', 'weft-services'],
    'the jobs',
  );

  // What promtool can check of prometheus.yml on a build without consul_sd: everything else, in place.
  const dir = stageCheckout(t);
  const file = join(dir, 'grafana', 'prometheus-consul-converted.yml');
  writeFileSync(file, stringify(converted));
  const r = await promtool(['check', 'config', file]);
  t.equal(r.code, 0, r.output);
});

t.test('every weft job relabels host and weft_version; services get service, version, instance_id and host', async (t) => {
  const http = parse(readFileSync(join(GRAFANA, 'prometheus-http-sd.yml'), 'utf8')) as PromConfig;
  const targets = (job: ScrapeConfig): string[] =>
    ((job['relabel_configs'] as Array<{ target_label?: string }> | undefined) ?? []).flatMap((r) => (r.target_label === undefined ? [] : [r.target_label]));
  for (const job of http.scrape_configs) {
    const labels = targets(job);
    if (job.job_name === 'weft-services') {
      for (const l of ['service', 'version', 'instance_id', 'host']) t.ok(labels.includes(l), `${job.job_name} sets ${l}`);
    } else {
      for (const l of ['host', 'weft_version']) t.ok(labels.includes(l), `${job.job_name} sets ${l}`);
      // weft's own families carry `service` and `version` labels: a target label would rename them exported_*.
      for (const l of ['service', 'version']) t.notOk(labels.includes(l), `${job.job_name} leaves ${l} to the metrics`);
    }
  }
  const scheduler = http.scrape_configs.find((s) => s.job_name === 'weft-scheduler');
  t.match(scheduler?.['authorization'], { credentials_file: String }, 'the scheduler job presents the operator token');
});

t.test('the configuration weft up --prometheus writes passes promtool check config', async (t) => {
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'test-operator-token-0123456789abcdef', { mode: 0o600 });
  const text = prometheusUpConfig(readFileSync(join(GRAFANA, 'prometheus-http-sd.yml'), 'utf8'), { consulAddress: 'http://127.0.0.9:18500', rulesDir: RULES_DIR, tokenFile });
  const doc = parse(text) as PromConfig;
  t.strictSame(doc.rule_files, [join(RULES_DIR, '*.yml')], 'rules by absolute path');
  for (const job of doc.scrape_configs) {
    for (const sd of job.http_sd_configs ?? []) t.match(sd.url, /^http:\/\/127\.0\.0\.9:18500\/v1\/weft\/prometheus-sd\?/, `${job.job_name} asks the configured Consul`);
  }
  t.match(doc.scrape_configs.find((s) => s.job_name === 'weft-scheduler')?.['authorization'], { credentials_file: tokenFile });
  const file = join(dir, 'prometheus.yml');
  writeFileSync(file, text);
  const r = await promtool(['check', 'config', file]);
  t.equal(r.code, 0, r.output);
  t.match(r.output, `SUCCESS: ${ruleFiles.length} rule files found`);
});

t.test('promtool test rules passes on every unit test file', async (t) => {
  for (const file of unitTestFiles) {
    const r = await promtool(['test', 'rules', join(TESTS_DIR, file)]);
    t.equal(r.code, 0, `promtool test rules ${file}\n${r.output}`);
  }
});

t.test('every rule has a unit test', async (t) => {
  const exprs: string[] = [];
  const firing = new Set<string>();
  const quiet = new Set<string>();
  const loaded = new Set<string>();
  for (const file of unitTestFiles) {
    const doc = parse(readFileSync(join(TESTS_DIR, file), 'utf8')) as UnitTestFile;
    for (const f of doc.rule_files) loaded.add(f.replace(/^\.\.\//, ''));
    for (const test of doc.tests) {
      for (const e of test.promql_expr_test ?? []) exprs.push(e.expr);
      for (const a of test.alert_rule_test ?? []) ((a.exp_alerts ?? []).length > 0 ? firing : quiet).add(a.alertname);
    }
  }
  for (const file of ruleFiles) t.ok(loaded.has(file), `${file} is loaded by a unit test file`);
  const mentions = (expr: string, name: string): boolean => new RegExp(`(^|[^a-zA-Z0-9_:])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^a-zA-Z0-9_:])`).test(expr);
  for (const name of new Set(records.map((r) => r.record!))) {
    t.ok(
      exprs.some((e) => mentions(e, name)),
      `recording rule ${name} has a promql_expr_test`,
    );
  }
  for (const a of alerts) {
    t.ok(firing.has(a.alert!), `alert ${a.alert} has an alert_rule_test where it fires`);
    t.ok(quiet.has(a.alert!), `alert ${a.alert} has an alert_rule_test where it does not fire`);
  }
});

/** GitHub's anchor of a Markdown heading. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 _-]/g, '')
    .replace(/ /g, '-');
}

t.test('every alert has a summary, a description and a runbook section', async (t) => {
  const runbooks = readFileSync(join(ROOT, 'docs', 'runbooks.md'), 'utf8');
  const anchors = new Set([...runbooks.matchAll(/^#{2,3} (.+)$/gm)].map((m) => anchor(m[1]!)));
  const names = alerts.map((a) => a.alert!);
  t.equal(new Set(names).size, names.length, 'alert names are unique');
  for (const a of alerts) {
    const ann = a.annotations ?? {};
    t.ok((ann['summary'] ?? '').length > 0, `${a.alert}: summary`);
    t.ok((ann['description'] ?? '').length > 0, `${a.alert}: description`);
    // What it is about: a label naming the service, job, host, or the weft component it concerns.
    t.match(ann['description'], /\$labels\.(destination|service|exported_job|host|job)|weft-scheduler|weft-proxy/, `${a.alert}: the description names what it is about`);
    t.equal(ann['runbook_url'], `docs/runbooks.md#${anchor(a.alert!)}`, `${a.alert}: runbook_url`);
    t.ok(anchors.has(anchor(a.alert!)), `${a.alert}: docs/runbooks.md has its section`);
    t.ok(['page', 'warning'].includes(a.labels?.['severity'] ?? ''), `${a.alert}: severity`);
  }
  const docs = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
  for (const name of names) t.match(docs, name, `${name} is in docs/observability.md`);
});

t.test("the SLO alerts' error budgets agree with their objective", async (t) => {
  const slo = alerts.filter((a) => a.labels?.['objective'] !== undefined);
  t.strictSame(slo.map((a) => a.alert).sort(), ['WeftServiceErrorBudgetBurn', 'WeftServiceLatencyBudgetBurn']);
  const docs = readFileSync(join(ROOT, 'docs', 'observability.md'), 'utf8');
  for (const a of slo) {
    const objective = a.labels!['objective']!;
    const budgets = [...a.expr.matchAll(/\(1 - ([0-9.]+)\)/g)].map((m) => m[1]);
    t.equal(budgets.length, 4, `${a.alert}: four windows`);
    t.ok(
      budgets.every((b) => b === objective),
      `${a.alert}: every (1 - x) is the objective ${objective}`,
    );
    t.match(docs, `${Number(objective) * 100}%`, `${a.alert}: the objective is documented`);
  }
});

/** Metric names a PromQL expression reads (vector selectors' names). */
function metricsIn(expr: string): string[] {
  const out: string[] = [];
  const tree = parser.parse(expr);
  const cursor = tree.cursor();
  do {
    if (cursor.type.isError) throw new Error(`does not parse near ${JSON.stringify(expr.slice(cursor.from, cursor.from + 20))}: ${expr}`);
    if (cursor.name === 'VectorSelector') {
      const node = cursor.node.getChild('Identifier');
      if (node !== null) out.push(expr.slice(node.from, node.to));
    }
  } while (cursor.next());
  return out;
}

/** Every `name: 'weft_...'` the sources declare (prom-client metrics and ScrapedHistogram). */
function declaredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.endsWith('.ts')) for (const m of readFileSync(join(dir, e.name), 'utf8').matchAll(/name: '(weft_[a-z0-9_]+)'/g)) names.add(m[1]!);
    }
  };
  for (const dir of ['base', 'proxy', 'scheduler', 'agent', 'certs', 'discovery', 'src']) walk(join(ROOT, dir));
  return names;
}

t.test('every metric a rule reads is one weft declares, a recorded series, or Prometheus own', async (t) => {
  const declared = declaredMetrics();
  const recorded = new Set(records.map((r) => r.record!));
  const known = (name: string): boolean =>
    declared.has(name) || declared.has(name.replace(/_(bucket|count|sum)$/, '')) || recorded.has(name) || name === 'up' || name === 'ALERTS';
  for (const r of allRules) {
    const read = metricsIn(r.expr);
    t.ok(read.length > 0, `${r.record ?? r.alert} reads something`);
    for (const name of read) t.ok(known(name), `${r.record ?? r.alert} reads ${name}`);
  }
});
