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

/** Joins path segments: numbers become `[0]`, plain keys `.key`, others `["weft.port"]`. */
export function joinPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const s of segments) {
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

/** One WEFT_ERR_JOB_INVALID carrying every error (its message lists them one per line). */
export function jobInvalid(errors: readonly SpecError[], name?: string): WeftError {
  const head = name === undefined ? 'job spec is invalid' : `job ${name}: spec is invalid`;
  return new WeftError('WEFT_ERR_JOB_INVALID', `${head}:\n  ${errors.map(formatSpecError).join('\n  ')}`, {
    key: errors[0]?.path ?? '',
    value: errors,
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
    const got = ` (got ${JSON.stringify(err.data)})`;
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
        push(segments, `must be one of ${(err.params as { allowedValues: unknown[] }).allowedValues.join(', ')}${got}`);
        break;
      case 'pattern':
        if (err.propertyName !== undefined) push([...segments, err.propertyName], `key must match ${(err.params as { pattern: string }).pattern}`);
        else push(segments, `must match ${(err.params as { pattern: string }).pattern}${got}`);
        break;
      case 'type':
        push(segments, `must be ${(err.params as { type: string }).type}${got}`);
        break;
      default:
        push(segments, err.message ?? 'is invalid');
    }
  }
  return out;
}
