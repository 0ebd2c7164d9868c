/**
 * `weft up --detach` and `weft down`. A running `weft up` (in front or in the
 * background) leaves `<dataDir>/up.json` with its pid, so a second one
 * refuses to start and `weft down` knows whom to stop.
 *
 * `--detach` starts the same command again in the background (its own
 * session, output to `<dataDir>/logs/up.out`), prints weft up's progress
 * from `logs/up.log` as it comes, and returns once the background one says
 * it is up (or exits, with its last lines). `weft down` sends SIGTERM (what
 * Ctrl-C does: the demo's workloads, then every piece, in order) and follows
 * up.log until the process is gone; past its timeout it sends a second
 * SIGTERM, which kills what is left at once, as a second Ctrl-C does.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from '../../../base/errors.js';
import { LogFiles, UP_LOG } from './log-files.js';
import { seconds, UP_PREFIX } from './progress.js';

/** What up.json holds. */
export interface UpRecord {
  pid: number;
  startedAt: string;
  /** --detach: runs in the background. */
  background: boolean;
}

/** The line a background weft up logs once it is up: the parent returns when it sees it. */
export const READY_LINE = 'running in the background';

/** `<dataDir>/up.json`. */
export function upRecordFile(dataDir: string): string {
  return join(dataDir, 'up.json');
}

/** The weft up recorded in `dataDir` if it still runs (the pid alive and a weft process), else undefined. */
export function runningUp(dataDir: string): UpRecord | undefined {
  let rec: UpRecord;
  try {
    rec = JSON.parse(readFileSync(upRecordFile(dataDir), 'utf8')) as UpRecord;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(rec.pid) || !alive(rec.pid)) return undefined;
  // A pid reused by something else since: /proc says what runs under it.
  try {
    const cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
    if (!cmdline.includes('\u0000up\u0000')) return undefined;
  } catch {
    // no /proc: trust the pid
  }
  return rec;
}

/** Records this process as the weft up of `dataDir`; refuses when another one runs there. */
export function claimUp(dataDir: string, background: boolean): void {
  const other = runningUp(dataDir);
  if (other !== undefined && other.pid !== process.pid) {
    throw new WeftError('WEFT_ERR_UP_START', `weft up already runs with data directory ${dataDir} (pid ${other.pid}, since ${other.startedAt}${other.background ? ', in the background' : ''}): \`weft down\` stops it`, {
      key: 'dataDir',
      value: dataDir,
    });
  }
  const rec: UpRecord = { pid: process.pid, startedAt: new Date().toISOString(), background };
  writeFileSync(upRecordFile(dataDir), `${JSON.stringify(rec)}\n`, { mode: 0o600 });
}

/** Removes the record if it is this process's. */
export function releaseUp(dataDir: string): void {
  try {
    const rec = JSON.parse(readFileSync(upRecordFile(dataDir), 'utf8')) as UpRecord;
    if (rec.pid === process.pid) rmSync(upRecordFile(dataDir), { force: true });
  } catch {
    // already gone
  }
}

/**
 * Starts `argv` (weft up's own arguments plus `--background`) detached, and
 * prints its progress until it is up. Resolves to the background pid; throws
 * WEFT_ERR_UP_START with its last lines when it exits first or `timeoutMs` passes.
 */
export async function startDetached(opts: { dataDir: string; argv: string[]; write: (text: string) => void; timeoutMs: number }): Promise<number> {
  const files = new LogFiles(opts.dataDir);
  const upLog = files.path(UP_LOG);
  const outFile = join(files.dir, 'up.out');
  const from = existsSync(upLog) ? statSync(upLog).size : 0;
  const out = openSync(outFile, 'a', 0o600);
  const child = spawn(process.execPath, [...process.execArgv, ...opts.argv], { detached: true, stdio: ['ignore', out, out], env: process.env });
  closeSync(out);
  child.unref();
  let exited: number | null | undefined;
  child.once('exit', (code, signal) => {
    exited = code ?? (signal === null ? 1 : 128);
  });
  const pid = child.pid;
  if (pid === undefined) throw new WeftError('WEFT_ERR_UP_START', 'could not start weft up in the background', { key: 'detach', value: true });
  const follower = followUpLog(upLog, from);
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    for (const msg of follower.next()) {
      opts.write(`${UP_PREFIX}${msg}\n`);
      if (msg.includes(READY_LINE)) return pid;
    }
    if (exited !== undefined) {
      const tail = readTail(outFile, 2000);
      throw new WeftError('WEFT_ERR_UP_START', `weft up in the background exited with code ${exited} before it was up${tail === '' ? '' : `; its last output:\n${tail}`}`, { key: 'detach', value: exited });
    }
    if (Date.now() > deadline) throw new WeftError('WEFT_ERR_UP_START', `weft up in the background (pid ${pid}) was not up within ${seconds(opts.timeoutMs)}; \`weft logs up\` shows where it is, \`weft down\` stops it`, { key: 'detach', value: pid });
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Stops the weft up of `dataDir` (SIGTERM) and prints its lines until it is
 * gone. Returns false when none runs. Throws WEFT_ERR_UP_START when it is
 * still there after `timeoutMs` plus the second signal's 10 s.
 */
export async function stopUp(opts: { dataDir: string; write: (text: string) => void; timeoutMs: number }): Promise<boolean> {
  const rec = runningUp(opts.dataDir);
  if (rec === undefined) return false;
  const upLog = new LogFiles(opts.dataDir).path(UP_LOG);
  const follower = followUpLog(upLog, existsSync(upLog) ? statSync(upLog).size : 0);
  const started = Date.now();
  opts.write(`stopping weft up (pid ${rec.pid}${rec.background ? ', in the background' : ''})\n`);
  process.kill(rec.pid, 'SIGTERM');
  let forced = false;
  while (alive(rec.pid)) {
    for (const msg of follower.next()) opts.write(`${UP_PREFIX}${msg}\n`);
    const waited = Date.now() - started;
    if (!forced && waited > opts.timeoutMs) {
      forced = true;
      opts.write(`weft up did not stop within ${seconds(opts.timeoutMs)}: a second SIGTERM kills what is left\n`);
      process.kill(rec.pid, 'SIGTERM');
    }
    if (forced && waited > opts.timeoutMs + 10_000) {
      throw new WeftError('WEFT_ERR_UP_START', `weft up (pid ${rec.pid}) is still running ${seconds(waited)} after \`weft down\`; \`weft logs up\` says why`, { key: 'pid', value: rec.pid });
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const msg of follower.next()) opts.write(`${UP_PREFIX}${msg}\n`);
  opts.write(`weft up stopped (${seconds(Date.now() - started)})\n`);
  return true;
}

/** Reads up.log's new JSON lines from `from` on, returning their messages. */
function followUpLog(file: string, from: number): { next(): string[] } {
  let offset = from;
  let partial = '';
  return {
    next() {
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        return [];
      }
      if (size <= offset) return [];
      const fd = openSync(file, 'r');
      const buf = Buffer.alloc(size - offset);
      try {
        readSync(fd, buf, 0, buf.length, offset);
      } finally {
        closeSync(fd);
      }
      offset = size;
      const lines = (partial + buf.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      const out: string[] = [];
      for (const line of lines) {
        try {
          const msg = (JSON.parse(line) as { msg?: unknown }).msg;
          if (typeof msg === 'string') out.push(msg);
        } catch {
          if (line !== '') out.push(line);
        }
      }
      return out;
    },
  };
}

function readTail(file: string, bytes: number): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
