/**
 * `?node-meta=key:value`, as Consul reads it on catalog/nodes, catalog/services,
 * catalog/service and health/service: repeatable, every pair must match the
 * node's Meta exactly. A pair without a colon asks for the key with an empty
 * value; the same key given twice keeps the last value (Consul builds a map).
 */
import type { NodeRecord } from '../state/types.js';
import { params, type Query } from './common.js';

/** The requested pairs, or undefined when the request has no `node-meta`. */
export function nodeMetaFilter(query: Query): ReadonlyMap<string, string> | undefined {
  const raw = params(query, 'node-meta');
  if (raw.length === 0) return undefined;
  const out = new Map<string, string>();
  for (const pair of raw) {
    const colon = pair.indexOf(':');
    if (colon === -1) out.set(pair, '');
    else out.set(pair.slice(0, colon), pair.slice(colon + 1));
  }
  return out;
}

/** True when the node carries every pair of the filter (always true without one). */
export function nodeMatches(node: NodeRecord | undefined, filter: ReadonlyMap<string, string> | undefined): boolean {
  if (filter === undefined) return true;
  if (node === undefined) return false;
  for (const [k, v] of filter) if (!Object.hasOwn(node.meta, k) || node.meta[k] !== v) return false;
  return true;
}
