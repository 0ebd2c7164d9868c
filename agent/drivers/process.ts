/**
 * The process driver: tasks are plain child processes of this host, for
 * machines without a reachable Docker daemon. Each task is detached (its own
 * process group, output to a log file, no pipe to the agent) so it outlives an
 * agent restart, exactly as a container outlives dockerd's client.
 *
 * State lives in `<stateDir>/<id>.json` (spec, pid, the process's start time,
 * exit code) so a restarted agent can list and adopt what is still running.
 * The spec's `secretEnv` is never written there (nor anywhere on disk): it is
 * held in memory for the task's starts, and a start after an agent restart
 * gets the values again from the caller, who re-fetches them.
 * The start time (from /proc) guards against pid reuse. An exit is seen through
 * the child's 'exit' event when this agent started it, and by polling
 * otherwise; the exit code of an adopted process is unknown (undefined).
 * Resource limits are recorded, not enforced (as Nomad's raw_exec): without
 * cgroups there is no general way to cap a process tree's CPU, and
 * `ulimit -v` caps address space, not memory (a JIT reserves far more than it
 * uses); agent/README.md has the reasoning.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../../base/atomic-write.js';
import { WeftError } from '../../base/errors.js';
import { type Driver, type DriverEvent, type DriverEvents, matchesLabel, type TaskInfo, type TaskSpec } from '../driver.js';

/** How often processes this agent did not spawn are checked for liveness. */
const POLL_MS = 200;

interface ProcessRecord {
  id: string;
  spec: TaskSpec;
  pid?: number;
  /** /proc/<pid>/stat starttime, to tell our process from a later one reusing the pid. */
  procStart?: string;
  startedAt?: string;
  exitCode?: number;
  running: boolean;
}

/** Runs tasks as detached child processes. */
export class ProcessDriver extends EventEmitter<DriverEvents> implements Driver {
  readonly kind = 'process' as const;
  private readonly dir: string;
  private readonly children = new Map<string, ChildProcess>();
  /** Secret env values by task id: memory only, never in the state file. */
  private readonly secretEnv = new Map<string, Readonly<Record<string, string>>>();
  private poller: NodeJS.Timeout | undefined;
  /** Tasks last seen running by the poller: an exit recorded by someone else (a previous agent) still yields a die event. */
  private readonly seenRunning = new Set<string>();
  private watching = false;

  /** `stateDir` holds one JSON record and one log file per task (e.g. `<dataDir>/agent/processes`). */
  constructor(stateDir: string) {
    super();
    this.dir = stateDir;
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  }

  async create(spec: TaskSpec): Promise<string> {
    if (spec.command === undefined) throw new WeftError('WEFT_ERR_DRIVER', `process driver: task ${spec.name} has no command`, { key: 'command', value: spec.name });
    if (this.records().some((r) => r.spec.name === spec.name)) {
      throw new WeftError('WEFT_ERR_DRIVER', `process driver: a task named ${spec.name} already exists`, { key: 'name', value: spec.name });
    }
    const id = randomBytes(32).toString('hex');
    const { secretEnv, ...persisted } = spec;
    if (secretEnv !== undefined) this.secretEnv.set(id, secretEnv);
    this.save({ id, spec: persisted, running: false });
    this.emitEvent('create', id, spec);
    return id;
  }

  async start(id: string, opts: { secretEnv?: Readonly<Record<string, string>> } = {}): Promise<void> {
    const rec = this.mustRead(id);
    if (opts.secretEnv !== undefined) this.secretEnv.set(id, opts.secretEnv);
    if (rec.running && this.alive(rec)) return;
    const log = openSync(this.logPath(id), 'a');
    let child: ChildProcess;
    try {
      child = spawn(rec.spec.command!, [...(rec.spec.args ?? [])], {
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...rec.spec.env, ...this.secretEnv.get(id) },
        stdio: ['ignore', log, log],
        detached: true, // own process group: survives the agent, and stop() signals the whole group
      });
    } finally {
      closeSync(log);
    }
    const spawned = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (err) =>
        reject(new WeftError('WEFT_ERR_DRIVER', `process driver: cannot start ${rec.spec.name}: ${err.message}`, { key: 'command', value: rec.spec.command, cause: err })),
      );
    });
    child.unref();
    const procStart = readProcStart(spawned);
    this.save({ ...rec, pid: spawned, ...(procStart === undefined ? {} : { procStart }), startedAt: new Date().toISOString(), running: true, exitCode: undefined } as ProcessRecord);
    this.children.set(id, child);
    child.once('exit', (code, signal) => {
      this.children.delete(id);
      this.markExited(id, code ?? (signal === null ? 0 : 128 + signalNumber(signal)));
    });
    this.emitEvent('start', id, rec.spec);
  }

  async stop(id: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const rec = this.mustRead(id);
    if (!rec.running || !this.alive(rec)) {
      this.markExited(id, rec.exitCode);
      return;
    }
    this.signal(rec, 'SIGTERM');
    const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
    while (this.alive(rec) && Date.now() < deadline) await sleep(20);
    if (this.alive(rec)) {
      this.signal(rec, 'SIGKILL');
      for (let i = 0; i < 250 && this.alive(rec); i++) await sleep(20);
    }
    await this.waitRecorded(id);
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    const rec = this.mustRead(id);
    if (rec.running && this.alive(rec)) this.signal(rec, signal);
  }

  async remove(id: string, opts: { force?: boolean } = {}): Promise<void> {
    const rec = this.read(id);
    if (rec === undefined) return;
    if (rec.running && this.alive(rec)) {
      if (!opts.force) throw new WeftError('WEFT_ERR_DRIVER', `process driver: ${rec.spec.name} is running; stop it first`, { key: 'id', value: id });
      await this.stop(id, { timeoutMs: 0 });
    }
    rmSync(this.recordPath(id), { force: true });
    rmSync(this.logPath(id), { force: true });
    this.secretEnv.delete(id);
    this.emitEvent('destroy', id, rec.spec);
  }

  async list(opts: { all?: boolean; label?: string } = {}): Promise<TaskInfo[]> {
    return this.records()
      .map((r) => this.refresh(r))
      .filter((r) => (opts.all || r.running) && matchesLabel(r.spec.labels, opts.label))
      .map((r) => toInfo(r));
  }

  async inspect(id: string): Promise<TaskInfo | undefined> {
    const rec = this.read(id);
    return rec === undefined ? undefined : toInfo(this.refresh(rec));
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<string> {
    this.mustRead(id);
    let text = '';
    try {
      text = readFileSync(this.logPath(id), 'utf8');
    } catch {
      return '';
    }
    if (opts.tail === undefined) return text;
    const lines = text.split('\n');
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-opts.tail).map((l) => `${l}\n`).join('');
  }

  async watch(): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    // Our own children report through 'exit'; adopted ones only by polling.
    for (const rec of this.records()) if (rec.running) this.seenRunning.add(rec.id);
    this.poller = setInterval(() => this.poll(), POLL_MS);
    this.poller.unref();
  }

  async close(): Promise<void> {
    this.watching = false;
    if (this.poller !== undefined) clearInterval(this.poller);
    this.poller = undefined;
    for (const child of this.children.values()) child.removeAllListeners('exit');
    this.children.clear();
  }

  private poll(): void {
    const records = this.records();
    const present = new Set(records.map((r) => r.id));
    for (const rec of records) {
      if (rec.running && !this.children.has(rec.id)) this.refresh(rec);
      else if (rec.running) this.seenRunning.add(rec.id);
      else if (this.seenRunning.has(rec.id)) {
        this.seenRunning.delete(rec.id);
        this.emitEvent('die', rec.id, rec.spec, { exitCode: rec.exitCode });
      }
    }
    for (const id of this.seenRunning) if (!present.has(id)) this.seenRunning.delete(id);
  }

  /** Notices an exit nobody reported (adopted process, or an exit while no agent ran). */
  private refresh(rec: ProcessRecord): ProcessRecord {
    if (rec.running && !this.children.has(rec.id) && !this.alive(rec)) return this.markExited(rec.id, rec.exitCode) ?? rec;
    if (rec.running && this.watching) this.seenRunning.add(rec.id);
    return rec;
  }

  private markExited(id: string, exitCode: number | undefined): ProcessRecord | undefined {
    const rec = this.read(id);
    if (rec === undefined || !rec.running) return rec;
    const next: ProcessRecord = { ...rec, running: false, ...(exitCode === undefined ? {} : { exitCode }) };
    this.save(next);
    this.seenRunning.delete(id);
    this.emitEvent('die', id, rec.spec, { exitCode });
    return next;
  }

  private async waitRecorded(id: string): Promise<void> {
    for (let i = 0; i < 250; i++) {
      const rec = this.read(id);
      if (rec === undefined || !rec.running) return;
      if (!this.children.has(id)) {
        this.refresh(rec);
        return;
      }
      await sleep(10);
    }
  }

  private signal(rec: ProcessRecord, signal: string): void {
    this.emitEvent('kill', rec.id, rec.spec, { signal });
    try {
      process.kill(-rec.pid!, signal as NodeJS.Signals); // the whole group: a shell wrapper's children too
    } catch {
      try {
        process.kill(rec.pid!, signal as NodeJS.Signals);
      } catch {
        // already gone
      }
    }
  }

  private alive(rec: ProcessRecord): boolean {
    if (rec.pid === undefined) return false;
    const child = this.children.get(rec.id);
    if (child !== undefined) return child.exitCode === null && child.signalCode === null;
    try {
      process.kill(rec.pid, 0);
    } catch {
      return false;
    }
    const now = readProcStart(rec.pid);
    if (now === 'zombie') return false;
    return rec.procStart === undefined || now === undefined || now === rec.procStart;
  }

  private emitEvent(type: DriverEvent['type'], id: string, spec: TaskSpec, extra: { exitCode?: number | undefined; signal?: string } = {}): void {
    this.emit('event', { type, id, name: spec.name, labels: { ...spec.labels }, ...extra, time: Date.now() });
  }

  private records(): ProcessRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((n) => /^[0-9a-f]{64}\.json$/.test(n))
      .map((n) => this.read(n.slice(0, 64)))
      .filter((r): r is ProcessRecord => r !== undefined);
  }

  private read(id: string): ProcessRecord | undefined {
    if (!/^[0-9a-f]{64}$/.test(id)) return undefined;
    try {
      return JSON.parse(readFileSync(this.recordPath(id), 'utf8')) as ProcessRecord;
    } catch {
      return undefined;
    }
  }

  private mustRead(id: string): ProcessRecord {
    const rec = this.read(id);
    if (rec === undefined) throw new WeftError('WEFT_ERR_NO_SUCH_TASK', `process driver: no task ${id}`, { key: 'id', value: id });
    return rec;
  }

  private save(rec: ProcessRecord): void {
    writeFileAtomicSync(this.recordPath(rec.id), JSON.stringify(rec), { mode: 0o600 });
  }

  private recordPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  private logPath(id: string): string {
    return join(this.dir, `${id}.log`);
  }
}

function toInfo(r: ProcessRecord): TaskInfo {
  return {
    id: r.id,
    name: r.spec.name,
    image: undefined,
    labels: { ...r.spec.labels },
    running: r.running,
    exitCode: r.exitCode,
    pid: r.running ? r.pid : undefined,
    startedAt: r.startedAt,
    exposedPorts: [],
  };
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), 'zombie' for an exited child not yet reaped. */
function readProcStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // the command name may contain spaces
    if (fields[0] === 'Z') return 'zombie';
    return fields[19];
  } catch {
    return undefined;
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const n = (
    { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15, SIGUSR1: 10, SIGUSR2: 12, SIGABRT: 6, SIGSEGV: 11 } as Record<string, number>
  )[signal];
  return n ?? 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
