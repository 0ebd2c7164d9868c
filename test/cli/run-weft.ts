/**
 * Runs the real `weft` binary as a user would (a child process, so stdout is a
 * pipe and not a TTY), asynchronously: the servers these tests talk to live in
 * the test process, and a synchronous spawn would block their event loop.
 */
import { spawn } from 'node:child_process';

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
