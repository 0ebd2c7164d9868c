/**
 * Plain-text tables for the scheduler client's human output: aligned columns,
 * a header row, and colour only when writing to a terminal (pipes, files and
 * CI logs get plain bytes, so `weft status | grep web` works). `--json` does
 * not come through here: it prints the API's JSON as received.
 */

/** One column: its header and how to read a cell from a row. */
export interface Column<Row> {
  header: string;
  cell: (row: Row) => string | number | boolean | undefined | null;
  /** Numbers read better right-aligned. */
  align?: 'left' | 'right';
  /** Colours a cell (after padding) when colour is on; e.g. red for `failed`. */
  tone?: (row: Row) => Tone | undefined;
}

/** The few colours the client uses. */
export type Tone = 'green' | 'yellow' | 'red' | 'dim';

const SGR: Record<Tone, string> = { green: '32', yellow: '33', red: '31', dim: '2' };

/** True when colour should be used on `stream`: a TTY, and NO_COLOR unset (no-color.org). */
export function colorFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && (env['NO_COLOR'] === undefined || env['NO_COLOR'] === '') && env['TERM'] !== 'dumb';
}

/** Wraps `text` in an SGR colour when `on`. */
export function paint(text: string, tone: Tone | undefined, on: boolean): string {
  return on && tone !== undefined ? `\u001b[${SGR[tone]}m${text}\u001b[0m` : text;
}

/**
 * Renders rows as aligned columns separated by two spaces, header first.
 * Returns the lines without a trailing newline; an empty table is just the header
 * (callers print "no jobs" themselves when that reads better).
 */
export function renderTable<Row>(rows: readonly Row[], columns: ReadonlyArray<Column<Row>>, opts: { color?: boolean; empty?: string } = {}): string {
  const color = opts.color === true;
  const cells = rows.map((row) => columns.map((c) => text(c.cell(row), opts.empty)));
  const widths = columns.map((c, i) => Math.max(width(c.header), ...cells.map((r) => width(r[i]!))));
  const line = (values: readonly string[], tones: ReadonlyArray<Tone | undefined>): string =>
    values
      .map((v, i) => {
        const padded = columns[i]!.align === 'right' ? v.padStart(widths[i]! + v.length - width(v)) : v.padEnd(widths[i]! + v.length - width(v));
        // The last column is not padded: no trailing spaces in copied output.
        const cell = i === values.length - 1 && columns[i]!.align !== 'right' ? v : padded;
        return paint(cell, tones[i], color);
      })
      .join('  ');
  const header = line(
    columns.map((c) => c.header),
    columns.map(() => undefined),
  );
  const body = rows.map((row, r) => line(cells[r]!, columns.map((c) => c.tone?.(row))));
  return [color ? `\u001b[1m${header}\u001b[0m` : header, ...body].join('\n');
}

/** Key/value lines (`name:    web`), for one object's details. */
export function renderFields(fields: ReadonlyArray<readonly [label: string, value: string | number | undefined]>): string {
  const shown = fields.filter(([, v]) => v !== undefined && v !== '');
  const w = Math.max(0, ...shown.map(([k]) => k.length + 1));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${String(v)}`).join('\n');
}

function text(v: string | number | boolean | undefined | null, empty = '-'): string {
  if (v === undefined || v === null || v === '') return empty;
  // Cells are one line: a multi-line message would break the columns.
  return String(v).replace(/\s*\n\s*/g, ' ');
}

/** Display width: code points, so `µs` or `é` do not misalign (wide CJK glyphs are not handled). */
function width(s: string): number {
  return [...s].length;
}
