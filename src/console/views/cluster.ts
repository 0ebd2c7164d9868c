/** Nodes (capacity, what is allocated, readiness) and intentions. */
import { routes } from '../api.js';
import { badge, fill, h, table } from '../dom.js';
import type { Context, View } from './view.js';

export class NodesView implements View {
  readonly el: HTMLElement;
  readonly #list = h('div');

  constructor() {
    this.el = h('div', { class: 'view nodes' }, h('section', { class: 'card' }, h('h2', {}, 'Nodes'), this.#list));
  }

  async refresh(): Promise<void> {
    const { nodes } = await routes.nodes();
    fill(
      this.#list,
      table(
        ['node', 'address', 'readiness', 'heartbeat', 'cpu (millicores)', 'memory (MiB)', 'allocations', 'drivers'],
        nodes.map((n) => [
          n.name,
          n.address,
          badge(n.drain ? 'draining' : n.readiness, n.readiness === 'ready' && !n.drain ? 'ok' : n.readiness === 'draining' || n.drain ? 'warn' : 'bad'),
          n.heartbeat,
          `${n.allocated.cpu} / ${n.capacity.cpu}`,
          `${n.allocated.memory} / ${n.capacity.memory}`,
          n.allocations,
          n.drivers.join(', '),
        ]),
        'no node: start weft agent on a host',
      ),
    );
  }

  destroy(): void {}
}

export class IntentionsView implements View {
  readonly el: HTMLElement;
  readonly #list = h('div');

  constructor() {
    this.el = h(
      'div',
      { class: 'view intentions' },
      h('section', { class: 'card' }, h('h2', {}, 'Intentions'), h('p', { class: 'hint' }, 'Which service may call which; weft allow / weft deny change them.'), this.#list),
    );
  }

  async refresh(ctx: Context): Promise<void> {
    fill(
      this.#list,
      table(
        ['source', 'destination', 'action', 'description'],
        ctx.intentions.map((i) => [i.source, i.destination, badge(i.action, i.action === 'allow' ? 'ok' : 'bad'), i.description ?? '']),
        'no intention: the default action applies',
      ),
    );
  }

  destroy(): void {}
}
