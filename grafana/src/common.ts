/**
 * What every weft dashboard shares: the variables (datasource, service,
 * version, host), the datasource reference every panel and query carries
 * (`${datasource}`, never a fixed uid), and small panel helpers over the
 * Grafana Foundation SDK's typed builders, so each dashboard file reads as a
 * list of panels and their PromQL.
 *
 * Labels as Prometheus stores them (docs/metrics.md, "In Prometheus"): the
 * proxy's own `instance` label (the instance id) arrives as
 * `exported_instance`, because the scrape's target label `instance` wins;
 * `host` (on proxies, agents and schedulers) and `node` (proxies) are target
 * labels from the scrape config (grafana/prometheus*.yml), as is
 * `weft_version` on all three.
 */
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';

/** Grafana's reference to the `datasource` variable. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal.
export const DATASOURCE_VARIABLE = '${datasource}';

/** Every panel and query points at the datasource variable. */
export const DATASOURCE: common.DataSourceRef = { type: 'prometheus', uid: DATASOURCE_VARIABLE };

/** Tags shared by the dashboards (and their links to one another). */
export const TAGS = ['weft'];

/** One PromQL query of a panel. */
export interface Query {
  readonly expr: string;
  /** Legend template, e.g. `{{destination}}`. */
  readonly legend?: string;
  /** Instant query (tables, bar gauges, stats of "now"). */
  readonly instant?: boolean;
  /** Table format (one column per label). */
  readonly table?: boolean;
}

/** What a panel shows, as the helpers take it. */
export interface PanelSpec {
  readonly title: string;
  /** One sentence: what the panel answers; shown in Grafana's panel info and in grafana/README.md. */
  readonly description: string;
  readonly queries: readonly Query[];
  /** Grafana unit id: reqps, percentunit, s, bytes, short, ... */
  readonly unit?: string;
  /** Width in grid columns (24 = full width); default 12. */
  readonly span?: number;
  /** Height in grid rows; default 8. */
  readonly height?: number;
}

/** The `datasource` variable: any Prometheus datasource of the Grafana the dashboards are imported into. */
export function datasourceVariable(): dashboard.DatasourceVariableBuilder {
  return new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus').regex('');
}

/** A query variable over a label's values; multi-select variables match everything with `.*` when "All" is chosen. */
export function labelVariable(name: string, label: string, query: string, opts: { multi: boolean }): dashboard.QueryVariableBuilder {
  const v = new dashboard.QueryVariableBuilder(name)
    .label(label)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
    .sort(dashboard.VariableSort.AlphabeticalAsc);
  return opts.multi ? v.multi(true).includeAll(true).allValue('.*') : v.multi(false).includeAll(false);
}

/** `service`: destination services seen by any proxy. */
export function serviceVariable(opts: { multi: boolean }): dashboard.QueryVariableBuilder {
  return labelVariable('service', 'Service', 'label_values(weft_proxy_requests_total, destination)', opts);
}

/** `version`: versions of the chosen services (`none`: refused before an instance was chosen). */
export function versionVariable(): dashboard.QueryVariableBuilder {
  return labelVariable('version', 'Version', 'label_values(weft_proxy_requests_total{destination=~"$service"}, version)', { multi: true });
}

/**
 * `host`: hosts running a weft proxy or agent (the scrape's `host` label, Meta
 * weft_host; schedulers carry one too, but they are not what this selects).
 */
export function hostVariable(): dashboard.QueryVariableBuilder {
  return labelVariable('host', 'Host', 'label_values(weft_process_start_time_seconds{job=~"weft-proxy|weft-agent"}, host)', { multi: true });
}

function target(q: Query, refId: string): prometheus.DataqueryBuilder {
  const b = new prometheus.DataqueryBuilder().datasource(DATASOURCE).refId(refId).expr(q.expr);
  if (q.legend !== undefined) b.legendFormat(q.legend);
  if (q.instant === true) b.instant();
  else b.range();
  if (q.table === true) b.format(prometheus.PromQueryFormat.Table);
  return b;
}

/** refIds A, B, C, ... in query order. */
function refId(i: number): string {
  return String.fromCharCode(65 + i);
}

function legend(): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).calcs([]);
}

function tooltip(): common.VizTooltipOptionsBuilder {
  return new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending);
}

/** A time series panel; `stacked` stacks the series (shares of a whole, e.g. status codes). */
export function timeSeries(p: PanelSpec, opts: { stacked?: boolean; min?: number; max?: number } = {}): timeseries.PanelBuilder {
  const b = new timeseries.PanelBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DATASOURCE)
    .span(p.span ?? 12)
    .height(p.height ?? 8)
    .unit(p.unit ?? 'short')
    .legend(legend())
    .tooltip(tooltip())
    .lineWidth(1)
    .fillOpacity(opts.stacked === true ? 30 : 10)
    .showPoints(common.VisibilityMode.Never)
    .spanNulls(false);
  if (opts.stacked === true) b.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
  if (opts.min !== undefined) b.min(opts.min);
  if (opts.max !== undefined) b.max(opts.max);
  for (const [i, q] of p.queries.entries()) b.withTarget(target(q, refId(i)));
  return b;
}

/** A single-value panel (the last value of each series). */
export function singleStat(p: PanelSpec, opts: { decimals?: number } = {}): stat.PanelBuilder {
  const b = new stat.PanelBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DATASOURCE)
    .span(p.span ?? 6)
    .height(p.height ?? 4)
    .unit(p.unit ?? 'short')
    .graphMode(common.BigValueGraphMode.Area)
    .colorMode(common.BigValueColorMode.Value)
    .textMode(common.BigValueTextMode.Auto)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  if (opts.decimals !== undefined) b.decimals(opts.decimals);
  for (const [i, q] of p.queries.entries()) b.withTarget(target(q, refId(i)));
  return b;
}

/** Horizontal bars, one per series: rankings (top callers, soonest certificate expiry). */
export function bars(p: PanelSpec): bargauge.PanelBuilder {
  const b = new bargauge.PanelBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DATASOURCE)
    .span(p.span ?? 12)
    .height(p.height ?? 8)
    .unit(p.unit ?? 'short')
    .orientation(common.VizOrientation.Horizontal)
    .displayMode(common.BarGaugeDisplayMode.Gradient)
    .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  for (const [i, q] of p.queries.entries()) b.withTarget(target({ ...q, instant: q.instant ?? true }, refId(i)));
  return b;
}

/**
 * A table of instant values, one row per series, columns from its labels.
 * Several queries are merged into one row per label set, their values renamed
 * to `columns` (in query order).
 */
export function labelTable(p: PanelSpec, opts: { columns?: readonly string[] } = {}): table.PanelBuilder {
  const b = new table.PanelBuilder()
    .title(p.title)
    .description(p.description)
    .datasource(DATASOURCE)
    .span(p.span ?? 12)
    .height(p.height ?? 8)
    .unit(p.unit ?? 'short')
    .showHeader(true);
  if (p.queries.length > 1) b.withTransformation({ id: 'merge', options: {} });
  // One row per series, labels as columns; the Time column is noise for an instant value.
  const renameByName: Record<string, string> = {};
  for (const [i, name] of (opts.columns ?? []).entries()) renameByName[p.queries.length > 1 ? `Value #${refId(i)}` : 'Value'] = name;
  b.withTransformation({ id: 'organize', options: { excludeByName: { Time: true }, renameByName } });
  for (const [i, q] of p.queries.entries()) b.withTarget(target({ ...q, instant: true, table: true }, refId(i)));
  return b;
}

/** A row header. */
export function row(title: string): dashboard.RowBuilder {
  return new dashboard.RowBuilder(title).collapsed(false);
}

/** The dashboard frame: uid, tags, time range, refresh, shared crosshair, links to the other weft dashboards. */
export function frame(uid: string, title: string, description: string): dashboard.DashboardBuilder {
  return new dashboard.DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(TAGS)
    .editable()
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .timezone('browser')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .link(new dashboard.DashboardLinkBuilder('weft').type(dashboard.DashboardLinkType.Dashboards).tags(TAGS).asDropdown(true).includeVars(true).keepTime(true));
}

/**
 * The dashboard as Grafana stores it: panel ids 1, 2, 3, ... in layout order
 * (the builders leave them unset or 0), nothing else changed.
 */
export function finish(builder: dashboard.DashboardBuilder): dashboard.Dashboard {
  const built = builder.build();
  let id = 0;
  for (const panel of built.panels ?? []) {
    panel.id = ++id;
    for (const inner of (panel as dashboard.RowPanel).panels ?? []) inner.id = ++id;
  }
  return built;
}
