/**
 * Checks a parsed expression against an endpoint's fields and evaluates it
 * on the JSON objects the endpoint answers with, as go-bexpr 0.1.2 does:
 *
 * - Checking (before any data is read, so a bad filter fails even when there
 *   is nothing to filter): every selector must name a field, the operator
 *   must suit the field's type, the value must convert to it (`Port == "x"`
 *   fails like strconv.ParseInt) and a `matches` pattern must compile.
 * - A selector through a list of structs (`Checks.Status`) is true when it
 *   holds for ANY element, for every operator, the negated ones included:
 *   `Checks.Status != "passing"` means "some check is not passing"; an empty
 *   list matches nothing.
 * - A missing map key (`Meta.env` on a service without `env`): `==`, `in`
 *   and `is not empty` are false; `!=`, `not in`, `is empty`, `matches` and
 *   `not matches` are true (go-bexpr 0.1.2's rule, which Consul ships).
 * - A field absent from the JSON has its Go zero value ("", 0, false, empty).
 */
import { type Expression, type MatchExpression, type MatchOperator, type Selector, selectorText } from './ast.js';
import { goQuote, parseGoBool, parseGoInt } from './go.js';
import { FilterError } from './parser.js';
import { compileGoRegexp, RegexpError } from './regexp.js';
import type { FieldType, StructType } from './schema.js';

/** A checked expression, ready to run on rows. */
export type RowPredicate = (row: unknown) => boolean;

const STRING_OPS: readonly MatchOperator[] = ['Equal', 'Not Equal', 'In', 'Not In', 'Matches', 'Not Matches'];
const SCALAR_OPS: readonly MatchOperator[] = ['Equal', 'Not Equal'];
const PRIMITIVE_LIST_OPS: readonly MatchOperator[] = ['In', 'Not In', 'Is Empty', 'Is Not Empty'];
const STRUCT_LIST_OPS: readonly MatchOperator[] = ['Is Empty', 'Is Not Empty'];
const MAP_OPS: readonly MatchOperator[] = ['Is Empty', 'Is Not Empty', 'In', 'Not In'];

/** A coerced match value: what `==`/`in` compare with, or the compiled `matches` pattern. */
type Operand = string | bigint | boolean | RegExp | undefined;

interface CheckedMatch {
  readonly selector: Selector;
  readonly operator: MatchOperator;
  readonly operand: Operand;
}

/** Checks `expr` against `schema` and returns its predicate; throws FilterError with go-bexpr's message. */
export function compileExpression(expr: Expression, schema: StructType): RowPredicate {
  switch (expr.kind) {
    case 'match': {
      const m = checkMatch(expr, schema);
      return (row) => evaluateMatch(m, row, schema, 0);
    }
    case 'not': {
      const inner = compileExpression(expr.operand, schema);
      return (row) => !inner(row);
    }
    case 'and': {
      const parts = expr.operands.map((o) => compileExpression(o, schema));
      return (row) => parts.every((p) => p(row));
    }
    case 'or': {
      const parts = expr.operands.map((o) => compileExpression(o, schema));
      return (row) => parts.some((p) => p(row));
    }
  }
}

function checkMatch(m: MatchExpression, schema: StructType): CheckedMatch {
  const field = resolve(m.selector, schema);
  const quoted = goQuote(selectorText(m.selector));
  if (!operatorsOf(field).includes(m.operator)) {
    throw new FilterError(`Invalid match operator ${goQuote(m.operator)} for selector ${quoted}`);
  }
  if (m.value === undefined) return { selector: m.selector, operator: m.operator, operand: undefined };
  let operand: Operand = coerce(field, m.value, quoted);
  if (m.operator === 'Matches' || m.operator === 'Not Matches') {
    try {
      operand = compileGoRegexp(String(operand));
    } catch (err) {
      if (!(err instanceof RegexpError)) throw err;
      throw new FilterError(`Failed to compile regular expression ${goQuote(String(operand))}: ${err.message}`);
    }
  }
  return { selector: m.selector, operator: m.operator, operand };
}

/** The field a selector names; go-bexpr's "Selector ... is not valid" names the first part that is not. */
function resolve(selector: Selector, schema: StructType): FieldType {
  let current: FieldType = schema;
  selector.forEach((part, i) => {
    const next = child(current, part);
    if (next === undefined) throw new FilterError(`Selector ${goQuote(selectorText(selector.slice(0, i + 1)))} is not valid`);
    current = next;
  });
  return current;
}

/** What `part` selects inside a field of type `t`: a struct's field, a list element's field, any map key. */
function child(t: FieldType, part: string): FieldType | undefined {
  if (t.kind === 'struct') return Object.hasOwn(t.fields, part) ? t.fields[part] : undefined;
  if (t.kind === 'list') return t.elem.kind === 'struct' ? child(t.elem, part) : undefined;
  if (t.kind === 'map') return t.value;
  return undefined;
}

function operatorsOf(t: FieldType): readonly MatchOperator[] {
  switch (t.kind) {
    case 'string':
      return STRING_OPS;
    case 'int':
    case 'bool':
      return SCALAR_OPS;
    case 'list':
      return t.elem.kind === 'struct' || t.elem.kind === 'list' || t.elem.kind === 'map' ? STRUCT_LIST_OPS : PRIMITIVE_LIST_OPS;
    case 'map':
      return MAP_OPS;
    case 'struct':
      return [];
  }
}

/** The value converted to the field's type (for a list or a map: its element or key type). */
function coerce(t: FieldType, raw: string, quotedSelector: string): Operand {
  const kind = t.kind === 'list' ? t.elem.kind : t.kind === 'map' ? 'string' : t.kind;
  const converted = kind === 'int' ? parseGoInt(raw) : kind === 'bool' ? parseGoBool(raw) : { value: raw };
  if ('error' in converted) throw new FilterError(`Failed to coerce value ${goQuote(raw)} for selector ${quotedSelector}: ${converted.error}`);
  return converted.value;
}

function evaluateMatch(m: CheckedMatch, value: unknown, type: FieldType, depth: number): boolean {
  if (depth >= m.selector.length) return evaluateLeaf(m, value, type);
  const part = m.selector[depth]!;
  switch (type.kind) {
    case 'struct': {
      const fieldType = type.fields[part]!;
      return evaluateMatch(m, fieldOf(value, part, fieldType), fieldType, depth + 1);
    }
    case 'list':
      // Selecting into a list's elements: true when any element matches.
      return asList(value).some((el) => evaluateMatch(m, el ?? zero(type.elem), type.elem, depth));
    case 'map': {
      const map = asMap(value);
      if (!Object.hasOwn(map, part)) return missingKey(m.operator);
      return evaluateMatch(m, map[part] ?? zero(type.value), type.value, depth + 1);
    }
    default:
      return false;
  }
}

/** go-bexpr 0.1.2 on a missing map key: only ==, in and is not empty are false. */
function missingKey(operator: MatchOperator): boolean {
  return !(operator === 'Equal' || operator === 'In' || operator === 'Is Not Empty');
}

function evaluateLeaf(m: CheckedMatch, value: unknown, type: FieldType): boolean {
  switch (m.operator) {
    case 'Equal':
      return equal(value, type, m.operand);
    case 'Not Equal':
      return !equal(value, type, m.operand);
    case 'In':
      return contains(value, type, m.operand);
    case 'Not In':
      return !contains(value, type, m.operand);
    case 'Is Empty':
      return size(value, type) === 0;
    case 'Is Not Empty':
      return size(value, type) !== 0;
    case 'Matches':
      return (m.operand as RegExp).test(String(value));
    case 'Not Matches':
      return !(m.operand as RegExp).test(String(value));
  }
}

function equal(value: unknown, type: FieldType, operand: Operand): boolean {
  if (type.kind === 'int') return typeof value === 'number' && Number.isInteger(value) && BigInt(value) === operand;
  return value === operand;
}

function contains(value: unknown, type: FieldType, operand: Operand): boolean {
  if (type.kind === 'map') return Object.hasOwn(asMap(value), operand as string);
  if (type.kind === 'list') return asList(value).some((el) => equal(el, type.elem, operand));
  return typeof value === 'string' && value.includes(operand as string);
}

function size(value: unknown, type: FieldType): number {
  return type.kind === 'map' ? Object.keys(asMap(value)).length : asList(value).length;
}

function fieldOf(value: unknown, name: string, type: FieldType): unknown {
  const v = isObject(value) && Object.hasOwn(value, name) ? value[name] : undefined;
  return v === undefined || v === null ? zero(type) : v;
}

/** A Go zero value: what a struct field the JSON leaves out holds. */
function zero(type: FieldType): unknown {
  switch (type.kind) {
    case 'string':
      return '';
    case 'int':
      return 0;
    case 'bool':
      return false;
    case 'list':
      return [];
    default:
      return {};
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asMap(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
