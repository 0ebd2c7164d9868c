/**
 * Script checks, run as Consul runs them (agent/checks/check.go CheckMonitor):
 * `Args` is executed directly, without a shell; the older `Script` string goes
 * through `$SHELL -c` (`/bin/sh` when SHELL is unset). The process gets its own
 * process group, stdin from /dev/null, and stdout and stderr into one buffer
 * that keeps the last OutputMaxSize bytes (default 4 KiB). Verdicts: exit 0
 * passing, exit 1 warning, anything else (another code, a signal, a failure to
 * start) critical. At the timeout (default 30 s) the whole group gets SIGKILL
 * and the check reads `Timed out (<timeout>) running check`, followed by what
 * the script printed.
 */
import { spawn } from 'node:child_process';
import { formatGoDuration } from '../../../base/duration.js';
import type { CheckStatus } from '../state/types.js';
import { DEFAULT_OUTPUT_MAX_SIZE } from './probes.js';

/** Consul's timeout for a script check that sets none. */
export const DEFAULT_SCRIPT_TIMEOUT_MS = 30_000;

/** What to execute: argv (no shell) or a shell command line. */
export type { ScriptCommand } from '../state/types.js';
import type { ScriptCommand } from '../state/types.js';

/** One script run. */
export interface ScriptProbe {
  readonly run: ScriptCommand;
  readonly timeoutMs: number;
  readonly outputMaxSize?: number;
  /** Aborting kills the process group and resolves at once (the check was stopped). */
  readonly signal?: AbortSignal;
}

/** A script's verdict; `timedOut` results skip the thresholds, as in Consul. */
export interface ScriptResult {
  readonly status: CheckStatus;
  readonly output: string;
  readonly timedOut?: true;
}

/** Runs the script once and reports its verdict; never rejects. */
export function probeScript(p: ScriptProbe): Promise<ScriptResult> {
  const max = p.outputMaxSize ?? DEFAULT_OUTPUT_MAX_SIZE;
  const [file, argv] = 'args' in p.run ? [p.run.args[0]!, p.run.args.slice(1)] : [shell(), ['-c', p.run.command]];
  return new Promise((resolve) => {
    const out = new TailBuffer(max);
    let settled = false;
    const finish = (r: ScriptResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      p.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    let child: ReturnType<typeof spawn>;
    try {
      // detached: a new session and process group, so a timeout can kill the script and everything it started.
      child = spawn(file, argv, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      resolve({ status: 'critical', output: startError(file, err) });
      return;
    }
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const onAbort = (): void => {
      killGroup();
      finish({ status: 'critical', output: 'check stopped' });
    };
    let exited = false;
    let onExit: (() => void) | undefined;
    child.once('exit', () => {
      exited = true;
      onExit?.();
    });
    child.stdout!.on('data', (c: Buffer) => out.write(c));
    child.stderr!.on('data', (c: Buffer) => out.write(c));
    child.once('error', (err) => finish({ status: 'critical', output: startError(file, err) }));
    // 'close' waits for the output pipes too, so nothing the script printed is lost.
    child.once('close', (code) => {
      finish({ status: code === 0 ? 'passing' : code === 1 ? 'warning' : 'critical', output: out.text() });
    });
    const timer = setTimeout(() => {
      killGroup();
      // Report once the script itself is gone (a grandchild that left the group could hold the pipes open).
      const report = (): void => {
        const output = out.text();
        const msg = `Timed out (${formatGoDuration(p.timeoutMs)}) running check`;
        child.stdout!.destroy();
        child.stderr!.destroy();
        finish({ status: 'critical', output: output === '' ? msg : `${msg}\n\n${output}`, timedOut: true });
      };
      if (exited) report();
      else onExit = report;
    }, p.timeoutMs);
    if (p.signal?.aborted) onAbort();
    else p.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The shell `Script` checks run through: $SHELL, else /bin/sh (Consul's exec.Script). */
function shell(): string {
  const s = process.env['SHELL'];
  return s === undefined || s === '' ? '/bin/sh' : s;
}

/** Go's wording for a command that cannot start. */
function startError(file: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') {
    return file.includes('/') ? `fork/exec ${file}: no such file or directory` : `exec: "${file}": executable file not found in $PATH`;
  }
  if (e.code === 'EACCES') return `fork/exec ${file}: permission denied`;
  return `fork/exec ${file}: ${e.message}`;
}

/**
 * Keeps the last `max` bytes written and counts them all (Consul uses a
 * circular buffer): the end of a long output, where the error usually is.
 */
class TailBuffer {
  private chunks: Buffer[] = [];
  private held = 0;
  private total = 0;

  constructor(private readonly max: number) {}

  write(c: Buffer): void {
    this.total += c.length;
    this.chunks.push(c);
    this.held += c.length;
    while (this.chunks.length > 1 && this.held - this.chunks[0]!.length >= this.max) {
      this.held -= this.chunks.shift()!.length;
    }
  }

  /** The output, with Consul's note when it was cut: "Captured 4096 of 10000 bytes\n...\n<tail>". */
  text(): string {
    const all = Buffer.concat(this.chunks);
    const kept = all.subarray(Math.max(0, all.length - this.max));
    const text = kept.toString('utf8');
    return this.total > this.max ? `Captured ${kept.length} of ${this.total} bytes\n...\n${text}` : text;
  }
}
