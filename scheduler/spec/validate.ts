/**
 * The one way a job spec enters weft: text (YAML or JSON, one parser since
 * YAML is a superset of JSON) or a value -> a checked JobSpec, or every error
 * with its path. Nothing is coerced and no defaults are written into the spec,
 * so what is stored (KV weft/jobs/<job>) is what the user wrote.
 */
import { Ajv } from 'ajv';
import { parseDocument } from 'yaml';
import { levenshtein } from '../../base/contracts/labels.js';
import { clip, fromAjvErrors, jobInvalid, joinPath, type SpecError } from './errors.js';
import { type JobSpec, JobSpecSchema } from './schema.js';
import { checkSemantics } from './semantic.js';

/** A checked spec, or every problem found. */
export type SpecResult = { ok: true; job: JobSpec } | { ok: false; errors: SpecError[] };

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, coerceTypes: false, useDefaults: false });
const schemaCheck = ajv.compile<JobSpec>(JobSpecSchema);

/**
 * Deepest nesting of a spec: collections inside collections (the schema itself
 * needs about 8). Checked before anything that recurses (Ajv, JSON.stringify,
 * the YAML parser) sees the value.
 */
export const MAX_SPEC_DEPTH = 64;
/**
 * YAML alias expansion bound (yaml's `maxAliasCount`: an anchor's uses times
 * the aliases inside it): a "billion laughs" document fails at once instead of
 * expanding.
 */
export const MAX_YAML_ALIASES = 100;

/** The allowed key closest to `key` when it looks like a typo (at most two edits, or a case slip). */
export function suggestKey(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    // The distance is at least the length difference: a long key is nobody's typo (and levenshtein is quadratic).
    if (Math.abs(candidate.length - key.length) >= bestDistance) continue;
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
  const deep = tooDeep(value, MAX_SPEC_DEPTH);
  if (deep !== undefined) return { ok: false, errors: [{ path: joinPath(deep), message: `nested more than ${MAX_SPEC_DEPTH} levels deep` }] };
  if (!schemaCheck(value)) return { ok: false, errors: fromAjvErrors(schemaCheck.errors ?? [], suggestKey) };
  const errors = checkSemantics(value);
  return errors.length === 0 ? { ok: true, job: value } : { ok: false, errors };
}

/**
 * Parses YAML or JSON text (syntax errors carry line and column), then
 * validates. Bounded: text nesting far deeper than MAX_SPEC_DEPTH is refused
 * before the parser (which recurses per level) sees it, and aliases expand to
 * at most MAX_YAML_ALIASES nodes.
 */
export function parseJobSpec(text: string): SpecResult {
  const deepLine = yamlNestingLine(text, 2 * MAX_SPEC_DEPTH);
  if (deepLine !== undefined) return { ok: false, errors: [{ path: '', message: `line ${deepLine}: nested more than ${MAX_SPEC_DEPTH} levels deep` }] };
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => {
        const at = e.linePos?.[0];
        // prettyErrors appends " at line L, column C:" and a code frame; keep the reason, put the place first.
        const reason = clip(e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''));
        return { path: '', message: `${at === undefined ? '' : `line ${at.line}, column ${at.col}: `}${reason}` };
      }),
    };
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    // yaml throws (ReferenceError) on an alias bomb and on an alias without its anchor.
    const message = (err as Error).message ?? String(err);
    return {
      ok: false,
      errors: [
        {
          path: '',
          message: /excessive alias count/i.test(message)
            ? `YAML aliases expand to more than ${MAX_YAML_ALIASES} nodes (an alias bomb?)`
            : `YAML: ${clip(message)}`,
        },
      ],
    };
  }
  return validateJobSpec(value);
}

/**
 * The path of the first collection nested MAX levels deep in `root`, or
 * undefined. Walks with its own stack (never recursing), and pushes only
 * collections, so a 100,000-deep value costs a loop, not the call stack.
 */
function tooDeep(root: object, max: number): Array<string | number> | undefined {
  interface Frame {
    value: object;
    depth: number;
    parent?: Frame;
    segment?: string | number;
  }
  const stack: Frame[] = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth >= max) {
      const path: Array<string | number> = [];
      for (let f: Frame | undefined = frame; f?.segment !== undefined; f = f.parent) path.push(f.segment);
      return path.reverse();
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(frame.value) ? frame.value.map((v, i) => [i, v]) : Object.entries(frame.value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [segment, child] = entries[i]!;
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: frame.depth + 1, parent: frame, segment });
    }
  }
  return undefined;
}

/** Characters after which a quote opens a quoted scalar (a token starts there). */
const TOKEN_START = new Set(['\n', '[', '{', ',', ':', '?', '-']);

/**
 * A quick, linear estimate of how deep YAML text nests, before the parser
 * sees it: the yaml package recurses per level and spends seconds on 100,000
 * (`[[[[...`, `- - - -...`, or ever deeper indentation). Counts block levels
 * (indentation steps plus compact `- ` / `? ` entries on a line) and flow
 * brackets outside quoted scalars and comments. Returns the line where the
 * estimate passes `limit`. Generous to real specs (the estimate may count a
 * bracket inside a plain scalar): the exact bound is checked on the value.
 */
function yamlNestingLine(text: string, limit: number): number | undefined {
  const indents: number[] = [];
  let flow = 0;
  let quote: string | undefined;
  let prev = '\n'; // the last character that was not blank, across lines
  let lineStart = 0;
  for (let line = 1; lineStart <= text.length; line++) {
    let end = text.indexOf('\n', lineStart);
    if (end < 0) end = text.length;
    let i = lineStart;
    if (quote === undefined && flow === 0) {
      while (i < end && (text[i] === ' ' || text[i] === '\t')) i++;
      if (i < end && text[i] !== '#' && text[i] !== '\r') {
        const indent = i - lineStart;
        while (indents.length > 0 && indents.at(-1)! >= indent) indents.pop();
        indents.push(indent);
        let compact = 0;
        while (i < end && (text[i] === '-' || text[i] === '?') && (i + 1 === end || text[i + 1] === ' ' || text[i + 1] === '\t')) {
          if (indents.length + ++compact > limit) return line;
          i++;
          while (i < end && (text[i] === ' ' || text[i] === '\t')) i++;
        }
        if (indents.length > limit) return line;
      }
      prev = '\n';
    }
    for (; i < end; i++) {
      const c = text[i]!;
      if (quote !== undefined) {
        if (quote === '"' && c === '\\') i++;
        else if (c === quote && quote === "'" && text[i + 1] === "'") i++;
        else if (c === quote) {
          quote = undefined;
          prev = c;
        }
        continue;
      }
      if (c === ' ' || c === '\t' || c === '\r') continue;
      if (c === '#' && (i === lineStart || text[i - 1] === ' ' || text[i - 1] === '\t')) break;
      if ((c === '"' || c === "'") && TOKEN_START.has(prev)) {
        quote = c;
        continue;
      }
      if (c === '[' || c === '{') {
        flow++;
        if (indents.length + flow > limit) return line;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
      }
      prev = c;
    }
    lineStart = end + 1;
  }
  return undefined;
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
