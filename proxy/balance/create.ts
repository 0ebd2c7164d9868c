/**
 * The balancing algorithm is chosen per service; this is the one place that
 * maps its name to a picker, so config, KV and the proxy agree on the names.
 */
import { invalid } from '../../base/errors.js';
import { type P2cOptions, P2cPicker } from './p2c.js';
import type { Endpoint, Picker } from './picker.js';
import { SwrrPicker } from './swrr.js';

/** The algorithms: `swrr` (nginx smooth weighted round robin), `p2c` (Linkerd's P2C + peak EWMA). */
export const ALGORITHMS = ['p2c', 'swrr'] as const;

/** An algorithm name. */
export type Algorithm = (typeof ALGORITHMS)[number];

/** Latency-aware by default, as Linkerd: it copes with uneven hosts without tuning. */
export const DEFAULT_ALGORITHM: Algorithm = 'p2c';

/** Options for any picker; round robin ignores the latency ones. */
export type PickerOptions<E extends Endpoint = Endpoint> = P2cOptions<E>;

/** Checks an algorithm name from config or KV. Throws WEFT_ERR_CONFIG_INVALID naming `key`. */
export function parseAlgorithm(value: unknown, key: string): Algorithm {
  if (typeof value === 'string' && (ALGORITHMS as readonly string[]).includes(value)) return value as Algorithm;
  throw invalid('WEFT_ERR_CONFIG_INVALID', key, value, `must be one of ${ALGORITHMS.join(', ')}`);
}

/** Builds a picker of the given algorithm. */
export function createPicker<E extends Endpoint>(
  algorithm: Algorithm,
  endpoints: readonly E[] = [],
  options: PickerOptions<E> = {},
): Picker<E> {
  switch (algorithm) {
    case 'swrr':
      return new SwrrPicker(endpoints, { available: options.available, panic: options.panic });
    case 'p2c':
      return new P2cPicker(endpoints, options);
  }
}
