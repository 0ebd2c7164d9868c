/**
 * Positional arguments of the scheduler client commands, parsed before any
 * request is sent: a typo fails locally with a coded error naming the argument
 * and its value (`v1=abc`), instead of as a 400 from the API or, worse, a
 * request that means something else.
 */
import { parseDuration } from '../../../base/duration.js';
import { WeftError, invalid } from '../../../base/errors.js';
import { isServiceName, isVersion, MAX_GROUP_COUNT, MAX_SPLIT_WEIGHT } from '../../../base/contracts/names.js';


/**
 * `v1=90 v2=10` -> `{ v1: 90, v2: 10 }`. Weights are relative integers >= 0
 * (they need not sum to 100); at least one must be above 0.
 */
export function parseSplitArgs(args: readonly string[]): Record<string, number> {
  if (args.length === 0) throw invalid('WEFT_ERR_SPLIT_INVALID', 'split', '', 'name at least one version=weight, e.g. v1=90 v2=10');
  const split: Record<string, number> = {};
  let total = 0;
  for (const arg of args) {
    const eq = arg.indexOf('=');
    if (eq <= 0) throw invalid('WEFT_ERR_SPLIT_INVALID', arg, arg, 'must be version=weight, e.g. v1=90');
    const version = arg.slice(0, eq);
    const text = arg.slice(eq + 1);
    if (!isVersion(version)) {
      throw invalid('WEFT_ERR_SPLIT_INVALID', arg, version, "version must be 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit");
    }
    if (!/^[0-9]+$/.test(text) || Number(text) > MAX_SPLIT_WEIGHT) {
      throw invalid('WEFT_ERR_SPLIT_INVALID', arg, text, `weight of ${version} must be an integer from 0 to ${MAX_SPLIT_WEIGHT}`);
    }
    if (version in split) throw invalid('WEFT_ERR_SPLIT_INVALID', arg, version, `version ${version} is named twice`);
    split[version] = Number(text);
    total += Number(text);
  }
  if (total === 0) throw invalid('WEFT_ERR_SPLIT_INVALID', 'split', args.join(' '), 'at least one version needs a weight above 0');
  return split;
}

/** A replica count for `weft scale job N`: a whole number from 0 to 10,000 (the job schema's bound). */
export function parseCount(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > MAX_GROUP_COUNT) throw invalid('WEFT_ERR_ARGUMENT_INVALID', 'count', text, `must be a whole number from 0 to ${MAX_GROUP_COUNT}`);
  return Number(text);
}

/** A job, group or service name as the API wants it (a DNS label). */
export function parseName(what: string, text: string): string {
  if (!isServiceName(text)) throw invalid('WEFT_ERR_ARGUMENT_INVALID', what, text, 'must be a lowercase DNS label (a-z, 0-9, -; at most 63)');
  return text;
}

/** A Go duration for `--timeout` / `--interval` (`90s`, `5m`); must be above 0. */
export function parseDurationArg(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw invalid('WEFT_ERR_ARGUMENT_INVALID', flag, text, 'must be a duration above 0 such as 90s or 5m');
  return ms;
}

/** `weft scale job N` or `weft scale job group N`: which group, and the count. */
export function parseScaleArgs(args: readonly string[]): { group?: string; count: number } {
  if (args.length === 1) return { count: parseCount(args[0]!) };
  if (args.length === 2) return { group: parseName('group', args[0]!), count: parseCount(args[1]!) };
  throw new WeftError('WEFT_ERR_ARGUMENT_INVALID', `weft scale takes JOB [GROUP] COUNT (got ${JSON.stringify(args.join(' '))})`, {
    key: 'args',
    value: args.join(' '),
  });
}
