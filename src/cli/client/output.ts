/**
 * Where the client commands write. One object so tests could swap it, and so
 * the rule "colour only on a terminal" is decided in one place.
 */
import { colorFor } from './table.js';

/** The client commands' output. */
export interface Output {
  /** A block of text plus a newline, to stdout. */
  out(text: string): void;
  /** Raw text to stdout (progress redraws). */
  write(text: string): void;
  /** Raw text to stderr. */
  err(text: string): void;
  /** The API's JSON answer, indented, to stdout. */
  json(value: unknown): void;
  /** Whether stdout / stderr are terminals, and colour is wanted on stdout. */
  readonly tty: boolean;
  readonly errTty: boolean;
  readonly color: boolean;
}

/** stdout and stderr of this process. */
export const processOutput: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  write: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  json: (value) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`),
  get tty() {
    return process.stdout.isTTY === true;
  },
  get errTty() {
    return process.stderr.isTTY === true;
  },
  get color() {
    return colorFor(process.stdout);
  },
};
