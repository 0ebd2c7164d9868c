/**
 * Go durations as Consul reads and prints them. Consul's JSON carries
 * durations either as Go strings ("10s", "1m30s") or as integer nanoseconds,
 * and prints them back with Go's `time.Duration.String()` ("1m0s", "500ms"),
 * so the dev agent needs both directions exactly.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/** Parses a Go duration string into milliseconds; undefined when it is not one ("0" is allowed, as in Go). */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return text.startsWith('-') ? -total : total;
}

/**
 * Reads a duration field from a Consul JSON body: a Go string, or a number of
 * nanoseconds (what Go's encoding of time.Duration produces). Undefined when
 * absent; throws a message naming the field when malformed.
 */
export function durationField(value: unknown, field: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return value / 1e6;
  if (typeof value === 'string') {
    const ms = parseGoDuration(value);
    if (ms !== undefined) return ms;
  }
  throw new Error(`${field}: invalid duration ${JSON.stringify(value)}`);
}

/** Prints milliseconds like Go's time.Duration.String(): 60000 -> "1m0s", 500 -> "500ms", 0 -> "0s". */
export function formatGoDuration(ms: number): string {
  const ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  const abs = Math.abs(ns);
  if (abs < 1e9) {
    if (abs < 1e3) return `${sign}${abs}ns`;
    if (abs < 1e6) return `${sign}${trim(abs / 1e3)}µs`;
    return `${sign}${trim(abs / 1e6)}ms`;
  }
  const hours = Math.floor(abs / 3.6e12);
  const minutes = Math.floor((abs % 3.6e12) / 6e10);
  const seconds = (abs % 6e10) / 1e9;
  let out = `${trim(seconds)}s`;
  if (hours > 0 || minutes > 0) out = `${minutes}m${out}`;
  if (hours > 0) out = `${hours}h${out}`;
  return sign + out;
}

function trim(n: number): string {
  // Go prints at most 9 fractional digits and drops trailing zeros.
  return Number(n.toFixed(9)).toString();
}
