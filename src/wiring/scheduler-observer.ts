/**
 * The scheduler's eyes: blocking queries on the weft-agent health entries, on
 * `weft/jobs/`, `weft/allocs/`, `weft/alloc-status/`, `weft/drain/` and
 * `weft/job-status/`, and on the health of every service the allocations
 * register. `snapshot()` joins the last good values into what
 * scheduler/state/observe.ts translates; `change` fires on any new value so the
 * control loop reconciles at once instead of at its next tick.
 */
import { EventEmitter } from 'node:events';
import { AllocationSchema, type Allocation, type AllocStatus, AllocStatusSchema, ALLOCS_PREFIX, ALLOC_STATUS_PREFIX } from '../../base/contracts/alloc.js';
import type { AgentEntry, ObservedTask } from '../../scheduler/index.js';
import { BlockingWatch, type DiscoveryClient, type Instance, type KvEntry, serviceId, watchKeyPrefix, watchService } from '../../discovery/index.js';
import { Value } from '@sinclair/typebox/value';
import type { Logger } from '../../base/log.js';
import { DRAIN_PREFIX, JOBS_PREFIX, type JobRecord, STATUS_PREFIX, type StatusRecord } from './scheduler-store.js';
import { AGENT_SERVICE } from '../../base/contracts/meta.js';
import { LABEL } from '../../base/contracts/labels.js';

/** Everything the control loop reads, at one moment. */
export interface ClusterSnapshot {
  agents: AgentEntry[];
  jobs: Map<string, JobRecord>;
  /** Each job document's CreateIndex: a purged job submitted again is a new incarnation. */
  jobIndexes: Map<string, number>;
  statuses: Map<string, StatusRecord>;
  /** Each status record's ModifyIndex: one older than its job document is an earlier incarnation's. */
  statusIndexes: Map<string, number>;
  tasks: ObservedTask[];
  drained: Set<string>;
}

export interface ObserverOptions {
  client: DiscoveryClient;
  logger: Logger;
  waitMs?: number;
}

/** Keeps the scheduler's view of Consul current. */
export class ClusterObserver extends EventEmitter<{ change: [] }> {
  private readonly client: DiscoveryClient;
  private readonly logger: Logger;
  private readonly waitMs: number;
  private readonly agents: BlockingWatch<AgentEntry[]>;
  private readonly kv: Record<'jobs' | 'allocs' | 'status' | 'drain' | 'jobStatus', BlockingWatch<KvEntry[]>>;
  private readonly services = new Map<string, BlockingWatch<Instance[]>>();
  private readonly warned = new Set<string>();

  constructor(opts: ObserverOptions) {
    super();
    this.client = opts.client;
    this.logger = opts.logger;
    this.waitMs = opts.waitMs ?? 30_000;
    const wopts = { logger: this.logger, waitMs: this.waitMs };
    this.agents = new BlockingWatch<AgentEntry[]>(
      `service ${AGENT_SERVICE}`,
      async (index, waitMs, signal) => {
        const r = await this.client.query<AgentEntry[]>('health.service', (c, extras) => c.health.service({ service: AGENT_SERVICE, ...extras }), { index, waitMs, signal });
        return { value: r.body ?? [], index: r.index };
      },
      wopts,
    );
    this.kv = {
      jobs: watchKeyPrefix(this.client, JOBS_PREFIX, wopts),
      allocs: watchKeyPrefix(this.client, ALLOCS_PREFIX, wopts),
      status: watchKeyPrefix(this.client, ALLOC_STATUS_PREFIX, wopts),
      drain: watchKeyPrefix(this.client, DRAIN_PREFIX, wopts),
      jobStatus: watchKeyPrefix(this.client, STATUS_PREFIX, wopts),
    };
    const fire = (): void => {
      this.emit('change');
    };
    this.agents.on('change', fire);
    for (const w of Object.values(this.kv)) w.on('change', fire);
    this.kv.allocs.on('change', () => this.syncServiceWatches());
  }

  /** Resolves once every watch has a first value. */
  async ready(): Promise<void> {
    await Promise.all([this.agents.ready(), ...Object.values(this.kv).map((w) => w.ready())]);
    this.syncServiceWatches();
    await Promise.all([...this.services.values()].map((w) => w.ready()));
  }

  /** The joined last good values. */
  snapshot(): ClusterSnapshot {
    const jobs = new Map<string, JobRecord>();
    const jobIndexes = new Map<string, number>();
    for (const e of this.kv.jobs.current() ?? []) {
      const rec = this.decode<JobRecord>(e);
      if (rec !== undefined && typeof rec.version === 'number' && rec.spec !== undefined) {
        jobs.set(e.key.slice(JOBS_PREFIX.length), rec);
        jobIndexes.set(e.key.slice(JOBS_PREFIX.length), e.createIndex);
      }
    }
    const statuses = new Map<string, StatusRecord>();
    const statusIndexes = new Map<string, number>();
    for (const e of this.kv.jobStatus.current() ?? []) {
      const rec = this.decode<StatusRecord>(e);
      if (rec === undefined) continue;
      statuses.set(e.key.slice(STATUS_PREFIX.length), rec);
      statusIndexes.set(e.key.slice(STATUS_PREFIX.length), e.modifyIndex);
    }
    const drained = new Set<string>();
    for (const e of this.kv.drain.current() ?? []) if (this.decode<{ drain?: boolean }>(e)?.drain === true) drained.add(e.key.slice(DRAIN_PREFIX.length));
    const statusOf = new Map<string, AllocStatus>();
    for (const e of this.kv.status.current() ?? []) {
      const doc = this.decode<AllocStatus>(e);
      if (doc !== undefined && Value.Check(AllocStatusSchema, doc)) statusOf.set(e.key.slice(ALLOC_STATUS_PREFIX.length), doc);
    }
    const health = new Map<string, boolean>();
    for (const w of this.services.values()) for (const i of w.current() ?? []) health.set(i.id, i.healthy);
    const tasks: ObservedTask[] = [];
    for (const { host, doc } of this.allocDocs()) {
      const service = doc.labels[LABEL.service];
      tasks.push({
        host,
        doc,
        status: statusOf.get(`${host}/${doc.id}`),
        checksPassing: service === undefined ? undefined : health.get(serviceId(host, doc.id)),
      });
    }
    return { agents: this.agents.current() ?? [], jobs, jobIndexes, statuses, statusIndexes, tasks, drained };
  }

  /** Keys of the allocation documents the watch shows now (the loop waits until its own writes show). */
  allocKeys(): Set<string> {
    return new Set((this.kv.allocs.current() ?? []).map((e) => e.key));
  }

  /**
   * Status records (`weft/alloc-status/<host>/<alloc>`) with no allocation
   * document at `weft/allocs/<host>/<alloc>` (valid or not), with the index
   * they were read at: what a stop or a refused document left behind.
   */
  orphanStatuses(): Array<{ host: string; alloc: string; key: string; modifyIndex: number }> {
    const documents = new Set((this.kv.allocs.current() ?? []).map((e) => e.key.slice(ALLOCS_PREFIX.length)));
    const out: Array<{ host: string; alloc: string; key: string; modifyIndex: number }> = [];
    for (const e of this.kv.status.current() ?? []) {
      const rest = e.key.slice(ALLOC_STATUS_PREFIX.length);
      const slash = rest.indexOf('/');
      if (slash <= 0 || slash === rest.length - 1 || documents.has(rest)) continue;
      out.push({ host: rest.slice(0, slash), alloc: rest.slice(slash + 1), key: e.key, modifyIndex: e.modifyIndex });
    }
    return out;
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    await Promise.all([this.agents.close(), ...Object.values(this.kv).map((w) => w.close()), ...[...this.services.values()].map((w) => w.close())]);
  }

  private allocDocs(): Array<{ host: string; doc: Allocation }> {
    const out: Array<{ host: string; doc: Allocation }> = [];
    for (const e of this.kv.allocs.current() ?? []) {
      const rest = e.key.slice(ALLOCS_PREFIX.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) continue;
      const doc = this.decode<Allocation>(e);
      if (doc === undefined || !Value.Check(AllocationSchema, Value.Default(AllocationSchema, structuredClone(doc)))) {
        this.warnOnce(e.key, 'allocation document does not match the contract; ignored');
        continue;
      }
      out.push({ host: rest.slice(0, slash), doc: Value.Default(AllocationSchema, structuredClone(doc)) as Allocation });
    }
    return out;
  }

  /** One health watch per service the allocations register; watches of services no longer used are closed. */
  private syncServiceWatches(): void {
    const wanted = new Set<string>();
    for (const { doc } of this.allocDocs()) {
      const s = doc.labels[LABEL.service];
      if (s !== undefined) wanted.add(s);
    }
    for (const s of wanted) {
      if (this.services.has(s)) continue;
      const w = watchService(this.client, s, { passingOnly: false, logger: this.logger, waitMs: this.waitMs });
      w.on('change', () => this.emit('change'));
      this.services.set(s, w);
    }
    for (const [s, w] of this.services) {
      if (wanted.has(s)) continue;
      this.services.delete(s);
      void w.close();
    }
  }

  private decode<T>(e: KvEntry): T | undefined {
    try {
      return JSON.parse(e.value ?? '') as T;
    } catch {
      this.warnOnce(e.key, 'not JSON; ignored');
      return undefined;
    }
  }

  private warnOnce(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn({ key }, msg);
  }
}
