/**
 * `weft up`'s child processes: each piece is `weft <subcommand>` in its own
 * process with its output prefixed (`scheduler | ...`), started in order,
 * awaited until healthy, and stopped in reverse order with a deadline.
 *
 * Children get their own process group, so a terminal's Ctrl-C reaches only
 * `weft up`, which then stops them in order (proxy before agent before
 * scheduler before Consul) rather than all at once. If `weft up` itself dies,
 * an exit hook still SIGKILLs whatever is left.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WeftError } from '../../../base/errors.js';
import type { Probe } from './probes.js';

/** How often health is probed while waiting. */
const PROBE_EVERY_MS = 250;
/** Lines of output kept per child for error messages. */
const TAIL_LINES = 12;

/** One started piece. */
interface Running {
  name: string;
  proc: ChildProcess;
  tail: string[];
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
}

/** What to run: `argv` after the node executable. */
export interface ChildSpec {
  name: string;
  argv: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Starts, watches and stops `weft up`'s children. */
export class ChildSet {
  readonly #children: Running[] = [];
  readonly #write: (line: string) => void;
  readonly #width: number;
  #stopping = false;
  #onUnexpectedExit: ((name: string, code: number | null) => void) | undefined;
  readonly #exitHook = (): void => {
    for (const c of this.#children) if (c.exitCode === undefined) killGroup(c.proc, 'SIGKILL');
  };

  /** `write` receives whole prefixed lines; `width` pads names so the bars line up. */
  constructor(write: (line: string) => void, width = 10) {
    this.#write = write;
    this.#width = width;
    process.on('exit', this.#exitHook);
  }

  /** Called once when a daemon exits while nobody asked it to. */
  onUnexpectedExit(fn: (name: string, code: number | null) => void): void {
    this.#onUnexpectedExit = fn;
  }

  /** Starts a daemon child and waits until `probe` passes, it exits, or `timeoutMs` passes. */
  async startDaemon(spec: ChildSpec, probe: Probe, timeoutMs: number): Promise<void> {
    const c = this.#spawn(spec);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (c.exitCode !== undefined) throw this.#failure(c, `exited with code ${c.exitCode} before it was healthy`);
      if (await probe()) break;
      if (Date.now() > deadline) throw this.#failure(c, `was not healthy within ${Math.round(timeoutMs / 1000)}s`);
      await Promise.race([c.exited, sleep(PROBE_EVERY_MS)]);
    }
    void c.exited.then((code) => {
      if (!this.#stopping) this.#onUnexpectedExit?.(c.name, code);
    });
  }

  /** Runs a one-shot child (`weft ca init`) to completion; it must exit 0. */
  async runOnce(spec: ChildSpec, timeoutMs: number): Promise<void> {
    const c = this.#spawn(spec);
    const code = await Promise.race([c.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      killGroup(c.proc, 'SIGKILL');
      throw this.#failure(c, `did not finish within ${Math.round(timeoutMs / 1000)}s`);
    }
    if (code !== 0) throw this.#failure(c, `exited with code ${code}`);
  }

  /**
   * Stops every running child, newest first: SIGTERM, then SIGKILL when its
   * share of `deadlineMs` is spent. Resolves when all have exited.
   */
  async stopAll(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const end = Date.now() + deadlineMs;
    for (const c of [...this.#children].reverse()) {
      if (c.exitCode !== undefined) continue;
      this.#write(`${this.#prefix('up')}stopping ${c.name}`);
      killGroup(c.proc, 'SIGTERM');
      const left = Math.max(100, end - Date.now());
      const code = await Promise.race([c.exited, sleep(left).then(() => 'late' as const)]);
      if (code === 'late') {
        this.#write(`${this.#prefix('up')}${c.name} did not stop in time: SIGKILL`);
        killGroup(c.proc, 'SIGKILL');
        await Promise.race([c.exited, sleep(2000)]);
      }
    }
    process.off('exit', this.#exitHook);
  }

  /** SIGKILLs everything at once (a second Ctrl-C). */
  killAll(): void {
    this.#stopping = true;
    this.#exitHook();
  }

  #spawn(spec: ChildSpec): Running {
    const proc = spawn(process.execPath, spec.argv, {
      env: spec.env ?? process.env,
      cwd: spec.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const c: Running = { name: spec.name, proc, tail: [], exited: Promise.resolve(null), exitCode: undefined };
    c.exited = new Promise((resolve) => {
      proc.once('error', (err) => {
        c.tail.push(err.message);
        c.exitCode = null;
        resolve(null);
      });
      proc.once('close', (code, signal) => {
        c.exitCode = code ?? (signal === null ? null : 128);
        resolve(c.exitCode);
      });
    });
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream === null) continue;
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        c.tail.push(line);
        if (c.tail.length > TAIL_LINES) c.tail.shift();
        this.#write(`${this.#prefix(spec.name)}${line}`);
      });
    }
    this.#children.push(c);
    return c;
  }

  #prefix(name: string): string {
    return `${name.padEnd(this.#width)}| `;
  }

  #failure(c: Running, what: string): WeftError {
    const tail = c.tail.length > 0 ? `; its last output:\n  ${c.tail.join('\n  ')}` : '';
    return new WeftError('WEFT_ERR_UP_START', `${c.name} ${what}${tail}`, { key: 'piece', value: c.name });
  }
}

function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal); // the whole group: a child's own children go too
  } catch {
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
