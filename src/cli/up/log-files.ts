/**
 * Where `weft up`'s processes log: one file per piece under
 * `<dataDir>/logs/` (`scheduler.log`, `agent-1.log`, `proxy-2.log`, ...),
 * appended across runs, plus `up.log` with weft up's own lines. Children log
 * pino's JSON lines there; weft up writes its own lines in the same shape, so
 * `weft logs` (src/cli/logs.ts) prints every file the same way. Nothing of
 * it reaches the terminal, where the progress and the live view are.
 */
import { type WriteStream, createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** `<dataDir>/logs`. */
export function logsDir(dataDir: string): string {
  return join(dataDir, 'logs');
}

/** weft up's own log: its progress, supervision and stop lines. */
export const UP_LOG = 'up';

/** pino's numeric levels, for weft up's own lines. */
const LEVELS = { info: 30, warn: 40, error: 50 } as const;

/** Append-only log files, one per name, opened on first use. */
export class LogFiles {
  readonly dir: string;
  readonly #streams = new Map<string, WriteStream>();

  constructor(dataDir: string) {
    this.dir = logsDir(dataDir);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** The file of `name`. */
  path(name: string): string {
    return join(this.dir, `${name}.log`);
  }

  /** Appends one line of a child's output as it came (pino JSON, or a stack trace). */
  line(name: string, text: string): void {
    this.#stream(name).write(`${text}\n`);
  }

  /** Appends one of weft up's own lines to up.log, as pino would write it. */
  up(msg: string, level: keyof typeof LEVELS = 'info'): void {
    this.line(UP_LOG, JSON.stringify({ level: LEVELS[level], time: Date.now(), pid: process.pid, name: 'up', msg }));
  }

  /** Flushes and closes every file. */
  async close(): Promise<void> {
    const all = [...this.#streams.values()];
    this.#streams.clear();
    await Promise.all(all.map((s) => new Promise<void>((resolve) => s.end(resolve))));
  }

  #stream(name: string): WriteStream {
    let s = this.#streams.get(name);
    if (s === undefined) {
      s = createWriteStream(this.path(name), { flags: 'a', mode: 0o600 });
      s.on('error', () => undefined); // a full disk must not take weft up down
      this.#streams.set(name, s);
    }
    return s;
  }
}
