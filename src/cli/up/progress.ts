/**
 * `weft up`'s progress: one line per step. On a terminal the running step
 * has a spinner and its elapsed time, redrawn in place, and ends as a check
 * mark with what came up and how long it took:
 *
 *   ✔ scheduler   http://127.0.0.1:7400 (pid 4242)                1.9s
 *   ⠙ hosts       agent-1 healthy, proxy-1 starting                3.1s
 *
 * Elsewhere (a pipe, a CI log, `--detach`'s log file) every event is a plain
 * line, `up        | scheduler: starting weft scheduler`, and nothing is
 * redrawn. Time and timers are injected, so a test replays a terminal exactly.
 */
import { type Clock, type TimerHandle, type Timers, systemClock, systemTimers } from '../../../base/clock.js';
import { paint } from '../client/table.js';

/** Where and how progress is shown. */
export interface ProgressOptions {
  /** Redraw in place (a terminal) or print plain lines. */
  tty: boolean;
  color: boolean;
  write: (text: string) => void;
  /** Every plain line also goes here (weft up's own log file). */
  log?: (line: string) => void;
  now?: Clock;
  timers?: Timers;
}

/** What a step's function may do while it runs. */
export interface StepControl {
  /** Replaces the running step's detail (the spinner line; a plain line when it changes). */
  update(detail: string): void;
  /** A line for plain output only (pids, addresses): a terminal shows the step's summary instead. */
  plain(text: string): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const FRAME_MS = 100;
/** Width of the label column. */
const LABEL = 11;
/** Prefix of weft up's own plain lines. */
export const UP_PREFIX = `${'up'.padEnd(10)}| `;

/** The spinner and the plain lines of weft up's steps. */
export class Progress {
  readonly #o: ProgressOptions;
  readonly #now: Clock;
  readonly #timers: Timers;
  #running: { label: string; detail: string; startedAt: number; frame: number; timer?: TimerHandle } | undefined;

  constructor(opts: ProgressOptions) {
    this.#o = opts;
    this.#now = opts.now ?? systemClock;
    this.#timers = opts.timers ?? systemTimers;
  }

  /**
   * Runs `fn` as the step `label`; its result's `summary` ends the line. A
   * throw marks the step failed (its message on the line) and is rethrown.
   */
  async step<T>(label: string, detail: string, fn: (control: StepControl) => Promise<{ value: T; summary: string }>): Promise<T> {
    const startedAt = this.#now();
    const rec = { label, detail, startedAt, frame: 0 };
    this.#running = rec;
    if (this.#o.tty) this.#draw();
    else this.#plainLine(`${label}: ${detail}`);
    this.#arm();
    const control: StepControl = {
      update: (d) => {
        const r = this.#running;
        if (r !== rec || r.detail === d) return;
        r.detail = d;
        if (this.#o.tty) this.#draw();
        else this.#plainLine(`${label}: ${d}`);
      },
      plain: (text) => {
        if (!this.#o.tty) this.#plainLine(text);
        else this.#o.log?.(text);
      },
    };
    try {
      const { value, summary } = await fn(control);
      if (this.#running === rec) this.#finish('ok', label, summary, startedAt);
      return value;
    } catch (err) {
      // A step closed meanwhile (Ctrl-C while it ran) ends without a line: its piece was stopped, not failed.
      if (this.#running === rec) this.#finish('failed', label, firstLine((err as Error).message), startedAt);
      throw err;
    }
  }

  /** A step that is not needed, with the reason. */
  skip(label: string, reason: string): void {
    if (this.#o.tty) this.#o.write(`  ${paint('-', 'dim', this.#o.color)} ${label.padEnd(LABEL)} ${paint(`skipped: ${reason}`, 'dim', this.#o.color)}\n`);
    else this.#plainLine(`${label}: skipped, ${reason}`);
  }

  /** A line of its own (a warning, a choice made); on a terminal printed above the running step. */
  note(text: string): void {
    if (!this.#o.tty) {
      this.#plainLine(text);
      return;
    }
    this.#o.log?.(text);
    this.#clearLine();
    this.#o.write(`  ${text}\n`);
    if (this.#running !== undefined) this.#draw();
  }

  /** Stops the spinner's timer and abandons the running step (interrupted by Ctrl-C): it ends without a line. */
  close(): void {
    const r = this.#running;
    if (r?.timer !== undefined) this.#timers.clearTimeout(r.timer);
    if (r !== undefined && this.#o.tty) this.#o.write('\n');
    this.#running = undefined;
  }

  #finish(how: 'ok' | 'failed', label: string, summary: string, startedAt: number): void {
    const r = this.#running;
    if (r?.timer !== undefined) this.#timers.clearTimeout(r.timer);
    this.#running = undefined;
    const took = seconds(this.#now() - startedAt);
    if (this.#o.tty) {
      this.#clearLine();
      const mark = how === 'ok' ? paint('✔', 'green', this.#o.color) : paint('✖', 'red', this.#o.color);
      this.#o.write(`  ${mark} ${label.padEnd(LABEL)} ${summary}  ${paint(took, 'dim', this.#o.color)}\n`);
      this.#o.log?.(`${label}: ${how === 'ok' ? summary : `failed: ${summary}`} (${took})`);
    } else {
      this.#plainLine(`${label}: ${how === 'ok' ? summary : `failed: ${summary}`} (${took})`);
    }
  }

  #arm(): void {
    if (!this.#o.tty) return;
    const r = this.#running;
    if (r === undefined) return;
    r.timer = this.#timers.setTimeout(() => {
      if (this.#running !== r) return;
      r.frame = (r.frame + 1) % FRAMES.length;
      this.#draw();
      this.#arm();
    }, FRAME_MS);
  }

  #draw(): void {
    const r = this.#running;
    if (r === undefined) return;
    this.#clearLine();
    const elapsed = paint(seconds(this.#now() - r.startedAt), 'dim', this.#o.color);
    this.#o.write(`  ${paint(FRAMES[r.frame]!, 'yellow', this.#o.color)} ${r.label.padEnd(LABEL)} ${r.detail}  ${elapsed}`);
  }

  #clearLine(): void {
    if (this.#o.tty) this.#o.write('\r\u001b[2K');
  }

  #plainLine(text: string): void {
    this.#o.write(`${UP_PREFIX}${text}\n`);
    this.#o.log?.(text);
  }
}

/** 0.4s, 12.3s, 1m05s. */
export function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
}

function firstLine(text: string): string {
  const i = text.indexOf('\n');
  return i < 0 ? text : `${text.slice(0, i)} ...`;
}
