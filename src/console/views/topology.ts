/**
 * The service topology as SVG: who calls whom, from the stats' edges (the
 * callers' outbound proxies) and the deny intentions. Callers stand left of
 * what they call (columns by call depth); each edge is labelled with its
 * rate, success and p99, coloured by success, and drawn red and dashed when
 * an intention denies it (refusals counted in the window, or a deny in KV).
 */
import type { EdgeStats, IntentionView, StatsResponse } from '../../../base/contracts/scheduler-api.js';
import { ms, percent, rps, svg } from '../dom.js';

const NODE_W = 170;
const NODE_H = 46;
/** Leaves room between columns for an edge's label (two lines of ~36 characters). */
const COL_W = NODE_W + 250;
const ROW_H = 96;
const PAD = 24;

interface Edge {
  source: string;
  destination: string;
  stats: EdgeStats | undefined;
  /** A deny intention names this pair (exactly or by `*`). */
  denyIntention: boolean;
}

function denies(intentions: readonly IntentionView[], source: string, destination: string): boolean {
  // The most specific intention wins (proxy/inbound/intentions.ts): exact, then * on either side.
  const order = [
    [source, destination],
    ['*', destination],
    [source, '*'],
    ['*', '*'],
  ];
  for (const [s, d] of order) {
    const hit = intentions.find((i) => i.source === s && i.destination === d);
    if (hit !== undefined) return hit.action === 'deny';
  }
  return false;
}

/** The topology of `stats` (+ intentions) as an <svg>. */
export function topology(stats: StatsResponse, intentions: readonly IntentionView[]): SVGSVGElement {
  const edges = new Map<string, Edge>();
  for (const e of stats.edges) edges.set(`${e.source}\u0000${e.destination}`, { source: e.source, destination: e.destination, stats: e, denyIntention: false });
  for (const i of intentions) {
    if (i.action !== 'deny' || i.source === '*' || i.destination === '*') continue;
    const key = `${i.source}\u0000${i.destination}`;
    if (!edges.has(key)) edges.set(key, { source: i.source, destination: i.destination, stats: undefined, denyIntention: true });
  }
  for (const e of edges.values()) e.denyIntention = denies(intentions, e.source, e.destination);

  const names = [...new Set([...stats.services.map((s) => s.service), ...[...edges.values()].flatMap((e) => [e.source, e.destination])])].sort();
  // Columns by call depth: a caller one column left of what it calls (bounded: cycles stop growing).
  const depth = new Map(names.map((n) => [n, 0]));
  for (let round = 0; round < names.length; round++) {
    let moved = false;
    for (const e of edges.values()) {
      if (e.source === e.destination) continue;
      const d = Math.min(depth.get(e.source)! + 1, names.length);
      if (d > depth.get(e.destination)!) {
        depth.set(e.destination, d);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const columns = new Map<number, string[]>();
  for (const n of names) columns.set(depth.get(n)!, [...(columns.get(depth.get(n)!) ?? []), n]);
  const pos = new Map<string, { x: number; y: number }>();
  let maxRows = 1;
  for (const [col, list] of columns) {
    maxRows = Math.max(maxRows, list.length);
    for (const [row, n] of list.entries()) pos.set(n, { x: PAD + col * COL_W, y: PAD + row * ROW_H });
  }
  const width = PAD * 2 + Math.max(0, ...columns.keys()) * COL_W + NODE_W;
  const height = PAD * 2 + (maxRows - 1) * ROW_H + NODE_H;

  const root = svg('svg', { class: 'topology', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': 'service topology' });
  root.append(
    svg(
      'defs',
      {},
      ...['ok', 'warn', 'bad', 'denied', 'idle'].map((kind) =>
        svg('marker', { id: `arrow-${kind}`, viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, svg('path', { d: 'M0,0 L10,5 L0,10 z', class: `arrow ${kind}` })),
      ),
    ),
  );
  const byService = new Map(stats.services.map((s) => [s.service, s]));

  for (const e of [...edges.values()].sort((a, b) => (a.source + a.destination).localeCompare(b.source + b.destination))) {
    const a = pos.get(e.source)!;
    const b = pos.get(e.destination)!;
    const s = e.stats;
    const denied = e.denyIntention || (s?.deniedPerSecond ?? 0) > 0;
    const kind = denied ? 'denied' : s === undefined || s.rps === 0 ? 'idle' : s.successRate !== null && s.successRate < 0.95 ? 'bad' : s.successRate !== null && s.successRate < 0.99 ? 'warn' : 'ok';
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const back = x2 <= x1;
    const d = back
      ? `M${x1},${y1} C${x1 + 60},${y1 - 70} ${x2 - 60},${y2 - 70} ${x2},${y2}`
      : `M${x1},${y1} C${x1 + (x2 - x1) / 2},${y1} ${x1 + (x2 - x1) / 2},${y2} ${x2},${y2}`;
    const mx = (x1 + x2) / 2;
    const my = (y1 + y2) / 2 - (back ? 60 : 0);
    const lines: string[] = [];
    if (s !== undefined) lines.push(rps(s.rps), `${percent(s.successRate)} ok · p99 ${ms(s.p99Ms)}`);
    if (denied) lines.push(s !== undefined && s.deniedPerSecond > 0 ? `denied ${s.deniedPerSecond.toFixed(2)}/s` : 'denied by intention');
    root.append(
      svg(
        'g',
        { class: `edge ${kind}`, 'data-source': e.source, 'data-destination': e.destination },
        svg('title', {}, `${e.source} → ${e.destination}`),
        svg('path', { d, class: 'line', 'marker-end': `url(#arrow-${kind})` }),
        svg('text', { x: mx, y: my - 8 - 15 * (lines.length - 1), 'text-anchor': 'middle', class: 'label' }, ...lines.map((l, i) => svg('tspan', { x: mx, dy: i === 0 ? 0 : 15 }, l))),
      ),
    );
  }

  for (const name of names) {
    const p = pos.get(name)!;
    const s = byService.get(name);
    const sub = s === undefined ? 'caller' : `${rps(s.rps)} · ${s.instances.healthy}/${s.instances.total} healthy`;
    const health = s === undefined ? 'caller' : s.instances.total > 0 && s.instances.healthy === 0 ? 'bad' : s.instances.healthy < s.instances.total ? 'warn' : 'ok';
    const node = svg(
      'g',
      { class: `node ${health}`, 'data-service': name },
      svg('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 8 }),
      svg('text', { x: p.x + 12, y: p.y + 19, class: 'name' }, name.length > 22 ? `${name.slice(0, 21)}…` : name),
      svg('text', { x: p.x + 12, y: p.y + 36, class: 'sub' }, sub),
      svg('title', {}, name),
    );
    if (s === undefined) root.append(node);
    else {
      const a = svg('a', { href: `#/service/${encodeURIComponent(name)}` }, node);
      root.append(a);
    }
  }
  return root;
}
