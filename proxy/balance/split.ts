/**
 * Traffic splits between versions of a service, read from Consul KV
 * `weft/splits/<service>`, e.g. `{ "v1": 90, "v2": 10 }`.
 *
 * The document is validated whole: a bad split is rejected with a coded error
 * naming the key and the value, and the proxy keeps the last good one (or
 * none) instead of guessing.
 *
 * Rules, as applied by effectiveVersionWeights():
 * - Weights are relative shares (integers, 0 allowed, at least one > 0); they
 *   need not sum to 100.
 * - A version's share is split-weight / sum, however many instances it has.
 * - A listed version with no pickable instance (none registered, or all with
 *   weight 0) gives its share to the other listed versions, in proportion to
 *   their weights. So `{ "v1": 90, "v2": 10 }` before v2 is deployed sends
 *   everything to v1.
 * - Instances whose version is not listed get no traffic while the split
 *   applies.
 * - If no listed version with weight > 0 has instances, the split is ignored
 *   and every instance serves: a split must never make a service with live
 *   instances unreachable (a typo in a version name would otherwise be an outage).
 */
import { invalid } from '../../base/errors.js';
// Version names: exactly what the `weft.version` label allows, so any registered version can be split to.
import { isVersion, MAX_SPLIT_WEIGHT } from '../../base/contracts/names.js';

/** A validated split: version -> relative weight, in document order. */
export type Split = ReadonlyMap<string, number>;

/** Where splits live in Consul KV. */
export const SPLIT_KV_PREFIX = 'weft/splits/';

/** The KV key of a service's split. */
export function splitKey(service: string): string {
  return SPLIT_KV_PREFIX + service;
}

/** Parses and validates the raw KV value (a JSON text). Throws WEFT_ERR_SPLIT_INVALID. */
export function parseSplit(service: string, text: string): Split {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid('WEFT_ERR_SPLIT_INVALID', splitKey(service), text, 'must be a JSON object such as {"v1": 90, "v2": 10}');
  }
  return validateSplit(service, doc);
}

/**
 * Validates a parsed split document. Errors name the KV key, with a JSON
 * Pointer to the version (`weft/splits/backend#/v2`) when one entry is bad.
 */
export function validateSplit(service: string, doc: unknown): Split {
  const key = splitKey(service);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw invalid('WEFT_ERR_SPLIT_INVALID', key, doc, 'must be a JSON object of version -> weight');
  }
  const entries = Object.entries(doc);
  if (entries.length === 0) throw invalid('WEFT_ERR_SPLIT_INVALID', key, doc, 'must name at least one version');
  const split = new Map<string, number>();
  let total = 0;
  for (const [version, weight] of entries) {
    const at = `${key}#/${version.replaceAll('~', '~0').replaceAll('/', '~1')}`;
    if (!isVersion(version)) {
      throw invalid('WEFT_ERR_SPLIT_INVALID', at, version, "version must be 1-128 letters, digits, '.', '_', '+' or '-', starting with a letter or digit");
    }
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 0 || weight > MAX_SPLIT_WEIGHT) {
      throw invalid('WEFT_ERR_SPLIT_INVALID', at, weight, `weight must be an integer from 0 to ${MAX_SPLIT_WEIGHT}`);
    }
    split.set(version, weight);
    total += weight;
  }
  if (total === 0) throw invalid('WEFT_ERR_SPLIT_INVALID', key, doc, 'at least one version needs a weight above 0');
  return split;
}

/**
 * The weights the version round robin uses, given which versions have a
 * pickable instance now. Versions without one drop out, which hands their
 * share to the rest in proportion. Undefined means "no split applies: use
 * every instance" (no split, or none of its versions is live).
 */
export function effectiveVersionWeights(split: Split | undefined, liveVersions: ReadonlySet<string>): Map<string, number> | undefined {
  if (split === undefined) return undefined;
  const out = new Map<string, number>();
  for (const [version, weight] of split) {
    if (weight > 0 && liveVersions.has(version)) out.set(version, weight);
  }
  return out.size === 0 ? undefined : out;
}
