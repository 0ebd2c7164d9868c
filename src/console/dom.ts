/**
 * The console's only way to build the page: elements from a tag, attributes
 * and children, where every string child becomes a text node. No HTML is
 * ever parsed from data (no innerHTML anywhere), so a service name or an
 * event text like `<img onerror=...>` shows as the characters it is.
 */

/** What `h` accepts as a child: nodes, text (numbers too), or nothing. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attribute values; `false`/`undefined` leave the attribute out. */
export type Attrs = Record<string, string | number | boolean | undefined>;

function append(parent: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

function setAttrs(el: Element, attrs: Attrs | undefined): void {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === false) continue;
    // Event handlers come only from code (on()), never from attributes.
    if (k.toLowerCase().startsWith('on')) throw new Error(`refusing attribute ${k}`);
    el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** An HTML element. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element. */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  const frag = document.createDocumentFragment();
  append(frag, children);
  el.replaceChildren(frag);
}

/** A link inside the console (hash routes; each segment encoded). */
export function link(segments: readonly string[], ...children: Child[]): HTMLAnchorElement {
  return h('a', { href: `#/${segments.map(encodeURIComponent).join('/')}` }, ...children);
}

/** A table with a header row; each row is a list of cells. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly Child[]>, empty = 'none'): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, ...head.map((c) => h('th', {}, c)))),
    h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))),
  );
}

/** A requests/s figure: `12.3 rps`. */
export function rps(n: number): string {
  return `${n >= 100 ? Math.round(n) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} rps`;
}

/** A 0..1 share as a percentage, `–` for null. */
export function percent(n: number | null, digits = 1): string {
  return n === null ? '–' : `${(n * 100).toFixed(digits)}%`;
}

/** Milliseconds, `–` for null. */
export function ms(n: number | null): string {
  if (n === null) return '–';
  return n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`;
}

/** How long ago an ISO time was, from `nowMs`: `12s ago`, `3m ago`. */
export function ago(iso: string, nowMs: number): string {
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return iso;
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

/** A health badge. */
export function badge(text: string, kind: 'ok' | 'warn' | 'bad' | 'info'): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}
