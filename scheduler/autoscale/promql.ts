/**
 * The one file that touches the PromQL grammar: Prometheus' own lezer grammar
 * (@prometheus-io/lezer-promql, the parser of Prometheus' web UI: pure
 * JavaScript, no native code). Everything else sees `checkPromQL`.
 *
 * lezer parsers never throw: they recover and mark what they skipped with
 * error nodes, so an expression parses when its tree has none. This checks
 * syntax only (as the UI's grammar does); type errors such as `rate(foo)`
 * without a range reach the user when Prometheus evaluates the query.
 */
import { parser } from '@prometheus-io/lezer-promql';

/** Where an expression stops parsing: `column` counts from 1. */
export interface PromQLError {
  column: number;
  message: string;
}

/** undefined when `expr` is a PromQL expression; else where and why not. */
export function checkPromQL(expr: string): PromQLError | undefined {
  if (expr.trim() === '') return { column: 1, message: 'is empty' };
  const tree = parser.parse(expr);
  let at: number | undefined;
  tree.iterate({
    enter: (node) => {
      if (at !== undefined) return false;
      if (node.type.isError) at = node.from;
      return undefined;
    },
  });
  if (at === undefined) return undefined;
  const near = expr.slice(at, at + 20);
  return { column: at + 1, message: near === '' ? 'ends too early' : `unexpected ${JSON.stringify(near)}` };
}
