/**
 * A time-series chart: uPlot (a canvas, ~50 KB, made for time series), made
 * once per view and fed new columns on every poll; a change of series
 * (a new version appears) builds it again.
 */
import uPlot from 'uplot';
import { h } from './dom.js';
import type { Columns } from './history.js';

const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];
const HEIGHT = 180;

export class TimeChart {
  readonly el: HTMLElement;
  readonly #plotEl: HTMLElement;
  #plot: uPlot | undefined;
  #names: readonly string[] = [];

  constructor(
    readonly title: string,
    readonly unit: string,
  ) {
    this.#plotEl = h('div', { class: 'plot' });
    this.el = h('figure', { class: 'chart' }, h('figcaption', {}, title), this.#plotEl);
  }

  /** Draws `data` (x, then one column per name). */
  update(names: readonly string[], data: Columns): void {
    const width = Math.max(240, this.el.clientWidth - 16);
    if (this.#plot === undefined || names.join('\u0000') !== this.#names.join('\u0000')) {
      this.#plot?.destroy();
      this.#names = [...names];
      const unit = this.unit;
      this.#plot = new uPlot(
        {
          width,
          height: HEIGHT,
          legend: { show: true, live: false },
          cursor: { drag: { x: false, y: false } },
          scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          axes: [{ space: 70, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600], values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })) }, { size: 56, values: (_u, ticks) => ticks.map((v) => `${+v.toFixed(2)}${unit === '%' ? '%' : ''}`) }],
          series: [{}, ...names.map((label, i) => ({ label: unit === '' ? label : `${label} (${unit})`, stroke: PALETTE[i % PALETTE.length]!, width: 2, spanGaps: false }))],
        },
        data as uPlot.AlignedData,
        this.#plotEl,
      );
      return;
    }
    if (Math.abs(this.#plot.width - width) > 8) this.#plot.setSize({ width, height: HEIGHT });
    this.#plot.setData(data as uPlot.AlignedData);
  }

  destroy(): void {
    this.#plot?.destroy();
    this.#plot = undefined;
  }
}
