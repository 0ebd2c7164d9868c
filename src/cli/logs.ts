/**
 * `weft logs [process] [-f]`: the log files `weft up` keeps under
 * `<dataDir>/logs/` (src/cli/up/log-files.ts), printed the way a person reads
 * them: pino's JSON lines through pino-pretty (colour on a terminal), other
 * lines (a stack trace on stderr) as they are. Without a process, the last
 * lines of every file merged by time, each with its file's name; `-f`
 * follows the files as they grow, until Ctrl-C.
 */
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { invalid } from '../../base/errors.js';
import { type Output, processOutput } from './client/output.js';
import { configFrom } from './flags.js';
import { logsDir } from './up/log-files.js';

interface LogsFlags {
  follow?: boolean;
  lines: string;
  raw?: boolean;
}

/** How often `-f` looks for new lines. */
const FOLLOW_EVERY_MS = 250;
/** The most bytes read from the end of a file for its last lines. */
const TAIL_BYTES = 1 << 20;

/** Turns one stored line into what is printed (pino-pretty for JSON, else the line). */
export type LineFormatter = (line: string) => string;

/** A formatter: pino-pretty for pino's JSON lines; anything else passes through. */
export async function lineFormatter(color: boolean): Promise<LineFormatter> {
  const pretty = (await import('pino-pretty')).default;
  const format = pretty.prettyFactory({ colorize: color, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return (line) => {
    if (!line.startsWith('{')) return line;
    try {
      return format(JSON.parse(line)).replace(/\n$/, '');
    } catch {
      return line;
    }
  };
}

/** The processes that have a log file in `dir`, sorted (`agent-1`, `consul`, `scheduler`, `up`, ...). */
export function logNames(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => f.slice(0, -4))
      .sort();
  } catch {
    return [];
  }
}

/** The last `n` lines of `file`, and its size (where following starts). */
export function tailLines(file: string, n: number): { lines: string[]; size: number } {
  const size = statSync(file).size;
  const from = Math.max(0, size - TAIL_BYTES);
  const text = readRange(file, from, size);
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (from > 0) lines.shift(); // the first one is cut
  return { lines: n === 0 ? [] : lines.slice(-n), size };
}

/** Where a line sits in time: pino's `time`, else undefined (kept in place). */
export function timeOf(line: string): number | undefined {
  const m = /"time":(\d+)/.exec(line);
  return m === null ? undefined : Number(m[1]);
}

/** Lines of several files merged by time (stable: a line without a time stays after the one before it). */
export function mergeByTime(files: ReadonlyArray<{ name: string; lines: readonly string[] }>): Array<{ name: string; line: string }> {
  const all: Array<{ name: string; line: string; at: number; order: number }> = [];
  let order = 0;
  for (const f of files) {
    let last = 0;
    for (const line of f.lines) {
      last = timeOf(line) ?? last;
      all.push({ name: f.name, line, at: last, order: order++ });
    }
  }
  all.sort((a, b) => a.at - b.at || a.order - b.order);
  return all.map(({ name, line }) => ({ name, line }));
}

function readRange(file: string, from: number, to: number): string {
  if (to <= from) return '';
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(to - from);
    let read = 0;
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, from + read);
      if (n === 0) break;
      read += n;
    }
    return buf.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Adds `weft logs`. */
export function registerLogsCommand(program: Command, io: Output = processOutput): void {
  program
    .command('logs [process]')
    .description("show the logs of weft up's processes (consul, scheduler, agent-1, proxy-1, ..., up), pretty; all of them merged without a name")
    .option('-f, --follow', 'keep printing new lines until Ctrl-C')
    .option('-n, --lines <n>', 'how many of the last lines to show first', '50')
    .option('--raw', 'print the stored JSON lines as they are')
    .action(async (name: string | undefined, opts: LogsFlags, cmd: Command) => {
      const config = configFrom(cmd);
      const dir = logsDir(config.dataDir);
      if (!/^[0-9]+$/.test(opts.lines) || Number(opts.lines) > 100_000) throw invalid('WEFT_ERR_ARGUMENT_INVALID', '--lines', opts.lines, 'must be a whole number from 0 to 100000');
      const count = Number(opts.lines);
      const names = logNames(dir);
      if (names.length === 0) throw invalid('WEFT_ERR_ARGUMENT_INVALID', 'process', name ?? '', `no log files in ${dir}: has \`weft up\` run with this data directory (--data-dir, WEFT_DATA_DIR)?`);
      if (name !== undefined && !names.includes(name)) throw invalid('WEFT_ERR_ARGUMENT_INVALID', 'process', name, `no such log in ${dir}; there are: ${names.join(', ')}`);
      const chosen = name === undefined ? names : [name];
      const format: LineFormatter = opts.raw ? (l) => l : await lineFormatter(io.color);
      const width = Math.max(...chosen.map((n) => n.length));
      const show = (file: string, line: string): void => io.out(name === undefined ? `${file.padEnd(width)} | ${format(line)}` : format(line));

      const sizes = new Map<string, number>();
      const tails = chosen.map((n) => {
        const t = tailLines(`${dir}/${n}.log`, count);
        sizes.set(n, t.size);
        return { name: n, lines: t.lines };
      });
      const first = mergeByTime(tails);
      for (const { name: file, line } of name === undefined ? first.slice(-count) : first) show(file, line);
      if (!opts.follow) return;

      let stop = false;
      const onSignal = (): void => {
        stop = true;
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const partial = new Map<string, string>();
      try {
        while (!stop) {
          await new Promise((r) => setTimeout(r, FOLLOW_EVERY_MS));
          for (const n of chosen) {
            const file = `${dir}/${n}.log`;
            let size: number;
            try {
              size = statSync(file).size;
            } catch {
              continue;
            }
            const from = sizes.get(n) ?? 0;
            if (size < from) sizes.set(n, 0); // truncated: start over
            if (size <= (sizes.get(n) ?? 0)) continue;
            const text = (partial.get(n) ?? '') + readRange(file, sizes.get(n) ?? 0, size);
            sizes.set(n, size);
            const lines = text.split('\n');
            partial.set(n, lines.pop() ?? '');
            for (const line of lines) if (line !== '') show(n, line);
          }
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
