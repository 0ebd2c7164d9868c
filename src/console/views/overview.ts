/** The first page: the topology, then every service's golden signals. */
import { badge, fill, h, link, ms, percent, rps, table } from '../dom.js';
import { topology } from './topology.js';
import type { Context, View } from './view.js';

export class OverviewView implements View {
  readonly el: HTMLElement;
  readonly #topology: HTMLElement;
  readonly #services: HTMLElement;

  constructor() {
    this.#topology = h('div', { class: 'topology-wrap' });
    this.#services = h('div');
    this.el = h(
      'div',
      { class: 'view overview' },
      h('section', { class: 'card' }, h('h2', {}, 'Topology'), h('p', { class: 'hint' }, 'Who calls whom, counted at the callers’ proxies; red dashed: denied by an intention.'), this.#topology),
      h('section', { class: 'card' }, h('h2', {}, 'Services'), this.#services),
    );
  }

  async refresh(ctx: Context): Promise<void> {
    const s = ctx.stats;
    if (s === undefined) {
      fill(this.#topology, h('p', { class: 'empty' }, 'waiting for the first stats…'));
      return;
    }
    fill(this.#topology, s.services.length === 0 && s.edges.length === 0 ? h('p', { class: 'empty' }, 'no service in the mesh yet') : topology(s, ctx.intentions));
    fill(
      this.#services,
      table(
        ['service', 'instances', 'requests', 'success', 'p50', 'p99', 'versions'],
        s.services.map((x) => [
          link(['service', x.service], x.service),
          badge(`${x.instances.healthy}/${x.instances.total} healthy`, x.instances.total > 0 && x.instances.healthy === 0 ? 'bad' : x.instances.healthy < x.instances.total ? 'warn' : 'ok'),
          rps(x.rps),
          percent(x.successRate),
          ms(x.p50Ms),
          ms(x.p99Ms),
          x.versions.map((v) => `${v.version} ${percent(v.share, 0)}`).join(' · '),
        ]),
        'no service registered',
      ),
      h('p', { class: 'hint' }, `Over the last ${s.windowSeconds.toFixed(1)} s; ${s.proxies.scraped} proxies scraped${s.proxies.failed > 0 ? `, ${s.proxies.failed} did not answer` : ''}.`),
    );
  }

  destroy(): void {}
}
