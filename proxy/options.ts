/**
 * Checks for the numeric knobs of the balancing and resilience core. They come
 * from config (validated there too), but these classes are also built directly
 * by tests and benches, so each constructor refuses nonsense with a coded error
 * that names the knob rather than misbehaving later (a NaN timeout never fires).
 */
import { invalid } from '../base/errors.js';

/** Bounds for one number. */
export interface NumberRule {
  readonly min?: number;
  readonly max?: number;
  readonly integer?: boolean;
}

/**
 * Returns `value`, or `fallback` when it is undefined, after checking it is a
 * finite number within the rule. Throws WEFT_ERR_CONFIG_INVALID naming `key`.
 */
export function numberOption(key: string, value: number | undefined, fallback: number, rule: NumberRule = {}): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid('WEFT_ERR_CONFIG_INVALID', key, v, 'must be a finite number');
  if (rule.integer === true && !Number.isInteger(v)) throw invalid('WEFT_ERR_CONFIG_INVALID', key, v, 'must be an integer');
  if (rule.min !== undefined && v < rule.min) throw invalid('WEFT_ERR_CONFIG_INVALID', key, v, `must be at least ${rule.min}`);
  if (rule.max !== undefined && v > rule.max) throw invalid('WEFT_ERR_CONFIG_INVALID', key, v, `must be at most ${rule.max}`);
  return v;
}
