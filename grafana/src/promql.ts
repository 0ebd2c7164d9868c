/**
 * What a dashboard query says, read with Prometheus' own PromQL grammar
 * (@prometheus-io/lezer-promql, the parser of Prometheus' web UI): syntax
 * errors, the metric each selector names with the labels it matches on, the
 * labels each `by` / `without` / `on` / `ignoring` names with the metrics in
 * its scope, and the Grafana variables it uses.
 */
import { parser } from '@prometheus-io/lezer-promql';

/** A vector selector: `metric{label="..."}`. */
export interface Selector {
  readonly metric: string;
  readonly labels: readonly string[];
  /** Inside rate(), irate() or increase(): only counters (and histogram series) make sense there. */
  readonly rated: boolean;
}

/** Labels named by a grouping clause, and the metrics of the expression it applies to. */
export interface Grouping {
  readonly clause: string;
  readonly labels: readonly string[];
  readonly metrics: readonly string[];
}

/** Everything the checks need from one query. */
export interface QueryFacts {
  /** Where the grammar failed, as `offset: text around it`; empty when the query parses. */
  readonly errors: readonly string[];
  readonly selectors: readonly Selector[];
  readonly groupings: readonly Grouping[];
}

/** Grafana's built-in interval variables and stand-in durations for parsing. */
export const BUILTIN_DURATIONS: Readonly<Record<string, string>> = { __rate_interval: '1m', __interval: '15s', __range: '1h' };

/** Variable names a text uses: `$name`, `${name}`, `${name:format}`, `[[name]]`. */
export function variablesIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]/g)) names.add((m[1] ?? m[2] ?? m[3])!);
  return [...names];
}

/**
 * The query as Prometheus would receive it: built-in intervals replaced by
 * durations, other variables by `values[name]` (default `.*`, which is what a
 * multi-value variable set to All becomes here).
 */
export function interpolate(expr: string, values: Readonly<Record<string, string>> = {}): string {
  return expr.replace(/\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]/g, (_all, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    return BUILTIN_DURATIONS[name] ?? values[name] ?? '.*';
  });
}

/** Functions that take a counter's range. */
const COUNTER_FUNCTIONS = new Set(['rate', 'irate', 'increase', 'resets']);

interface Node {
  readonly name: string;
  readonly from: number;
  readonly to: number;
  readonly children: Node[];
}

function toNodes(expr: string): Node {
  const tree = parser.parse(expr);
  const cursor = tree.cursor();
  const build = (): Node => {
    const node: Node = { name: cursor.type.isError ? '⚠' : cursor.name, from: cursor.from, to: cursor.to, children: [] };
    if (cursor.firstChild()) {
      do node.children.push(build());
      while (cursor.nextSibling());
      cursor.parent();
    }
    return node;
  };
  return build();
}

function walk(node: Node, visit: (n: Node, parent: Node | undefined) => void, parent?: Node): void {
  visit(node, parent);
  for (const c of node.children) walk(c, visit, node);
}

function metricsUnder(node: Node, expr: string): string[] {
  const out: string[] = [];
  walk(node, (n) => {
    if (n.name === 'VectorSelector') {
      const id = n.children.find((c) => c.name === 'Identifier');
      if (id !== undefined) out.push(expr.slice(id.from, id.to));
    }
  });
  return out;
}

function labelNames(node: Node, expr: string): string[] {
  return node.children.filter((c) => c.name === 'LabelName').map((c) => expr.slice(c.from, c.to));
}

/** Parses `expr` (already interpolated: see `interpolate`). */
export function analyse(expr: string): QueryFacts {
  const root = toNodes(expr);
  const rated = new Set<Node>();
  walk(root, (n) => {
    if (n.name !== 'FunctionCall') return;
    const fn = n.children.find((c) => c.name === 'FunctionIdentifier');
    if (fn !== undefined && COUNTER_FUNCTIONS.has(expr.slice(fn.from, fn.to))) walk(n, (inner) => rated.add(inner));
  });
  const errors: string[] = [];
  const selectors: Selector[] = [];
  const groupings: Grouping[] = [];
  walk(root, (n, parent) => {
    if (n.name === '⚠') errors.push(`${n.from}: ...${expr.slice(Math.max(0, n.from - 20), n.from + 20)}...`);
    if (n.name === 'VectorSelector') {
      const id = n.children.find((c) => c.name === 'Identifier');
      const matchers = n.children.find((c) => c.name === 'LabelMatchers');
      const labels: string[] = [];
      for (const m of matchers?.children ?? []) {
        if (m.name === 'UnquotedLabelMatcher') labels.push(...labelNames(m, expr));
        if (m.name === 'QuotedLabelMatcher') errors.push(`${m.from}: a quoted metric name in braces: weft's names need no quoting`);
      }
      if (id === undefined) errors.push(`${n.from}: a selector without a metric name`);
      else selectors.push({ metric: expr.slice(id.from, id.to), labels, rated: rated.has(n) });
    }
    if ((n.name === 'AggregateModifier' || n.name === 'MatchingModifierClause') && parent !== undefined) {
      const grouping = n.children.find((c) => c.name === 'GroupingLabels');
      if (grouping !== undefined) {
        groupings.push({ clause: expr.slice(n.from, n.to), labels: labelNames(grouping, expr), metrics: metricsUnder(parent, expr) });
      }
    }
  });
  if (root.from !== 0 || root.to !== expr.length) errors.push(`the grammar read ${root.from}..${root.to} of ${expr.length} characters`);
  return { errors, selectors, groupings };
}
