/**
 * The contract every load-balancing algorithm implements. A picker only
 * chooses: it never opens a socket or owns a pool (as undici keeps
 * balanced-pool.js apart from pool-base.js), so it stays pure and testable
 * from tables of cases.
 */
import { invalid } from '../../base/errors.js';
import { isWeight, MAX_WEIGHT } from '../../base/contracts/names.js';

/** What a picker needs to know about one instance. The proxy passes richer objects. */
export interface Endpoint {
  /** Stable identity (the Consul service ID `<host>-<instance>`): state is kept per id. */
  readonly id: string;
  /** Relative share of traffic; 0 drains the endpoint. An integer 0..MAX_WEIGHT (base/contracts/names.ts). */
  readonly weight: number;
  /** `weft_version`, used by version splits. */
  readonly version?: string | undefined;
}

/** How one request to an endpoint went, as the proxy measured it. */
export interface AttemptResult {
  /** Time from sending the request to the response head (or the failure). */
  readonly latencyMs: number;
  /** False for connect errors, resets, timeouts and 5xx: the proxy decides. */
  readonly ok: boolean;
}

/** One load-balancing algorithm over one service's endpoints. */
export interface Picker<E extends Endpoint = Endpoint> {
  /** The endpoint for the next request, or undefined when every endpoint is drained (or there are none). */
  pick(): E | undefined;
  /** Replaces the endpoint set. Endpoints whose id stays keep their state (SWRR position, latency estimate). */
  update(endpoints: readonly E[]): void;
  /** A request to `endpoint` starts (the picker may count it as outstanding). */
  onStart(endpoint: E): void;
  /** A request to `endpoint` ended. Every onStart must be matched by exactly one onEnd. */
  onEnd(endpoint: E, result: AttemptResult): void;
}

/**
 * Whether an endpoint may be picked right now (outlier ejection plugs in here).
 * Kept apart from update() so hiding an endpoint for 30 s does not throw away
 * its state.
 */
export type Availability<E extends Endpoint = Endpoint> = (endpoint: E) => boolean;

/** Reads Meta weft_weight (base/contracts/meta.ts holds the rule; kept here for the pickers' callers). */
export { weightFromMeta } from '../../base/contracts/meta.js';

/**
 * Validates a weight handed to a picker. Pickers reject bad weights loudly:
 * a NaN weight would silently starve or flood an instance.
 */
export function checkWeight(endpoint: Endpoint): number {
  const w = endpoint.weight;
  if (!isWeight(w)) {
    throw invalid('WEFT_ERR_WEIGHT_INVALID', `endpoint ${endpoint.id}: weight`, w, `must be an integer from 0 to ${MAX_WEIGHT}`);
  }
  return w;
}

/**
 * The endpoints with unique ids, in order; a later duplicate replaces an
 * earlier one (the newest registration wins, as a Map would).
 */
export function uniqueById<E extends Endpoint>(endpoints: readonly E[]): E[] {
  const byId = new Map<string, E>();
  for (const e of endpoints) {
    checkWeight(e);
    byId.set(e.id, e);
  }
  return [...byId.values()];
}
