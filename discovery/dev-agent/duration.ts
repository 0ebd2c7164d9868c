/** Duration fields of Consul JSON bodies, on top of base/duration.ts. */
import { parseDuration } from '../../base/duration.js';

/**
 * Reads a duration field from a Consul JSON body: a Go string, or a number of
 * nanoseconds (what Go's encoding of time.Duration produces). Undefined when
 * absent; throws a message naming the field when malformed.
 */
export function durationField(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value / 1e6;
  if (typeof value === 'string') {
    const ms = parseDuration(value);
    if (ms !== undefined) return ms;
  }
  throw new Error(`${field}: invalid duration ${JSON.stringify(value)}`);
}
