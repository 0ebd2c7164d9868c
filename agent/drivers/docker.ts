/**
 * The Docker driver, on dockerode: containers on the host network (weft's
 * proxies and checks reach instances at the host's address), CPU and memory
 * limits from the allocation, labels and env as given. Events come from
 * Docker's /events stream, re-opened with `since` after a break so none are
 * lost across a daemon hiccup.
 */
import { EventEmitter } from 'node:events';
import Docker from 'dockerode';
import { WeftError } from '../../base/errors.js';
import type { Driver, DriverEvent, DriverEvents, TaskInfo, TaskSpec } from '../driver.js';

/** Keys Docker mixes into an event's Actor.Attributes besides the container's labels. */
const EVENT_ATTRIBUTES = new Set(['name', 'image', 'exitCode', 'signal', 'execDuration']);
const EVENT_TYPES = new Set<DriverEvent['type']>(['create', 'start', 'kill', 'die', 'destroy']);

export interface DockerDriverOptions {
  /** Defaults to dockerode's (DOCKER_HOST or /var/run/docker.sock). */
  socketPath?: string;
  /** Network mode of created containers (default `host`). */
  networkMode?: string;
}

/** Runs tasks as Docker containers. */
export class DockerDriver extends EventEmitter<DriverEvents> implements Driver {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly networkMode: string;
  private stream: NodeJS.ReadableStream | undefined;
  private watching = false;
  private lastEventSeconds = 0;
  private reconnect: NodeJS.Timeout | undefined;

  constructor(opts: DockerDriverOptions = {}) {
    super();
    this.docker = new Docker(opts.socketPath === undefined ? {} : { socketPath: opts.socketPath });
    this.networkMode = opts.networkMode ?? 'host';
  }

  /** Whether the daemon answers (used to pick the default driver). */
  async ping(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  async create(spec: TaskSpec): Promise<string> {
    if (spec.image === undefined) throw new WeftError('WEFT_ERR_DRIVER', `docker driver: task ${spec.name} has no image`, { key: 'image', value: spec.name });
    const cmd = spec.command === undefined ? undefined : [spec.command, ...(spec.args ?? [])];
    return wrap(`create ${spec.name}`, async () => {
      const c = await this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        ...(cmd === undefined ? spec.args?.length ? { Cmd: [...spec.args] } : {} : { Entrypoint: [cmd[0]!], Cmd: cmd.slice(1) }),
        // Docker keeps env secrets in the container's config (start reuses it); file secrets are bind mounts instead.
        Env: Object.entries({ ...spec.env, ...spec.secretEnv }).map(([k, v]) => `${k}=${v}`),
        Labels: { ...spec.labels },
        HostConfig: {
          NetworkMode: this.networkMode,
          ...(spec.resources === undefined ? {} : { NanoCpus: spec.resources.cpu * 1_000_000, Memory: spec.resources.memory * 1024 * 1024 }),
          // Binds take both a host path (bind) and a volume name (volume); Docker creates a missing named volume.
          ...((spec.mounts?.length ?? 0) === 0 ? {} : { Binds: spec.mounts!.map((m) => `${m.source}:${m.destination}${m.readOnly ? ':ro' : ''}`) }),
          // The agent applies the restart policy itself, with the allocation's budget; Docker must not race it.
          RestartPolicy: { Name: 'no' },
        },
      });
      return c.id;
    });
  }

  async start(id: string): Promise<void> {
    await wrap(`start ${id}`, () => this.docker.getContainer(id).start(), [304]);
  }

  async stop(id: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    // Docker's grace period is in whole seconds; round up so the deadline is never cut short.
    const t = Math.ceil((opts.timeoutMs ?? 10_000) / 1000);
    await wrap(`stop ${id}`, () => this.docker.getContainer(id).stop({ t }), [304]);
  }

  async kill(id: string, signal = 'SIGKILL'): Promise<void> {
    await wrap(`kill ${id}`, () => this.docker.getContainer(id).kill({ signal }), [409]);
  }

  async remove(id: string, opts: { force?: boolean } = {}): Promise<void> {
    await wrap(`remove ${id}`, () => this.docker.getContainer(id).remove({ force: opts.force === true }), [404, 409]);
  }

  async list(opts: { all?: boolean; label?: string } = {}): Promise<TaskInfo[]> {
    const filters: Record<string, string[]> = opts.label === undefined ? {} : { label: [opts.label] };
    const rows = await wrap('list', () => this.docker.listContainers({ all: opts.all === true, filters }));
    // listContainers lacks exit codes and start times; inspect each (hosts run tens, not thousands).
    const infos = await Promise.all(rows.map((r) => this.inspect(r.Id)));
    return infos.filter((i): i is TaskInfo => i !== undefined);
  }

  async inspect(id: string): Promise<TaskInfo | undefined> {
    let c: Docker.ContainerInspectInfo;
    try {
      c = await this.docker.getContainer(id).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw driverError(`inspect ${id}`, err);
    }
    const exited = !c.State.Running && c.State.StartedAt !== '0001-01-01T00:00:00Z';
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      image: c.Config.Image,
      labels: { ...(c.Config.Labels ?? {}) },
      running: c.State.Running,
      exitCode: exited ? c.State.ExitCode : undefined,
      pid: c.State.Running ? c.State.Pid : undefined,
      startedAt: c.State.StartedAt === '0001-01-01T00:00:00Z' ? undefined : c.State.StartedAt,
      exposedPorts: Object.keys(c.Config.ExposedPorts ?? {})
        .map((p) => Number.parseInt(p, 10))
        .filter((p) => Number.isInteger(p) && p > 0),
    };
  }

  async logs(id: string, opts: { tail?: number } = {}): Promise<string> {
    const buf = await wrap(`logs ${id}`, () =>
      this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, ...(opts.tail === undefined ? {} : { tail: opts.tail }) }),
    );
    return demux(buf as unknown as Buffer);
  }

  async watch(): Promise<void> {
    if (this.watching) return;
    this.watching = true;
    this.lastEventSeconds = Math.floor(Date.now() / 1000);
    await this.openStream(false);
  }

  async close(): Promise<void> {
    this.watching = false;
    if (this.reconnect !== undefined) clearTimeout(this.reconnect);
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    this.stream = undefined;
    s?.removeAllListeners();
    s?.on('error', () => undefined);
    s?.destroy?.();
  }

  /** `resume`: replay from the last event's second, so a break loses nothing (duplicates are dropped). */
  private async openStream(resume: boolean): Promise<void> {
    const filters = { type: ['container'] };
    const stream = await wrap('events', () =>
      this.docker.getEvents((resume ? { since: this.lastEventSeconds, filters } : { filters }) as Docker.GetEventsOptions),
    );
    if (!this.watching) {
      (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      return;
    }
    this.stream = stream;
    let buffered = '';
    const seen = new Set<string>();
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        nl = buffered.indexOf('\n');
        if (line !== '') this.onLine(line, seen);
      }
    });
    const broken = (err?: Error) => {
      if (!this.watching || this.stream !== stream) return;
      this.stream = undefined;
      this.emit('error', err ?? new Error('docker events stream ended'));
      this.reconnect = setTimeout(() => void this.openStream(true).catch((e: Error) => broken(e)), 500);
    };
    stream.on('end', () => broken());
    stream.on('error', (err: Error) => broken(err));
  }

  private onLine(line: string, seen: Set<string>): void {
    let e: { Type?: string; Action?: string; time?: number; timeNano?: number; Actor?: { ID?: string; Attributes?: Record<string, string> } };
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    // A re-opened stream replays the second it resumes from: drop events already delivered.
    const key = `${e.timeNano}:${e.Action}:${e.Actor?.ID}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (seen.size > 1000) seen.clear();
    if (e.time !== undefined) this.lastEventSeconds = e.time;
    const type = e.Action as DriverEvent['type'];
    if (e.Type !== 'container' || !EVENT_TYPES.has(type) || e.Actor?.ID === undefined) return;
    const attrs = e.Actor.Attributes ?? {};
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(attrs)) if (!EVENT_ATTRIBUTES.has(k)) labels[k] = v;
    const exitCode = attrs['exitCode'] === undefined ? undefined : Number(attrs['exitCode']);
    this.emit('event', {
      type,
      id: e.Actor.ID,
      name: attrs['name'],
      labels,
      ...(exitCode === undefined ? {} : { exitCode }),
      ...(attrs['signal'] === undefined ? {} : { signal: attrs['signal'] }),
      time: e.timeNano === undefined ? Date.now() : Math.floor(e.timeNano / 1e6),
    });
  }
}

/** Docker multiplexes stdout/stderr of non-TTY containers in 8-byte-headed frames. */
function demux(buf: Buffer): string {
  if (buf.length < 8 || buf[0]! > 2 || buf[1] !== 0) return buf.toString('utf8');
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const size = buf.readUInt32BE(at + 4);
    parts.push(buf.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

async function wrap<T>(what: string, fn: () => Promise<T>, okStatuses: number[] = []): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status !== undefined && okStatuses.includes(status)) return undefined as T;
    throw driverError(what, err);
  }
}

function driverError(what: string, err: unknown): WeftError {
  const status = (err as { statusCode?: number }).statusCode;
  const code = (err as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOENT' || code === 'EACCES') {
    return new WeftError('WEFT_ERR_DOCKER_UNAVAILABLE', `docker driver: ${what}: the Docker daemon is not reachable (${code})`, { key: 'docker', value: what, cause: err });
  }
  if (status === 404) return new WeftError('WEFT_ERR_NO_SUCH_TASK', `docker driver: ${what}: no such container`, { key: 'id', value: what, cause: err });
  const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  return new WeftError('WEFT_ERR_DRIVER', `docker driver: ${what}: ${message}`, { key: 'docker', value: what, cause: err });
}
