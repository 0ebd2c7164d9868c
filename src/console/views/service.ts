/**
 * One service: its instances by version and host with health, each
 * version's traffic against the split in force, latency and errors over
 * time, who calls it and whom it calls, and the autoscaler of each job
 * group that runs it.
 */
import type { GroupAutoscaleView } from '../../../base/contracts/scheduler-api.js';
import { routes } from '../api.js';
import { TimeChart } from '../chart.js';
import { badge, fill, h, link, ms, percent, rps, table } from '../dom.js';
import { autoscaleCard, type ChartCache, drawAutoscaleCharts } from './autoscale.js';
import type { Context, View } from './view.js';

/** Jobs asked for their autoscaler per refresh. */
const MAX_JOBS = 20;

export class ServiceView implements View {
  readonly el: HTMLElement;
  readonly #summary = h('div', { class: 'cards' });
  readonly #versions = h('div');
  readonly #instances = h('div');
  readonly #edges = h('div');
  readonly #autoscale = h('div');
  readonly #rates = new TimeChart('Requests per second by version', 'rps');
  readonly #latency = new TimeChart('Latency', 'ms');
  readonly #errors = new TimeChart('Errors (5xx)', '%');
  readonly #charts: ChartCache = new Map();

  constructor(readonly service: string) {
    this.el = h(
      'div',
      { class: 'view service' },
      h('h2', {}, h('a', { href: '#/' }, 'Services'), ' / ', service),
      this.#summary,
      h('section', { class: 'card' }, h('h3', {}, 'Versions'), this.#versions),
      h('section', { class: 'card charts' }, this.#rates.el, this.#latency.el, this.#errors.el),
      h('section', { class: 'card' }, h('h3', {}, 'Instances'), this.#instances),
      h('section', { class: 'card' }, h('h3', {}, 'Calls'), this.#edges),
      this.#autoscale,
    );
  }

  async refresh(ctx: Context): Promise<void> {
    const groups: Array<{ job: string; group: GroupAutoscaleView }> = [];
    const jobs = (await routes.jobs()).jobs.filter((j) => !j.stopped).slice(0, MAX_JOBS);
    const views = await Promise.all(jobs.map((j) => routes.autoscale(j.name)));
    for (const v of views) for (const g of v.groups) if (g.service === this.service) groups.push({ job: v.job, group: g });
    for (const { job, group } of groups) ctx.history.addAutoscale(job, group, ctx.nowMs);

    const s = ctx.stats?.services.find((x) => x.service === this.service);
    if (s === undefined) {
      fill(this.#summary, h('p', { class: 'empty' }, ctx.stats === undefined ? 'waiting for the first stats…' : `no service ${this.service} in the mesh now`));
    } else {
      fill(
        this.#summary,
        card('instances', `${s.instances.healthy}/${s.instances.total}`, 'healthy'),
        card('requests', rps(s.rps), `over ${ctx.stats!.windowSeconds.toFixed(1)} s`),
        card('success', percent(s.successRate), 'answers below 500'),
        card('latency', `${ms(s.p50Ms)} / ${ms(s.p99Ms)}`, 'p50 / p99'),
      );
      fill(
        this.#versions,
        table(
          ['version', 'instances', 'requests', 'traffic share', 'split', 'success', 'p99'],
          s.versions.map((v) => [v.version, v.instances, rps(v.rps), shareBar(v.share, v.splitWeight), v.splitWeight === null ? 'no split' : percent(v.splitWeight, 0), percent(v.successRate), ms(v.p99Ms)]),
        ),
      );
      fill(
        this.#instances,
        table(
          ['instance', 'version', 'host', 'health', 'requests', 'success', 'p50', 'p99'],
          s.instanceStats.map((i) => [i.id, i.version, i.host, i.healthy ? badge('passing', 'ok') : badge('failing', 'bad'), rps(i.rps), percent(i.successRate), ms(i.p50Ms), ms(i.p99Ms)]),
          'no instance registered',
        ),
      );
    }
    const edges = (ctx.stats?.edges ?? []).filter((e) => e.source === this.service || e.destination === this.service);
    fill(
      this.#edges,
      table(
        ['caller', 'callee', 'requests', 'success', 'p99', 'denied'],
        edges.map((e) => [
          e.source === this.service ? e.source : link(['service', e.source], e.source),
          e.destination === this.service ? e.destination : link(['service', e.destination], e.destination),
          rps(e.rps),
          percent(e.successRate),
          ms(e.p99Ms),
          e.deniedPerSecond > 0 ? badge(`${e.deniedPerSecond.toFixed(2)}/s`, 'bad') : '–',
        ]),
        'no calls seen',
      ),
    );
    fill(this.#autoscale, ...groups.map(({ job, group }) => autoscaleCard(job, group, this.#charts, ctx.nowMs)));
    for (const { job, group } of groups) drawAutoscaleCharts(job, [group], ctx.history, this.#charts);
    const rates = ctx.history.versionRates(this.service);
    this.#rates.update(rates.names, rates.data);
    this.#latency.update(['p50', 'p99'], ctx.history.latency(this.service));
    this.#errors.update(['errors'], ctx.history.errors(this.service));
  }

  destroy(): void {
    for (const c of [this.#rates, this.#latency, this.#errors, ...this.#charts.values()]) c.destroy();
  }
}

function card(title: string, value: string, note: string): HTMLElement {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-title' }, title), h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-note' }, note));
}

/** The version's share of traffic as a bar, with the split's weight marked on it. */
function shareBar(share: number | null, split: number | null): HTMLElement {
  const bar = h('div', { class: 'bar', title: `share ${percent(share)}${split === null ? '' : `, split ${percent(split)}`}` });
  const fillEl = h('div', { class: 'bar-fill' });
  fillEl.style.width = `${Math.round((share ?? 0) * 100)}%`;
  bar.append(fillEl);
  if (split !== null) {
    const mark = h('div', { class: 'bar-split' });
    mark.style.left = `${Math.round(split * 100)}%`;
    bar.append(mark);
  }
  return h('span', { class: 'share' }, bar, ` ${percent(share)}`);
}
