/**
 * A Driver that runs nothing: tasks are records in memory that "start" at
 * once and never exit. The control-plane benchmark simulates a thousand hosts
 * in one process, and what it measures is the control plane (KV documents,
 * heartbeats, status reports), not a container runtime, so the agent code
 * above the driver (agent/allocations.ts) runs unchanged on top of this.
 * Not for tests: tests use the real drivers.
 */
import { EventEmitter } from 'node:events';
import type { Driver, DriverEvents, TaskInfo, TaskSpec } from '../../agent/driver.js';

interface NullTask {
  info: TaskInfo;
}

/** One host's pretend runtime. */
export class NullDriver extends EventEmitter<DriverEvents> implements Driver {
  readonly kind = 'process' as const;
  private readonly tasks = new Map<string, NullTask>();
  private next = 0;

  constructor(private readonly host: string) {
    super();
  }

  async create(spec: TaskSpec): Promise<string> {
    const id = `${this.host}-${(this.next++).toString(16).padStart(8, '0')}`;
    this.tasks.set(id, {
      info: { id, name: spec.name, image: spec.image, labels: { ...spec.labels }, running: false, exitCode: undefined, pid: undefined, startedAt: undefined, exposedPorts: [] },
    });
    return id;
  }

  async start(id: string): Promise<void> {
    const t = this.tasks.get(id);
    if (t === undefined) throw new Error(`no task ${id}`);
    t.info = { ...t.info, running: true, startedAt: new Date().toISOString() };
  }

  async stop(id: string): Promise<void> {
    const t = this.tasks.get(id);
    if (t !== undefined) t.info = { ...t.info, running: false, exitCode: 0 };
  }

  async kill(id: string): Promise<void> {
    await this.stop(id);
  }

  async remove(id: string): Promise<void> {
    this.tasks.delete(id);
  }

  async list(opts: { all?: boolean; label?: string } = {}): Promise<TaskInfo[]> {
    const out: TaskInfo[] = [];
    for (const { info } of this.tasks.values()) {
      if (opts.all !== true && !info.running) continue;
      if (opts.label !== undefined) {
        const eq = opts.label.indexOf('=');
        const ok = eq < 0 ? opts.label in info.labels : info.labels[opts.label.slice(0, eq)] === opts.label.slice(eq + 1);
        if (!ok) continue;
      }
      out.push(info);
    }
    return out;
  }

  async inspect(id: string): Promise<TaskInfo | undefined> {
    return this.tasks.get(id)?.info;
  }

  async logs(): Promise<string> {
    return '';
  }

  async watch(): Promise<void> {}

  async close(): Promise<void> {}
}
