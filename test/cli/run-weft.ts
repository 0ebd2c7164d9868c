/**
 * Runs the real `weft` binary as a user would (a child process, so stdout is a
 * pipe and not a TTY), asynchronously: the servers these tests talk to live in
 * the test process, and a synchronous spawn would block their event loop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { eventually } from '../helpers/eventually.js';

const bin = new URL('../../bin/weft.js', import.meta.url).pathname;

/** What a run printed and how it ended. */
export interface WeftRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `weft ...args` with `env` on top of a clean environment (no WEFT_* leaking in from the caller). */
export function weft(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; cwd?: string } = {}): Promise<WeftRun> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('WEFT_') && k !== 'CONSUL_HTTP_ADDR') env[k] = v;
  Object.assign(env, { WEFT_LOG_LEVEL: 'warn' }, opts.env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A `weft up` started by a test: the child, its exit code, and when it said it is up. */
export interface UpRun {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves once it says it is up; rejects with its output if it exits first, or after 180 s. */
  readonly ready: Promise<void>;
}

/**
 * Starts `weft --config <configFile> up --driver process ...args` from the
 * repository root with no WEFT_* or CONSUL_HTTP_ADDR from the caller, handing
 * everything it prints to `onOutput`. Returns at once, so a teardown can stop
 * it even when it never comes up.
 */
export function startWeftUp(configFile: string, onOutput: (text: string) => void, output: () => string, args: string[] = []): UpRun {
  const proc = spawn(process.execPath, [bin, '--config', configFile, 'up', '--driver', 'process', '--stop-timeout', '15s', ...args], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, WEFT_CONFIG: '', WEFT_DATA_DIR: '', CONSUL_HTTP_ADDR: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (b: Buffer) => onOutput(b.toString()));
  proc.stderr!.on('data', (b: Buffer) => onOutput(b.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const ready = eventually(
    () => (output().includes('weft is up on this machine') ? true : proc.exitCode !== null ? Promise.reject(new Error(output())) : undefined),
    180_000,
    'weft up',
    200,
  ).then(() => undefined);
  return { proc, exited, ready };
}

/**
 * A base for `agent.outboundPortBase` under `weft up`: host N's local services
 * get ports from base + (N-1) x 100, so the first `span` ports of each of
 * `hosts` ranges must be free. Picked below the kernel's ephemeral range
 * (32768+, where freePort's ports and client connections live) and below the
 * scheduler's default dynamic range (20000-32000), then checked by binding.
 */
export async function freeOutboundBase(hosts = 2, span = 8): Promise<number> {
  const canBind = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 12_000 + Math.floor(Math.random() * 70) * 100 + 1;
    let ok = true;
    for (let h = 0; h < hosts && ok; h++) for (let i = 0; i < span && ok; i++) ok = await canBind(base + h * 100 + i);
    if (ok) return base;
  }
  throw new Error('no free outbound port range between 12000 and 19000');
}
