/**
 * The contract every load-balancing algorithm implements. A picker only
 * chooses: it never opens a socket or owns a pool (as undici keeps
 * balanced-pool.js apart from pool-base.js), so it stays pure and testable
 * from tables of cases.
 */
import { invalid } from '../../base/errors.js';

/** What a picker needs to know about one instance. The proxy passes richer objects. */
export interface Endpoint {
  /** Stable identity (the Consul service ID `<host>-<instance>`): state is kept per id. */
  readonly id: string;
  /** Relative share of traffic; 0 drains the endpoint. An integer 0..65535. */
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

/** The largest weight, as in Consul's Weights.Passing. */
export const MAX_WEIGHT = 65535;

/** Weight of an instance that does not say (Consul's default too). */
export const DEFAULT_WEIGHT = 1;

/** The Consul service Meta key carrying the weight (node-consul 2.x cannot send Weights). */
export const META_WEIGHT = 'weft_weight';

/** The Consul service Meta key carrying the version that splits choose between. */
export const META_VERSION = 'weft_version';

/**
 * Reads an instance's weight from its Consul Meta. Absent -> 1. Anything but
 * an integer 0..65535 throws WEFT_ERR_WEIGHT_INVALID naming the instance, so
 * the proxy can log and skip that one registration rather than guess.
 */
export function weightFromMeta(meta: Readonly<Record<string, string>> | undefined, serviceId: string): number {
  const raw = meta?.[META_WEIGHT];
  if (raw === undefined || raw === '') return DEFAULT_WEIGHT;
  const key = `${serviceId}: Meta.${META_WEIGHT}`;
  if (!/^[0-9]{1,5}$/.test(raw)) throw invalid('WEFT_ERR_WEIGHT_INVALID', key, raw, `must be an integer from 0 to ${MAX_WEIGHT}`);
  const weight = Number(raw);
  if (weight > MAX_WEIGHT) throw invalid('WEFT_ERR_WEIGHT_INVALID', key, raw, `must be an integer from 0 to ${MAX_WEIGHT}`);
  return weight;
}

/**
 * Validates a weight handed to a picker. Pickers reject bad weights loudly:
 * a NaN weight would silently starve or flood an instance.
 */
export function checkWeight(endpoint: Endpoint): number {
  const w = endpoint.weight;
  if (!Number.isInteger(w) || w < 0 || w > MAX_WEIGHT) {
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
