/**
 * Go-style durations ("500ms", "10s", "1m30s"): the format Consul, its clients
 * and every Registrator user write. Parsed to milliseconds; printed back either
 * in the shortest form (for requests weft sends) or exactly as Go's
 * time.Duration.String() does (for answers the dev agent gives, as Consul does).
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
export function parseDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART)) total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return text.startsWith('-') ? -total : total;
}

/** Prints milliseconds as the shortest Go duration: 10000 -> "10s", 1500 -> "1500ms", 60000 -> "1m". */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
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
