/** A group's autoscaler as the console shows it: the count, each metric against its target, the decisions with their reasons, replicas over time. */
import type { GroupAutoscaleView } from '../../../base/contracts/scheduler-api.js';
import { TimeChart } from '../chart.js';
import { ago, badge, h, table } from '../dom.js';
import type { History } from '../history.js';

/** Charts kept across refreshes, by `job/group`. */
export type ChartCache = Map<string, TimeChart>;

function value(v: number | null, unit: string): string {
  if (v === null) return '–';
  const n = Math.abs(v) >= 100 ? Math.round(v).toString() : (+v.toFixed(2)).toString();
  return unit === '' ? n : `${n} ${unit}`;
}

/** One group's card. */
export function autoscaleCard(job: string, g: GroupAutoscaleView, charts: ChartCache, nowMs: number): HTMLElement {
  const key = `${job}/${g.group}`;
  let chart = charts.get(key);
  if (chart === undefined) {
    chart = new TimeChart(`${key}: replicas`, '');
    charts.set(key, chart);
  }
  const decisions = [...g.decisions].reverse();
  const card = h(
    'section',
    { class: 'card autoscale', 'data-group': key },
    h('h3', {}, `Autoscaling ${key}`, g.service === undefined ? '' : ` (service ${g.service})`),
    h(
      'p',
      { class: 'count' },
      h('strong', {}, `${g.current} replicas`),
      g.desired !== g.current ? ` → ${g.desired} desired` : '',
      ` · min ${g.policy.min}, max ${g.policy.max}, every ${g.policy.intervalMs / 1000}s`,
      g.policy.dryRun ? ' · dry run' : '',
      g.instances === undefined ? '' : ` · ${g.instances.ready}/${g.instances.total} ready`,
    ),
    table(
      ['metric', 'value', 'target', 'wants', ''],
      g.metrics.map((m) => [m.name, value(m.value, m.unit), value(m.target, m.unit), m.wants ?? '–', m.unavailable ?? m.summary]),
      'no metric read yet',
    ),
    h('h4', {}, 'Decisions'),
    decisions.length === 0
      ? h('p', { class: 'empty' }, g.last === undefined ? 'no decision yet' : `no change so far; last: ${g.last.reason}`)
      : h(
          'ol',
          { class: 'decisions' },
          ...decisions.map((d) =>
            h(
              'li',
              { class: 'decision' },
              h('span', { class: 'when' }, ago(d.at, nowMs)),
              ' ',
              h('strong', {}, `${d.from} → ${d.to}`),
              ' ',
              d.failed ? badge('failed', 'bad') : d.dryRun ? badge('dry run', 'info') : d.applied ? badge('applied', 'ok') : badge('not applied', 'warn'),
              d.activation ? badge('activation', 'info') : '',
              ' ',
              h('span', { class: 'reason' }, d.reason),
            ),
          ),
        ),
    chart.el,
  );
  return card;
}

/** Draws the charts of the cards just placed in the page (uPlot needs them attached to measure). */
export function drawAutoscaleCharts(job: string, groups: readonly GroupAutoscaleView[], history: History, charts: ChartCache): void {
  for (const g of groups) charts.get(`${job}/${g.group}`)?.update(['current', 'desired'], history.replicas(job, g.group));
}
