/**
 * Spec errors as users read them: a path in the spec's own notation
 * (`groups[0].tasks[1].resources.memory`) and a short reason, the value when
 * it helps. ajv's raw errors (JSON pointers, one per anyOf branch) are turned
 * into these here, so every caller (CLI, API, tests) prints the same text.
 */
import type { ErrorObject } from 'ajv';
import { WeftError } from '../../base/errors.js';

/** One problem in a job spec. `path` is empty for the document itself. */
export interface SpecError {
  path: string;
  message: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Longest piece of the user's input an error repeats (a value, a key, a name); longer ones are cut. */
export const MAX_ECHO = 200;
/** Longest path or message of one listed error (a net for messages that repeat input). */
export const MAX_ERROR_LINE = 1000;
/** Errors listed in one WEFT_ERR_JOB_INVALID; the rest are counted. */
export const MAX_LISTED_ERRORS = 100;

/** `text` cut at `max` characters, with an ellipsis and the original length: `aaaa… (1048576 characters)`. */
export function clip(text: string, max = MAX_ECHO): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * A value as an error message shows it: JSON, strings cut by `clip`, anything
 * longer than `max` characters cut too, and a nested value described rather
 * than serialised (JSON.stringify recurses: a 100,000-deep value would
 * overflow the stack).
 */
export function preview(value: unknown, max = MAX_ECHO): string {
  if (typeof value === 'string') return JSON.stringify(clip(value, max));
  if (value === null || typeof value !== 'object') return String(JSON.stringify(value) ?? value);
  if (!shallow(value, 4)) return Array.isArray(value) ? `a list of ${value.length} items` : 'a mapping';
  const json = JSON.stringify(value) ?? '';
  return json.length <= max ? json : `${json.slice(0, max)}… (${json.length} characters)`;
}

/** True when `value` nests at most `levels` collections deep; walks with its own stack, never recursing. */
function shallow(value: object, levels: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > levels) return false;
    for (const child of Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return true;
}

/** Joins path segments: numbers become `[0]`, plain keys `.key`, others `["weft.port"]`; a key longer than MAX_ECHO is cut. */
export function joinPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const segment of segments) {
    const s = typeof segment === 'string' ? clip(segment) : segment;
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** Splits an ajv instancePath (`/groups/0/tasks`) into segments; all-digit segments are array indexes. */
export function pointerSegments(pointer: string): Array<string | number> {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((raw) => raw.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/** `path: message`, or the message alone for the document. */
export function formatSpecError(e: SpecError): string {
  return e.path === '' ? e.message : `${e.path}: ${e.message}`;
}

/**
 * One WEFT_ERR_JOB_INVALID carrying every error (its message lists them one
 * per line), at most MAX_LISTED_ERRORS of them (then how many more), each
 * path and message at most MAX_ERROR_LINE characters: an error never grows
 * with the input it refuses.
 */
export function jobInvalid(errors: readonly SpecError[], name?: string): WeftError {
  const listed = errors.slice(0, MAX_LISTED_ERRORS).map((e) => ({ path: clip(e.path, MAX_ERROR_LINE), message: clip(e.message, MAX_ERROR_LINE) }));
  if (errors.length > MAX_LISTED_ERRORS) listed.push({ path: '', message: `… and ${errors.length - MAX_LISTED_ERRORS} more errors` });
  const head = name === undefined ? 'job spec is invalid' : `job ${clip(name)}: spec is invalid`;
  return new WeftError('WEFT_ERR_JOB_INVALID', `${head}:\n  ${listed.map(formatSpecError).join('\n  ')}`, {
    key: listed[0]?.path ?? '',
    value: listed,
  });
}

/** Converts ajv's errors (compiled with allErrors and verbose) into SpecErrors, deduplicated and in document order. */
export function fromAjvErrors(errors: readonly ErrorObject[], suggest: (key: string, allowed: string[]) => string | undefined): SpecError[] {
  const out: SpecError[] = [];
  const seen = new Set<string>();
  const push = (segments: Array<string | number>, message: string): void => {
    const e = { path: joinPath(segments), message };
    const id = formatSpecError(e);
    if (!seen.has(id)) {
      seen.add(id);
      out.push(e);
    }
  };
  // A bad key already reported by its pattern needs no second "property name must be valid".
  const badNames = new Set(errors.filter((e) => e.propertyName !== undefined).map((e) => e.instancePath));
  for (const err of errors) {
    const segments = pointerSegments(err.instancePath);
    // Only the messages that show the value render it: err.data may be the whole spec.
    const got = (): string => ` (got ${preview(err.data)})`;
    switch (err.keyword) {
      case 'required':
        push([...segments, (err.params as { missingProperty: string }).missingProperty], 'is required');
        break;
      case 'additionalProperties': {
        const key = (err.params as { additionalProperty: string }).additionalProperty;
        const allowed = Object.keys((err.parentSchema as { properties?: object } | undefined)?.properties ?? {});
        const hint = suggest(key, allowed);
        push([...segments, key], `unknown key${hint === undefined ? '' : ` (did you mean ${hint}?)`}`);
        break;
      }
      case 'propertyNames':
        if (!badNames.has(err.instancePath)) push(segments, 'has an invalid key');
        break;
      case 'enum':
        push(segments, `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}${got()}`);
        break;
      case 'pattern':
        if (err.propertyName !== undefined) push([...segments, err.propertyName], `key must match ${(err.params as { pattern: string }).pattern}`);
        else push(segments, `must match ${(err.params as { pattern: string }).pattern}${got()}`);
        break;
      case 'type':
        push(segments, `must be ${(err.params as { type: string }).type}${got()}`);
        break;
      default:
        push(segments, err.message ?? 'is invalid');
    }
  }
  return out;
}
