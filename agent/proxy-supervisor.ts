/**
 * Keeps this host's `weft proxy` running. The proxy is started detached (its
 * own session, output to `<stateDir>/proxy.log`) and recorded in
 * `<stateDir>/proxy.pid` with its /proc start time, so a restarted agent finds
 * and adopts the same proxy instead of starting a second one: restarting the
 * agent never interrupts traffic. A proxy that dies is restarted with backoff
 * (1 s doubling to 30 s, equal jitter; reset once it has stayed up for a minute).
 *
 * The proxy's own Consul token: with `consulToken`, every start reads the
 * token from that file (refused when others may read it) and hands it to the
 * proxy as CONSUL_HTTP_TOKEN in place of whatever the agent's environment
 * holds, so the proxy runs with its own least-privilege token (docs/acl/) and
 * a token rotated in the file applies at the proxy's next start.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../base/atomic-write.js';
import { backoffDelayMs } from '../base/backoff.js';
import { type Random, systemRandom } from '../base/clock.js';
import { ENV_CONSUL_HTTP_TOKEN } from '../base/env.js';
import { isWeftError, WeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';

export interface ProxySupervisorOptions {
  /** argv of the proxy, e.g. [process.execPath, 'bin/weft.js', 'proxy', ...]. */
  command: readonly string[];
  env: NodeJS.ProcessEnv;
  /**
   * The proxy's own Consul token: `file` holds it on its first line, `key` is
   * the setting that named the file (for errors). Its CONSUL_HTTP_TOKEN
   * replaces the one in `env`.
   */
  consulToken?: { file: string; key: string };
  /** Holds proxy.pid and proxy.log. */
  stateDir: string;
  logger: Logger;
  pollMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Uptime after which the backoff resets. */
  stableMs?: number;
  /** Draws the restart delay in [ceiling/2, ceiling]; seeded in tests. */
  random?: Random;
}

/** The shortest token accepted from a token file (Consul's are UUIDs, 36 characters). */
const MIN_TOKEN_LENGTH = 8;

interface PidRecord {
  pid: number;
  procStart: string | undefined;
}

/** Starts, adopts and restarts the host proxy. */
export class ProxySupervisor {
  private readonly opts: Required<Omit<ProxySupervisorOptions, 'consulToken'>> & Pick<ProxySupervisorOptions, 'consulToken'>;
  private current: PidRecord | undefined;
  private startedAt = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private restartAt = 0;
  private running = false;
  /** How many times the proxy was (re)started by this supervisor. */
  starts = 0;
  /** How many times the proxy was found dead and a restart was scheduled. */
  restarts = 0;

  constructor(opts: ProxySupervisorOptions) {
    this.opts = { pollMs: 500, backoffBaseMs: 1000, backoffMaxMs: 30_000, stableMs: 60_000, random: systemRandom, ...opts };
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  }

  /**
   * The token in a token file: its first line, trimmed. Throws
   * WEFT_ERR_CONFIG_INVALID naming `key` and the file when it cannot be read,
   * is empty or too short, or when its group or others may read it (a token
   * is a password: chmod 600).
   */
  static readConsulTokenFile(file: string, key: string): string {
    const refuse = (why: string, cause?: unknown): WeftError =>
      new WeftError('WEFT_ERR_CONFIG_INVALID', `${key}: ${file} ${why}`, { key, value: file, ...(cause === undefined ? {} : { cause }) });
    let text: string;
    try {
      const mode = statSync(file).mode;
      if ((mode & 0o077) !== 0) throw refuse(`has mode ${(mode & 0o777).toString(8)}, which lets others read the token (chmod 600 ${file})`);
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (isWeftError(err)) throw err;
      throw refuse(`cannot be read: ${(err as Error).message}`, err);
    }
    const token = (text.split('\n')[0] ?? '').trim();
    if (token === '') throw refuse('is empty: put the token on its first line');
    if (token.length < MIN_TOKEN_LENGTH) throw refuse(`holds ${token.length} characters on its first line, too few for a token`);
    return token;
  }

  /** The proxy's pid while it runs. */
  get pid(): number | undefined {
    return this.current !== undefined && isAlive(this.current) ? this.current.pid : undefined;
  }

  /**
   * Adopts a running proxy or starts one, then watches it. Throws
   * WEFT_ERR_CONFIG_INVALID when the proxy's token file is unusable, before
   * anything starts.
   */
  start(): void {
    if (this.opts.consulToken !== undefined) ProxySupervisor.readConsulTokenFile(this.opts.consulToken.file, this.opts.consulToken.key);
    this.running = true;
    const recorded = this.readPid();
    if (recorded !== undefined && isAlive(recorded)) {
      this.current = recorded;
      this.startedAt = Date.now();
      this.opts.logger.info({ pid: recorded.pid }, 'adopted the running weft proxy');
    } else {
      this.spawn();
    }
    this.timer = setInterval(() => this.check(), this.opts.pollMs);
    this.timer.unref();
  }

  /** Stops supervising. The proxy keeps running unless `stopProxy` (then SIGTERM: it drains itself). */
  stop(opts: { stopProxy?: boolean } = {}): void {
    this.running = false;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (opts.stopProxy && this.current !== undefined && isAlive(this.current)) {
      process.kill(this.current.pid, 'SIGTERM');
      rmSync(this.pidPath(), { force: true });
    }
  }

  private check(): void {
    if (!this.running) return;
    if (this.current !== undefined && isAlive(this.current)) {
      if (this.failures > 0 && Date.now() - this.startedAt > this.opts.stableMs) this.failures = 0;
      return;
    }
    const now = Date.now();
    if (this.restartAt === 0) {
      this.failures++;
      this.restarts++;
      // Equal jitter: never sooner than half the ceiling, so a proxy that cannot start does not spin.
      const delay = backoffDelayMs(this.failures, { baseMs: this.opts.backoffBaseMs, maxMs: this.opts.backoffMaxMs, jitter: 'equal' }, this.opts.random);
      this.restartAt = now + delay;
      this.opts.logger.warn(
        { pid: this.current?.pid, restartInMs: delay, log: this.logPath() },
        this.current === undefined ? 'weft proxy is not running; starting it with backoff' : 'weft proxy exited; restarting with backoff',
      );
      this.current = undefined;
    }
    if (now >= this.restartAt) {
      this.restartAt = 0;
      this.spawn();
    }
  }

  /** The proxy's environment: the agent's, with the proxy's own token when it has one. */
  private childEnv(): NodeJS.ProcessEnv {
    const own = this.opts.consulToken;
    if (own === undefined) return this.opts.env;
    return { ...this.opts.env, [ENV_CONSUL_HTTP_TOKEN]: ProxySupervisor.readConsulTokenFile(own.file, own.key) };
  }

  private spawn(): void {
    let env: NodeJS.ProcessEnv;
    try {
      env = this.childEnv();
    } catch (err) {
      // Never the agent's token instead: the proxy stays down, and check() retries with backoff.
      this.opts.logger.error({ err, file: this.opts.consulToken?.file }, 'could not start weft proxy: its Consul token file is unusable; retrying with backoff');
      return;
    }
    const log = openSync(this.logPath(), 'a');
    try {
      const [cmd, ...args] = this.opts.command;
      const child = spawn(cmd!, args, { env, stdio: ['ignore', log, log], detached: true });
      child.on('error', (err) => this.opts.logger.error({ err }, 'could not start weft proxy'));
      child.unref();
      if (child.pid === undefined) return;
      this.current = { pid: child.pid, procStart: procStart(child.pid) };
      this.startedAt = Date.now();
      this.starts++;
      writeFileAtomicSync(this.pidPath(), JSON.stringify(this.current)); // a restarted agent never reads half of it
      this.opts.logger.info({ pid: child.pid }, 'started weft proxy');
    } finally {
      closeSync(log);
    }
  }

  private readPid(): PidRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.pidPath(), 'utf8')) as PidRecord;
    } catch {
      return undefined;
    }
  }

  private pidPath(): string {
    return join(this.opts.stateDir, 'proxy.pid');
  }

  private logPath(): string {
    return join(this.opts.stateDir, 'proxy.log');
  }
}

function isAlive(rec: PidRecord): boolean {
  const now = procStart(rec.pid);
  if (now === undefined || now === 'Z') return false;
  return rec.procStart === undefined || now === rec.procStart; // a reused pid is not our proxy
}

/** /proc/<pid>/stat start time, 'Z' for a zombie, undefined when there is no such process. */
function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? 'Z' : fields[19];
  } catch {
    return undefined;
  }
}
