/**
 * The runtime driver port: what the agent needs from "something that runs
 * tasks", whether Docker containers or plain child processes. Both drivers
 * pass the same suite (test/agent/drivers.test.ts); everything above this
 * interface (registration by label, allocations, drain) is driver-agnostic.
 */
import type { EventEmitter } from 'node:events';

/** Labels the agent itself puts on what it starts (reverse-DNS: `weft.*` is reserved for the label contract). */
export const AGENT_LABELS = {
  /** The allocation id a task runs. */
  alloc: 'io.weft.alloc',
  /** The host (node name) whose agent started it. */
  host: 'io.weft.host',
  /** A hash of the allocation document, so a changed document is noticed after an agent restart. */
  specHash: 'io.weft.spec-hash',
  /** The allocation's port: label decoding treats it as an exposed port (the default weft.port). */
  port: 'io.weft.port',
} as const;

/** What to run. */
export interface TaskSpec {
  /** Unique on this host (Docker container name). */
  name: string;
  /** Docker image; the process driver ignores it. */
  image?: string;
  /** Docker: replaces entrypoint + cmd. Process: the executable (required). */
  command?: string;
  args?: readonly string[];
  env: Readonly<Record<string, string>>;
  /**
   * Secret values for the task's environment (allocation `secrets[].env`), kept
   * apart from `env` because drivers must not write them to their own state:
   * the process driver holds them in memory only, so a restart after an agent
   * restart needs them passed again to `start`. Docker keeps a container's whole
   * environment in its config (`docker inspect`), as it does for any env var;
   * file secrets avoid that (agent/README.md).
   */
  secretEnv?: Readonly<Record<string, string>>;
  labels: Readonly<Record<string, string>>;
  /** cpu in millicores, memory in MiB; the process driver records but does not enforce them. */
  resources?: { cpu: number; memory: number };
  /**
   * Docker mounts: `bind` a host directory, `volume` a Docker named volume. The process
   * driver cannot mount: its tasks find a host volume's directory in env WEFT_VOLUME_<NAME>.
   */
  mounts?: readonly TaskMount[];
}

/** One mount of a task (TaskSpec.mounts). */
export interface TaskMount {
  type: 'bind' | 'volume';
  /** bind: the host directory; volume: the Docker volume's name. */
  source: string;
  /** The path inside the container. */
  destination: string;
  readOnly: boolean;
}

/** A task as the driver sees it now. */
export interface TaskInfo {
  /** Docker container id; the process driver's own 64-hex id. */
  id: string;
  name: string;
  image: string | undefined;
  labels: Record<string, string>;
  running: boolean;
  /** Set once the task has exited; undefined when unknown (a process adopted after an agent restart). */
  exitCode: number | undefined;
  /** The OS process id while running. */
  pid: number | undefined;
  /** ISO 8601, of the current (or last) start. */
  startedAt: string | undefined;
  /** Ports the image declares (Docker EXPOSE), for label decoding. */
  exposedPorts: number[];
}

/**
 * Lifecycle events, named as Docker names them: `kill` is a signal being sent
 * (the first sign of a stop, used to drain early), `die` the task exiting,
 * `destroy` its removal.
 */
export interface DriverEvent {
  type: 'create' | 'start' | 'kill' | 'die' | 'destroy';
  id: string;
  name: string | undefined;
  labels: Record<string, string>;
  /** `die`: the exit code. */
  exitCode?: number | undefined;
  /** `kill`: the signal, e.g. `SIGTERM` or `15` as Docker reports it. */
  signal?: string | undefined;
  /** Milliseconds since the epoch. */
  time: number;
}

/** Events a driver emits. */
export interface DriverEvents {
  event: [DriverEvent];
  /** The event source broke (e.g. the Docker stream ended) and is being re-established. */
  error: [Error];
}

/** One runtime. Methods throw WEFT_ERR_DRIVER (or _NO_SUCH_TASK) with the task's name or id. */
export interface Driver extends EventEmitter<DriverEvents> {
  readonly kind: 'docker' | 'process';
  /** Creates a task without starting it; returns its id. */
  create(spec: TaskSpec): Promise<string>;
  /** Starts a created or exited task. `secretEnv` replaces the values given at create (process driver; Docker reuses its config). */
  start(id: string, opts?: { secretEnv?: Readonly<Record<string, string>> }): Promise<void>;
  /** SIGTERM, then SIGKILL after `timeoutMs` (the drain deadline). Resolves once it has exited. */
  stop(id: string, opts?: { timeoutMs?: number }): Promise<void>;
  /** Sends a signal (default SIGKILL) without waiting. */
  kill(id: string, signal?: string): Promise<void>;
  /** Removes a stopped task (`force` kills a running one first). Unknown ids are fine. */
  remove(id: string, opts?: { force?: boolean }): Promise<void>;
  /** Running tasks, or all with `all`; `label` keeps those with that label (`key` or `key=value`). */
  list(opts?: { all?: boolean; label?: string }): Promise<TaskInfo[]>;
  /** One task, or undefined when there is none. */
  inspect(id: string): Promise<TaskInfo | undefined>;
  /** The last `tail` lines of the task's output (stdout and stderr). */
  logs(id: string, opts?: { tail?: number }): Promise<string>;
  /** Starts emitting `event` (Docker: opens the events stream). Resolves once events flow. */
  watch(): Promise<void>;
  /** Stops watching and releases resources. Never stops tasks: they outlive the agent. */
  close(): Promise<void>;
}

/** Creates and starts in one step; on a failed start the created task is removed. */
export async function runTask(driver: Driver, spec: TaskSpec): Promise<string> {
  const id = await driver.create(spec);
  try {
    await driver.start(id);
  } catch (err) {
    await driver.remove(id, { force: true }).catch(() => undefined);
    throw err;
  }
  return id;
}

/** Whether a `kill` event's signal ends the task (so draining should begin). */
export function isTerminatingSignal(signal: string | undefined): boolean {
  if (signal === undefined) return true;
  return ['SIGTERM', 'SIGINT', 'SIGKILL', 'SIGQUIT', 'TERM', 'INT', 'KILL', 'QUIT', '15', '2', '9', '3'].includes(signal.toUpperCase());
}

/** Matches a `key` or `key=value` label filter. */
export function matchesLabel(labels: Readonly<Record<string, string>>, filter: string | undefined): boolean {
  if (filter === undefined) return true;
  const eq = filter.indexOf('=');
  if (eq < 0) return filter in labels;
  return labels[filter.slice(0, eq)] === filter.slice(eq + 1);
}
