/**
 * `?filter=`: Consul's filter expressions (the go-bexpr language) on the
 * endpoints Consul documents them for. A route declares that it filters with
 * FILTERED (server.ts refuses ?filter everywhere else), reads the parameter
 * with requestFilter() before building its answer, and keeps the rows the
 * predicate accepts. A bad expression is a 400 with go-bexpr's message
 * behind Consul's prefix, before any blocking or data access.
 *
 *   lexer.ts -> parser.ts (tree: ast.ts) -> evaluate.ts (checks against schema.ts, runs on JSON rows)
 */
import type { FastifyRequest } from 'fastify';
import { badRequest } from '../http-error.js';
import { compileExpression, type RowPredicate } from './evaluate.js';
import { FilterError, parseFilter } from './parser.js';
import type { StructType } from './schema.js';

export type { Expression, MatchExpression, MatchOperator } from './ast.js';
export { formatExpression } from './ast.js';
export type { RowPredicate } from './evaluate.js';
export { FilterError, MAX_NESTING, parseFilter } from './parser.js';
export { CHECK_SERVICE_NODE, type FieldType, HEALTH_CHECK, NODE, NODE_SERVICE, SERVICE_NODE, type StructType } from './schema.js';

/** Consul's prefix for every bad filter (go-bexpr's CreateFilter). */
export const FILTER_ERROR_PREFIX = 'Failed to create boolean expression evaluator: ';

/** Route options that mark a route as accepting ?filter (read by server.ts). */
export const FILTERED = { config: { filter: true } };

/** True when a route's config (request.routeOptions.config) says it accepts ?filter. */
export function acceptsFilter(config: unknown): boolean {
  return typeof config === 'object' && config !== null && (config as { filter?: unknown }).filter === true;
}

/**
 * Parses and checks `expression` for rows shaped like `schema`. Throws
 * FilterError with go-bexpr's message (no prefix).
 */
export function createFilter(expression: string, schema: StructType): RowPredicate {
  return compileExpression(parseFilter(expression), schema);
}

/** The rows `filter` keeps (all of them without a filter). */
export function applyFilter<T>(rows: T[], filter: RowPredicate | undefined): T[] {
  return filter === undefined ? rows : rows.filter((row) => filter(row));
}

/**
 * The request's ?filter (the first one, as Consul reads it) as a predicate,
 * or undefined when absent or empty (Consul then does not filter). A bad
 * expression throws a 400 with Consul's text.
 */
export function requestFilter(req: FastifyRequest, schema: StructType): RowPredicate | undefined {
  const raw = (req.query as Record<string, string | string[] | undefined>)['filter'];
  const expression = Array.isArray(raw) ? raw[0] : raw;
  if (expression === undefined || expression === '') return undefined;
  try {
    return createFilter(expression, schema);
  } catch (err) {
    if (err instanceof FilterError) throw badRequest(FILTER_ERROR_PREFIX + err.message);
    throw err;
  }
}
