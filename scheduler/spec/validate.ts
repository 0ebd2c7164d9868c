/**
 * The one way a job spec enters weft: text (YAML or JSON, one parser since
 * YAML is a superset of JSON) or a value -> a checked JobSpec, or every error
 * with its path. Nothing is coerced and no defaults are written into the spec,
 * so what is stored (KV weft/jobs/<job>) is what the user wrote.
 */
import { Ajv } from 'ajv';
import { parseDocument } from 'yaml';
import { levenshtein } from '../../base/contracts/labels.js';
import { fromAjvErrors, jobInvalid, type SpecError } from './errors.js';
import { type JobSpec, JobSpecSchema } from './schema.js';
import { checkSemantics } from './semantic.js';

/** A checked spec, or every problem found. */
export type SpecResult = { ok: true; job: JobSpec } | { ok: false; errors: SpecError[] };

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, coerceTypes: false, useDefaults: false });
const schemaCheck = ajv.compile<JobSpec>(JobSpecSchema);

/** The allowed key closest to `key` when it looks like a typo (at most two edits, or a case slip). */
export function suggestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : levenshtein(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/**
 * Checks a parsed value against the schema, then the cross-field rules. The
 * rules need a well-shaped spec, so they report once the schema errors are fixed.
 */
export function validateJobSpec(value: unknown): SpecResult {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, errors: [{ path: '', message: `a job spec must be a mapping (got ${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value})` }] };
  }
  if (!schemaCheck(value)) return { ok: false, errors: fromAjvErrors(schemaCheck.errors ?? [], suggestKey) };
  const errors = checkSemantics(value);
  return errors.length === 0 ? { ok: true, job: value } : { ok: false, errors };
}

/** Parses YAML or JSON text (syntax errors carry line and column), then validates. */
export function parseJobSpec(text: string): SpecResult {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const at = e.linePos?.[0];
        // prettyErrors appends " at line L, column C:" and a code frame; keep the reason, put the place first.
        const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return { path: '', message: `${at === undefined ? '' : `line ${at.line}, column ${at.col}: `}${reason}` };
      }),
    };
  }
  return validateJobSpec(doc.toJS({ maxAliasCount: 100 }));
}

/** validateJobSpec that throws one WEFT_ERR_JOB_INVALID listing every error (the API and CLI use this). */
export function assertJobSpec(value: unknown): JobSpec {
  const result = validateJobSpec(value);
  if (!result.ok) throw jobInvalid(result.errors, nameOf(value));
  return result.job;
}

function nameOf(value: unknown): string | undefined {
  const name = (value as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? name : undefined;
}
