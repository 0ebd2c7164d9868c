/**
 * `weft up`'s child processes: each piece is `weft <subcommand>` in its own
 * process with its output sent to its log file (or prefixed, `scheduler | ...`), started in order,
 * awaited until healthy, supervised, and stopped in reverse order with a
 * deadline.
 *
 * Children get their own process group, so a terminal's Ctrl-C reaches only
 * `weft up`, which then stops them in order (proxy before agent before
 * scheduler before Consul) rather than all at once. If `weft up` itself dies,
 * an exit hook still SIGKILLs whatever is left.
 *
 * Supervision: a daemon that was healthy and then dies while nobody asked it
 * to stop is restarted in its place (so the stop order holds), at once the
 * first time and with backoff after that (restart-policy.ts); after too many
 * crashes within the window `weft up` gives up on that piece, says so, and
 * keeps the others running. Every decision is one line on the terminal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type Clock, type Random, systemClock, systemRandom, systemTimers, type TimerHandle, type Timers } from '../../../base/clock.js';
import { WeftError } from '../../../base/errors.js';
import type { Probe } from './probes.js';
import { decideRestart, recentCrashes, type RestartPolicy, UP_RESTART_POLICY } from './restart-policy.js';

/** How often health is probed while waiting. */
const PROBE_EVERY_MS = 250;
/** Lines of output kept per child for error messages. */
const TAIL_LINES = 12;

/** How a process ended: its exit code, or the signal that killed it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One started process. */
interface Running {
  name: string;
  proc: ChildProcess;
  tail: string[];
  /** Resolves once the process exited and its output is read. */
  exited: Promise<number | null>;
  exitCode: number | null | undefined;
  /** Resolves at the process's exit (before its output may be fully read). */
  died: Promise<ExitStatus>;
}

/** One piece: the process running it now, and its crash history. */
interface Slot {
  spec: ChildSpec;
  current: Running;
  probe?: Probe;
  /** Crash times on the clock's timeline, within the policy's window. */
  crashes: number[];
  /** A restart waiting out its backoff. */
  pending?: TimerHandle;
  gaveUp: boolean;
}

/** What to run: `argv` after the node executable (or after `command`, for a piece that is not weft). */
export interface ChildSpec {
  name: string;
  argv: string[];
  /** The executable; default: this node. */
  command?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** How supervision decides and waits; real time by default. */
export interface ChildSetOptions {
  /** Name padding, so the bars line up. */
  width?: number;
  policy?: RestartPolicy;
  clock?: Clock;
  random?: Random;
  timers?: Timers;
  /** How long a restarted piece may take to be healthy before a warning. */
  restartHealthyWithinMs?: number;
  /**
   * Where a child's own output lines go (weft up: its log file); default: to
   * `write`, prefixed with the child's name. Supervision lines always go to `write`.
   */
  childOutput?: (name: string, line: string) => void;
}

/** Starts, watches, restarts and stops `weft up`'s children. */
export class ChildSet {
  readonly #slots: Slot[] = [];
  readonly #write: (line: string) => void;
  readonly #width: number;
  readonly #policy: RestartPolicy;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #timers: Timers;
  readonly #healthyWithinMs: number;
  readonly #childOutput: ((name: string, line: string) => void) | undefined;
  #stopping = false;
  #onGiveUp: ((name: string) => void) | undefined;
  readonly #exitHook = (): void => {
    for (const s of this.#slots) if (s.current.exitCode === undefined) killGroup(s.current.proc, 'SIGKILL');
  };

  /** `write` receives whole prefixed lines. */
  constructor(write: (line: string) => void, opts: ChildSetOptions = {}) {
    this.#write = write;
    this.#width = opts.width ?? 10;
    this.#policy = opts.policy ?? UP_RESTART_POLICY;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? systemRandom;
    this.#timers = opts.timers ?? systemTimers;
    this.#healthyWithinMs = opts.restartHealthyWithinMs ?? 60_000;
    this.#childOutput = opts.childOutput;
    process.on('exit', this.#exitHook);
  }

  /** Called when supervision gives up on a piece (the others keep running). */
  onGiveUp(fn: (name: string) => void): void {
    this.#onGiveUp = fn;
  }

  /** The pid of the process running piece `name` now, if it runs. */
  pidOf(name: string): number | undefined {
    const s = this.#slots.find((x) => x.spec.name === name);
    return s === undefined || s.current.exitCode !== undefined ? undefined : s.current.proc.pid;
  }

  /**
   * Starts a daemon child and waits until `probe` passes, it exits, or
   * `timeoutMs` passes; from then on it is supervised. Resolves to its pid.
   */
  async startDaemon(spec: ChildSpec, probe: Probe, timeoutMs: number): Promise<number | undefined> {
    const slot = this.#add(spec, probe);
    const c = slot.current;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (c.exitCode !== undefined) throw this.#failure(c, `exited with code ${c.exitCode} before it was healthy`);
      if (await probe()) break;
      if (Date.now() > deadline) throw this.#failure(c, `was not healthy within ${Math.round(timeoutMs / 1000)}s`);
      await Promise.race([c.exited, sleep(PROBE_EVERY_MS)]);
    }
    this.#supervise(slot, c);
    return c.proc.pid;
  }

  /** Runs a one-shot child (`weft ca init`) to completion; it must exit 0. */
  async runOnce(spec: ChildSpec, timeoutMs: number): Promise<void> {
    const c = this.#add(spec).current;
    const code = await Promise.race([c.exited, sleep(timeoutMs).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      killGroup(c.proc, 'SIGKILL');
      throw this.#failure(c, `did not finish within ${Math.round(timeoutMs / 1000)}s`);
    }
    if (code !== 0) throw this.#failure(c, `exited with code ${code}`);
  }

  /**
   * Stops every running child, newest piece first: SIGTERM, then SIGKILL
   * when its share of `deadlineMs` is spent. Restarts waiting for their
   * backoff are cancelled. Resolves when all have exited.
   */
  async stopAll(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    this.#cancelRestarts();
    const end = Date.now() + deadlineMs;
    for (const s of [...this.#slots].reverse()) {
      const c = s.current;
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
    this.#cancelRestarts();
    this.#exitHook();
  }

  #add(spec: ChildSpec, probe?: Probe): Slot {
    const slot: Slot = { spec, current: this.#spawn(spec), crashes: [], gaveUp: false, ...(probe === undefined ? {} : { probe }) };
    this.#slots.push(slot);
    return slot;
  }

  /** Watches `c`, the process of `slot`, for a death nobody asked for. */
  #supervise(slot: Slot, c: Running): void {
    void c.died.then((status) => {
      if (this.#stopping || slot.current !== c) return;
      const now = this.#clock();
      slot.crashes = recentCrashes([...slot.crashes, now], now, this.#policy.windowMs);
      const decision = decideRestart(slot.crashes, now, this.#policy, this.#random);
      const what = `${c.name} (pid ${c.proc.pid}) ${describeExit(status)}`;
      const within = `within ${formatSeconds(this.#policy.windowMs)}`;
      if (decision.action === 'give-up') {
        slot.gaveUp = true;
        this.#say(`${what}: ${decision.crashes} crashes ${within}, giving up on it; the other pieces keep running (Ctrl-C stops them)`);
        this.#onGiveUp?.(c.name);
        return;
      }
      if (decision.delayMs === 0) {
        this.#say(`${what}: restarting it now`);
        this.#restart(slot, now);
        return;
      }
      this.#say(`${what}: restarting it in ${formatSeconds(decision.delayMs)} (crash ${decision.crashes} ${within}; ${this.#policy.maxCrashes} give up)`);
      slot.pending = this.#timers.setTimeout(() => {
        slot.pending = undefined;
        if (!this.#stopping) this.#restart(slot, now);
      }, decision.delayMs);
    });
  }

  /** Starts `slot`'s piece again and says when it is healthy; `diedAt` is on the clock's timeline. */
  #restart(slot: Slot, diedAt: number): void {
    const c = this.#spawn(slot.spec);
    slot.current = c;
    this.#supervise(slot, c);
    const probe = slot.probe;
    if (probe === undefined) return;
    void (async () => {
      const warnAt = Date.now() + this.#healthyWithinMs;
      let warned = false;
      while (!this.#stopping && slot.current === c && c.exitCode === undefined) {
        if (await probe()) {
          if (!this.#stopping && slot.current === c && c.exitCode === undefined) {
            this.#say(`${c.name} is healthy again (pid ${c.proc.pid}, ${formatSeconds(this.#clock() - diedAt)} after it died)`);
          }
          return;
        }
        if (!warned && Date.now() > warnAt) {
          warned = true;
          this.#say(`${c.name} (pid ${c.proc.pid}) is not healthy ${formatSeconds(this.#healthyWithinMs)} after its restart; still waiting`);
        }
        await Promise.race([c.exited, sleep(PROBE_EVERY_MS)]);
      }
    })();
  }

  #cancelRestarts(): void {
    for (const s of this.#slots) {
      if (s.pending !== undefined) this.#timers.clearTimeout(s.pending);
      s.pending = undefined;
    }
  }

  #spawn(spec: ChildSpec): Running {
    const proc = spawn(spec.command ?? process.execPath, spec.argv, {
      env: spec.env ?? process.env,
      cwd: spec.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const c: Running = { name: spec.name, proc, tail: [], exited: Promise.resolve(null), exitCode: undefined, died: Promise.resolve({ code: null, signal: null }) };
    c.died = new Promise((resolve) => {
      proc.once('error', () => resolve({ code: null, signal: null }));
      proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
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
        if (this.#childOutput !== undefined) this.#childOutput(spec.name, line);
        else this.#write(`${this.#prefix(spec.name)}${line}`);
      });
    }
    return c;
  }

  #say(text: string): void {
    this.#write(`${this.#prefix('up')}${text}`);
  }

  #prefix(name: string): string {
    return `${name.padEnd(this.#width)}| `;
  }

  #failure(c: Running, what: string): WeftError {
    const tail = c.tail.length > 0 ? `; its last output:\n  ${c.tail.join('\n  ')}` : '';
    return new WeftError('WEFT_ERR_UP_START', `${c.name} ${what}${tail}`, { key: 'piece', value: c.name });
  }
}

/** "exited with code 1", "was killed by SIGKILL". */
export function describeExit(status: ExitStatus): string {
  if (status.signal !== null) return `was killed by ${status.signal}`;
  if (status.code !== null) return `exited with code ${status.code}`;
  return 'could not be started';
}

/** 0.62s, 1.4s, 60s. */
function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return `${s < 1 ? s.toFixed(2) : s < 10 ? s.toFixed(1) : Math.round(s)}s`;
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
