/**
 * The syntax tree of a filter expression. Operators carry go-bexpr's names
 * ("Not Equal", "Is Empty", ...) because Consul's errors and docs use them.
 * `contains` parses to In and `not contains` to Not In, with selector and
 * value in their places, exactly as go-bexpr reads them.
 */

/** The match operators of the language. */
export type MatchOperator = 'Equal' | 'Not Equal' | 'In' | 'Not In' | 'Is Empty' | 'Is Not Empty' | 'Matches' | 'Not Matches';

/** A selector: `Service.Meta["version"]` is ['Service', 'Meta', 'version']. */
export type Selector = readonly string[];

/** `<selector> <op> <value>`, `<value> in <selector>` or `<selector> is [not] empty`. */
export interface MatchExpression {
  readonly kind: 'match';
  readonly selector: Selector;
  readonly operator: MatchOperator;
  /** The value as written, unquoted; a bare selector value is its parts joined by '.'. Absent for is [not] empty. */
  readonly value?: string;
}

/** `not <expr>`. */
export interface NotExpression {
  readonly kind: 'not';
  readonly operand: Expression;
}

/**
 * `a and b and c` (or `or`): go-bexpr nests these to the right; both
 * operators are associative, so the operands are kept as one list.
 */
export interface LogicalExpression {
  readonly kind: 'and' | 'or';
  readonly operands: readonly Expression[];
}

/** Any node of the tree. */
export type Expression = MatchExpression | NotExpression | LogicalExpression;

/** A selector as go-bexpr prints it in errors: its parts joined by '.'. */
export function selectorText(selector: Selector): string {
  return selector.join('.');
}

/** A compact, unambiguous rendering of a tree, for tests and debugging. */
export function formatExpression(e: Expression): string {
  switch (e.kind) {
    case 'match':
      return e.value === undefined
        ? `(${selectorText(e.selector)} ${e.operator})`
        : `(${selectorText(e.selector)} ${e.operator} ${JSON.stringify(e.value)})`;
    case 'not':
      return `(not ${formatExpression(e.operand)})`;
    default:
      return `(${e.operands.map(formatExpression).join(` ${e.kind} `)})`;
  }
}
