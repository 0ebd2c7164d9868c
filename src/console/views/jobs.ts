/** Jobs: the list, and one job's groups, allocations, events and autoscaler. */
import { routes } from '../api.js';
import { ago, badge, fill, h, link, table } from '../dom.js';
import { autoscaleCard, type ChartCache, drawAutoscaleCharts } from './autoscale.js';
import type { Context, View } from './view.js';

/** Events shown, newest first (the job keeps at most 100). */
const MAX_EVENTS = 50;

export class JobListView implements View {
  readonly el: HTMLElement;
  readonly #list = h('div');

  constructor() {
    this.el = h('div', { class: 'view jobs' }, h('section', { class: 'card' }, h('h2', {}, 'Jobs'), this.#list));
  }

  async refresh(ctx: Context): Promise<void> {
    const { jobs } = await routes.jobs();
    fill(
      this.#list,
      table(
        ['job', 'version', 'desired', 'running', 'healthy', 'state', 'submitted'],
        jobs.map((j) => [
          link(['jobs', j.name], j.name),
          j.version,
          j.desired,
          j.running,
          j.healthy,
          j.stopped ? badge('stopped', 'info') : j.healthy < j.desired ? badge('degraded', 'warn') : badge('healthy', 'ok'),
          ago(j.submittedAt, ctx.nowMs),
        ]),
        'no job submitted: weft deploy <file>',
      ),
    );
  }

  destroy(): void {}
}

export class JobView implements View {
  readonly el: HTMLElement;
  readonly #groups = h('div');
  readonly #allocs = h('div');
  readonly #events = h('div');
  readonly #autoscale = h('div');
  readonly #charts: ChartCache = new Map();

  constructor(readonly job: string) {
    this.el = h(
      'div',
      { class: 'view job' },
      h('h2', {}, h('a', { href: '#/jobs' }, 'Jobs'), ' / ', job),
      h('section', { class: 'card' }, h('h3', {}, 'Groups'), this.#groups),
      this.#autoscale,
      h('section', { class: 'card' }, h('h3', {}, 'Allocations'), this.#allocs),
      h('section', { class: 'card' }, h('h3', {}, 'Events'), this.#events),
    );
  }

  async refresh(ctx: Context): Promise<void> {
    const [status, autoscale] = await Promise.all([routes.jobStatus(this.job), routes.autoscale(this.job)]);
    for (const g of autoscale.groups) ctx.history.addAutoscale(this.job, g, ctx.nowMs);
    fill(
      this.#groups,
      h('p', {}, `version ${status.version}`, status.stopped ? ' · stopped' : '', status.deployment === undefined ? '' : ` · deployment v${status.deployment.version} ${status.deployment.status}`),
      table(
        ['group', 'desired', 'placed', 'running', 'healthy', 'problem'],
        status.groups.map((g) => [g.group, g.desired, g.placed, g.running, g.healthy, g.failure?.message ?? '']),
      ),
    );
    fill(
      this.#allocs,
      table(
        ['allocation', 'group', 'node', 'version', 'status', 'health', 'tasks', 'created'],
        status.allocations.map((a) => [
          a.id,
          a.group,
          a.node,
          a.version,
          a.status,
          a.healthy === undefined ? '–' : a.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad'),
          a.tasks.map((t) => `${t.task} ${t.state}${t.restarts > 0 ? ` (${t.restarts} restarts)` : ''}${t.message === undefined ? '' : `: ${t.message}`}`).join('; '),
          ago(a.createdAt, ctx.nowMs),
        ]),
        'no allocation',
      ),
    );
    fill(
      this.#events,
      h(
        'ol',
        { class: 'events' },
        ...[...status.events]
          .reverse()
          .slice(0, MAX_EVENTS)
          .map((e) => h('li', {}, h('span', { class: 'when' }, ago(e.at, ctx.nowMs)), ' ', badge(e.type, e.type.includes('fail') || e.type.includes('lost') ? 'bad' : 'info'), ' ', e.message)),
      ),
    );
    fill(this.#autoscale, ...autoscale.groups.map((g) => autoscaleCard(this.job, g, this.#charts, ctx.nowMs)));
    drawAutoscaleCharts(this.job, autoscale.groups, ctx.history, this.#charts);
  }

  destroy(): void {
    for (const c of this.#charts.values()) c.destroy();
  }
}
