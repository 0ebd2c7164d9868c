/**
 * Go-style durations ("500ms", "10s", "1m30s"), the format Consul and every
 * Registrator user already write, parsed to milliseconds and printed back in
 * the shortest form Consul accepts.
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

const PART = /([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Parses a Go duration into milliseconds; undefined when the text is not one.
 * Like Go, a bare "0" is allowed and every other number needs a unit.
 */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const m = PART.exec(text);
    if (m === null || m.index !== at) return undefined;
    const digits = m[1]!;
    if (digits === '' || digits === '.') return undefined;
    total += Number(digits) * UNIT_MS[m[2]!]!;
  }
  return Number.isFinite(total) ? total : undefined;
}

/** Prints milliseconds as the shortest Go duration: 10000 -> "10s", 1500 -> "1500ms", 60000 -> "1m". */
export function formatDuration(ms: number): string {
  if (ms > 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms > 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${Math.round(ms)}ms`;
}
