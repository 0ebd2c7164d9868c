/**
 * Registration by label: every running task on this host whose labels carry
 * `weft.service` (or Registrator's `SERVICE_NAME`) is registered in Consul with
 * the Meta contract and the checks its labels ask for, whoever started it.
 *
 *   driver events ─▶ start: inspect, decodeLabels, registerInstance
 *                    kill (TERM/INT/KILL/QUIT): deregister at once, so traffic
 *                      leaves while the task shuts down gracefully (drain), and
 *                      mark it stopping
 *                    die / destroy: deregister; start: a fresh run, not stopping
 *   start + every resyncIntervalMs ─▶ resync: register what runs, deregister
 *                    this host's registrations whose task is gone (stale ones
 *                    left by a crashed agent: Registrator #277)
 *
 * A task marked stopping stays out of routing until it exits, even though it
 * still runs (a 45 s graceful shutdown must not get new traffic from the next
 * resync). Only one that still runs `stoppingGraceMs` after the signal (it
 * ignored SIGTERM, e.g. `docker kill -s TERM`) is registered again, with a
 * warning: a healthy container silently out of routing forever is worse.
 * The mark lives in memory: an agent restarted mid-shutdown registers it.
 * Until it exits, such a task (drained or signalled) still counts as a user
 * of its service (`services()`): its identity and outbound port stay while
 * its last requests finish.
 *
 * A task whose labels do not decode is logged once per label set, naming the
 * container, each bad key and value, and skipped; other tasks are unaffected.
 * Work on one task is serialised, so an event racing a resync cannot leave a
 * registration behind.
 */
import { EventEmitter } from 'node:events';
import { type DecodeResult, decodeLabels, type Registration } from '../base/contracts/labels.js';
import { buildServiceRegistration, deregisterInstance, type DiscoveryClient, registerInstance } from '../discovery/index.js';
import { SERVICE_META as META, WEFT_TAG } from '../base/contracts/meta.js';
import type { WeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { AGENT_LABELS, type Driver, type DriverEvent, isTerminatingSignal, matchesLabel, type TaskInfo } from './driver.js';

export interface RegistrarOptions {
  driver: Driver;
  client: DiscoveryClient;
  /** This host's node name (Meta weft_host, first half of every ID). */
  host: string;
  /** The address instances on this host are reached at (containers use the host network). */
  hostAddress: string;
  /** The host proxy's inbound mTLS port (Meta weft_mesh_port). */
  meshPort: number;
  logger: Logger;
  /** After deregistering and before stopping a task (drain), so every proxy's watch has seen it go. */
  drainDelayMs?: number;
  /** Re-checks registrations against the runtime this often, covering missed events. */
  resyncIntervalMs?: number;
  /** A task that still runs this long after a terminating signal is registered again (it ignored the signal). */
  stoppingGraceMs?: number;
  deregisterCriticalAfterMs?: number;
  /**
   * Only tasks with this label (`key` or `key=value`) are considered: lets several
   * agents share one Docker daemon (tests simulate hosts that way). Default: all.
   */
  labelFilter?: string;
}

/** One registered instance. */
export interface LocalInstance {
  /** Consul service ID `<host>-<instance>`. */
  id: string;
  instance: string;
  taskId: string;
  taskName: string;
  registration: Registration;
}

export interface RegistrarEvents {
  registered: [LocalInstance];
  deregistered: [{ id: string; reason: string }];
  /** A task's labels did not decode; it was skipped. */
  invalid: [{ taskId: string; taskName: string; errors: WeftError[] }];
  /**
   * The set of local instances changed, or a task that had left routing
   * exited (identities and the proxy's local.json follow both).
   */
  change: [LocalInstance[]];
}

/** The parts of /v1/agent/services entries compared on resync. */
interface AgentService {
  ID: string;
  Service?: string;
  Port?: number;
  Address?: string;
  Tags?: string[];
  Meta?: Record<string, string>;
}

/** The instance name of a task: its allocation id, else the container's short id. */
export function instanceName(task: Pick<TaskInfo, 'id' | 'labels'>): string {
  return task.labels[AGENT_LABELS.alloc] ?? task.id.slice(0, 12);
}

/** What decodeLabels should know about a task beyond its labels. */
export function decodeTask(task: TaskInfo): DecodeResult {
  const image = task.image;
  const ref = image?.includes('@') ? image.slice(0, image.indexOf('@')) : image;
  const slash = ref?.lastIndexOf('/') ?? -1;
  const colon = ref?.lastIndexOf(':') ?? -1;
  const base = ref === undefined ? undefined : ref.slice(slash + 1, colon > slash ? colon : undefined);
  const tag = ref !== undefined && colon > slash ? ref.slice(colon + 1) : undefined;
  const agentPort = Number(task.labels[AGENT_LABELS.port]);
  const exposed = [...task.exposedPorts, ...(Number.isInteger(agentPort) && agentPort > 0 ? [agentPort] : [])];
  return decodeLabels(task.labels, {
    ...(base === undefined ? {} : { defaultName: base.toLowerCase().replace(/[^a-z0-9-]/g, '-') }),
    ...(tag === undefined ? {} : { defaultVersion: tag }),
    exposedPorts: [...new Set(exposed)],
  });
}

/** Keeps Consul in step with the labelled tasks running on this host. */
export class Registrar extends EventEmitter<RegistrarEvents> {
  private readonly opts: Required<Omit<RegistrarOptions, 'deregisterCriticalAfterMs' | 'labelFilter'>> & Pick<RegistrarOptions, 'deregisterCriticalAfterMs' | 'labelFilter'>;
  private readonly byTask = new Map<string, LocalInstance>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly warned = new Map<string, string>();
  private readonly draining = new Set<string>();
  /** Task id -> when a terminating signal was seen (ms since the epoch). */
  private readonly stopping = new Map<string, number>();
  /** Task id -> its instance, deregistered (drain, terminating signal) while the task still runs. */
  private readonly leaving = new Map<string, LocalInstance>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onEvent = (e: DriverEvent) => void this.handle(e);

  constructor(opts: RegistrarOptions) {
    super();
    this.opts = { drainDelayMs: 1000, resyncIntervalMs: 30_000, stoppingGraceMs: 300_000, ...opts };
  }

  /** Subscribes to the driver's events, then resyncs (so nothing between the two is missed). */
  async start(): Promise<void> {
    this.opts.driver.on('event', this.onEvent);
    await this.opts.driver.watch();
    await this.resync();
    this.timer = setInterval(() => void this.resync().catch((err) => this.opts.logger.warn({ err }, 'resync failed; retrying later')), this.opts.resyncIntervalMs);
    this.timer.unref();
  }

  /** Stops listening. Registrations stay: the tasks keep running without the agent. */
  stop(): void {
    this.opts.driver.off('event', this.onEvent);
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The instances registered now. */
  instances(): LocalInstance[] {
    return [...this.byTask.values()];
  }

  /**
   * The services tasks on this host still use: those registered, and those of
   * tasks out of routing but not yet exited (draining, stopping).
   */
  services(): string[] {
    return [...new Set([...this.byTask.values(), ...this.leaving.values()].map((i) => i.registration.service))].sort();
  }

  /** The registered instance of a task, if any. */
  instanceOf(taskId: string): LocalInstance | undefined {
    return this.byTask.get(taskId);
  }

  /**
   * Drain, then stop: leave routing (deregister), give proxies `drainDelayMs` to
   * notice, then SIGTERM with `deadlineMs` for in-flight requests before SIGKILL.
   */
  async drainAndStop(taskId: string, deadlineMs: number): Promise<void> {
    this.draining.add(taskId);
    try {
      await this.serial(taskId, () => this.deregisterTask(taskId, 'drain', { leaving: true }));
      await sleep(this.opts.drainDelayMs);
      await this.opts.driver.stop(taskId, { timeoutMs: deadlineMs });
    } finally {
      this.draining.delete(taskId);
    }
  }

  /** Registers every running labelled task; removes this host's registrations without a task. */
  async resync(): Promise<void> {
    const tasks = await this.opts.driver.list(this.opts.labelFilter === undefined ? {} : { label: this.opts.labelFilter });
    const running = new Map(tasks.map((t) => [t.id, t]));
    for (const taskId of this.stopping.keys()) if (!running.has(taskId)) this.stopping.delete(taskId);
    for (const taskId of [...this.leaving.keys()]) if (!running.has(taskId)) this.left(taskId); // exited while no event reached us
    const services = (await this.opts.client.call('agent.service.list', (c) => c.agent.service.list())) as Record<string, AgentService> | undefined;
    await Promise.all(tasks.map((t) => this.serial(t.id, () => this.registerTask(t, services ?? {}))));
    for (const [taskId] of this.byTask) if (!running.has(taskId)) await this.serial(taskId, () => this.deregisterTask(taskId, 'task gone'));
    const wanted = new Set([...this.byTask.values()].map((i) => i.id));
    for (const svc of Object.values(services ?? {})) {
      const meta = svc.Meta ?? {};
      if (meta[META.host] !== this.opts.host || meta[META.instance] === undefined || !(svc.Tags ?? []).includes(WEFT_TAG)) continue;
      if (wanted.has(svc.ID)) continue;
      await deregisterInstance(this.opts.client, svc.ID);
      this.opts.logger.info({ id: svc.ID }, 'removed a stale registration: its task no longer runs on this host');
      this.emit('deregistered', { id: svc.ID, reason: 'stale' });
    }
  }

  private async handle(e: DriverEvent): Promise<void> {
    if (!matchesLabel(e.labels, this.opts.labelFilter) && !this.byTask.has(e.id) && !this.leaving.has(e.id)) return;
    try {
      if (e.type === 'start') {
        this.stopping.delete(e.id); // a restart (docker restart: kill, die, start) is a fresh run
        this.leaving.delete(e.id);
        const task = await this.opts.driver.inspect(e.id);
        if (task?.running) await this.serial(e.id, () => this.registerTask(task));
      } else if (e.type === 'die' || e.type === 'destroy') {
        this.stopping.delete(e.id);
        await this.serial(e.id, () => this.deregisterTask(e.id, e.type === 'die' ? `exited${e.exitCode === undefined ? '' : ` (${e.exitCode})`}` : 'removed'));
        this.left(e.id);
      } else if (e.type === 'kill' && isTerminatingSignal(e.signal) && !this.draining.has(e.id)) {
        if (!this.stopping.has(e.id)) this.stopping.set(e.id, e.time);
        await this.serial(e.id, () => this.deregisterTask(e.id, `stopping (signal ${e.signal ?? '?'})`, { leaving: true }));
      }
    } catch (err) {
      this.opts.logger.warn({ err, event: e.type, task: e.name ?? e.id }, 'could not apply a runtime event; the next resync will');
    }
  }

  /** `existing`: the agent's services, so an unchanged registration (agent restart) is adopted, not rewritten. */
  private async registerTask(task: TaskInfo, existing: Record<string, AgentService> = {}): Promise<void> {
    if (this.draining.has(task.id) || this.stillStopping(task)) return;
    const decoded = decodeTask(task);
    if (!decoded.ok) {
      this.reportInvalid(task, decoded.errors);
      return;
    }
    this.warned.delete(task.id);
    if (decoded.registration === null) return;
    const instance = instanceName(task);
    const current = this.byTask.get(task.id);
    if (current !== undefined && JSON.stringify(current.registration) === JSON.stringify(decoded.registration)) return;
    if (decoded.ignored.length > 0) this.opts.logger.info({ container: task.name, keys: decoded.ignored }, 'labels ignored (Registrator keys weft does not use)');
    const spec = {
      host: this.opts.host,
      hostAddress: this.opts.hostAddress,
      instance,
      meshPort: this.opts.meshPort,
      registration: decoded.registration,
      ...(this.opts.deregisterCriticalAfterMs === undefined ? {} : { deregisterCriticalAfterMs: this.opts.deregisterCriticalAfterMs }),
    };
    const body = buildServiceRegistration(spec);
    const have = existing[body.id!];
    // Re-registering would reset check state in some Consul versions: keep an identical registration as it is.
    const same =
      have !== undefined &&
      have.Service === body.name &&
      have.Port === body.port &&
      have.Address === body.address &&
      JSON.stringify(have.Meta ?? {}) === JSON.stringify(body.meta) &&
      JSON.stringify([...(have.Tags ?? [])].sort()) === JSON.stringify([...(body.tags ?? [])].sort());
    const id = same ? body.id! : await registerInstance(this.opts.client, spec);
    const local: LocalInstance = { id, instance, taskId: task.id, taskName: task.name, registration: decoded.registration };
    this.byTask.set(task.id, local);
    this.leaving.delete(task.id);
    this.opts.logger.info({ id, service: local.registration.service, container: task.name, port: local.registration.port }, 'registered');
    this.emit('registered', local);
    this.emit('change', this.instances());
  }

  /** `leaving`: the task leaves routing but still runs (drain, terminating signal); its service stays in use until it exits. */
  private async deregisterTask(taskId: string, reason: string, opts: { leaving?: boolean } = {}): Promise<void> {
    const local = this.byTask.get(taskId);
    if (local === undefined) return;
    await deregisterInstance(this.opts.client, local.id);
    this.byTask.delete(taskId);
    if (opts.leaving === true) this.leaving.set(taskId, local);
    this.opts.logger.info({ id: local.id, container: local.taskName, reason }, 'deregistered');
    this.emit('deregistered', { id: local.id, reason });
    this.emit('change', this.instances());
  }

  /** A task out of routing has exited: its service may no longer be in use here. */
  private left(taskId: string): void {
    if (!this.leaving.delete(taskId)) return;
    this.emit('change', this.instances());
  }

  /** Whether a task sent a terminating signal should stay out of routing; past the grace it is let back in. */
  private stillStopping(task: TaskInfo): boolean {
    const since = this.stopping.get(task.id);
    if (since === undefined) return false;
    const age = Date.now() - since;
    if (age < this.opts.stoppingGraceMs) return true;
    this.stopping.delete(task.id);
    this.opts.logger.warn({ container: task.name, containerId: task.id.slice(0, 12), sinceSignalMs: age }, `container ${task.name} still runs ${Math.round(age / 1000)} s after a terminating signal: registering it again`);
    return false;
  }

  private reportInvalid(task: TaskInfo, errors: WeftError[]): void {
    const fingerprint = JSON.stringify(task.labels);
    if (this.warned.get(task.id) === fingerprint) return; // once per label set, not on every resync
    this.warned.set(task.id, fingerprint);
    for (const err of errors) {
      this.opts.logger.warn({ container: task.name, containerId: task.id.slice(0, 12), code: err.code, key: err.key, value: err.value }, `container ${task.name} skipped: ${err.message}`);
    }
    this.emit('invalid', { taskId: task.id, taskName: task.name, errors });
  }

  /** Runs `fn` after every earlier piece of work on the same task. */
  private serial(taskId: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(taskId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(taskId, tail);
    void tail.then(() => {
      if (this.queues.get(taskId) === tail) this.queues.delete(taskId);
    });
    return next;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
