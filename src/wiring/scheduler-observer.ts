/**
 * The scheduler's eyes: blocking queries on the weft-agent health entries, on
 * `weft/jobs/`, `weft/allocs/`, `weft/alloc-status/`, `weft/drain/` and
 * `weft/job-status/`, and on the health of every service the allocations
 * register. `snapshot()` joins the last good values into what
 * scheduler/state/observe.ts translates; `change` fires on any new value so the
 * control loop reconciles at once instead of at its next tick.
 *
 * The two big prefixes (an allocation document and a status record per
 * allocation) are kept as parsed views keyed by key and ModifyIndex: an
 * answer's entries whose ModifyIndex is unchanged are skipped, so only what
 * changed is decoded, parsed and validated (Consul still sends the whole
 * prefix, as a real cluster does). Their watches carry the view's version, not
 * the entries, so telling "changed" from "same" costs nothing either.
 * `snapshot()` is computed once per change and shared by the loop and the API.
 *
 * The event loop is never held for a whole answer (it serves the API): the
 * answers of the two big prefixes are decoded and compared with the previous
 * read off the main thread (discovery's KvChangeReader); the entries that
 * changed are parsed here in slices of about 10 ms with waiting I/O let in
 * between, and the view takes them all at once, so a snapshot never sees
 * half an answer. An unchanged task keeps its ObservedTask object from one
 * snapshot to the next, so the translation to allocations
 * (scheduler/state/observe.ts AllocTranslator) redoes only what changed.
 */
import { EventEmitter } from 'node:events';
import { AllocationSchema, type Allocation, type AllocStatus, AllocStatusSchema, ALLOCS_PREFIX, ALLOC_STATUS_PREFIX } from '../../base/contracts/alloc.js';
import type { AgentEntry, ObservedTask } from '../../scheduler/index.js';
import { BlockingWatch, type DiscoveryClient, type Instance, type KvChanges, KvChangeReader, type KvEntry, serviceId, watchKeyPrefix, watchService } from '../../discovery/index.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { sleep, systemTimers } from '../../base/clock.js';
import type { Logger } from '../../base/log.js';
import type { Verification } from '../../base/signing.js';
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
  /**
   * How allocation documents are judged, fixed for one pass (scheduler-signing.ts
   * `signedReader`): one that does not verify is no allocation to the scheduler,
   * as to the hosts (they refuse it).
   */
  readAllocations: () => (key: string, raw: string | null) => Verification;
}

/** One allocation document as last parsed: undefined `doc` when it does not match the contract. */
interface AllocView {
  modifyIndex: number;
  host: string;
  doc: Allocation | undefined;
  /** Its status record's key. */
  statusKey: string;
  /** The task as last observed: kept while its document, status and checks stay the same. */
  task?: ObservedTask;
}

/** One status record as last parsed: undefined `doc` when invalid. */
interface StatusView {
  modifyIndex: number;
  doc: AllocStatus | undefined;
}

/** How long changed entries are parsed before waiting I/O (API requests) is let in. */
const SLICE_MS = 10;

/** Tells a long synchronous pass when to let waiting I/O in; throws once `signal` is aborted. */
class Slices {
  private since = performance.now();
  constructor(private readonly signal: AbortSignal) {}
  async next(): Promise<void> {
    if (performance.now() - this.since < SLICE_MS) return;
    await new Promise((resolve) => setImmediate(resolve));
    this.signal.throwIfAborted();
    this.since = performance.now();
  }
}

/**
 * Pacing of the big prefixes' reads: after an answer of N entries the next
 * read waits until N x this (ms) has passed. Consul answers a recursive read
 * with the whole prefix, so reading it costs both sides work in proportion
 * to N; spacing the reads in proportion to N keeps that cost per second
 * constant (and the total linear in the size of a deploy) at the price of
 * seeing changes up to N x this later (0.5 s at 10,000 allocations).
 */
export const PACE_MS_PER_ENTRY = 0.05;

/** The contracts' checks, compiled once: thousands of documents are checked during a deploy. */
const checkAllocation = TypeCompiler.Compile(AllocationSchema);
const checkStatus = TypeCompiler.Compile(AllocStatusSchema);

/** An entry's value as read: text, bytes, or none. */
type RawItem = { Value: Buffer | string | null };

/** Keys of `view` that a full answer lacks: gone since the view was filled. */
function absentFrom(view: ReadonlyMap<string, unknown>, changes: KvChanges): string[] {
  const present = new Set(changes.changed.map((c) => c.key));
  return [...view.keys()].filter((k) => !present.has(k));
}

/** Keeps the scheduler's view of Consul current. */
export class ClusterObserver extends EventEmitter<{ change: [] }> {
  private readonly client: DiscoveryClient;
  private readonly logger: Logger;
  private readonly waitMs: number;
  private readonly agents: BlockingWatch<AgentEntry[]>;
  private readonly kv: Record<'jobs' | 'drain' | 'jobStatus', BlockingWatch<KvEntry[]>>;
  /** The parsed views' watches: their value is the view's version. */
  private readonly views: Record<'allocs' | 'status', BlockingWatch<number>>;
  private readonly allocView = new Map<string, AllocView>();
  private readonly statusView = new Map<string, StatusView>();
  /** Keys of the status records with no allocation document at the matching key, kept as both views change. */
  private readonly orphans = new Set<string>();
  /** Allocation documents per service name (the service health watches follow it). */
  private readonly serviceUse = new Map<string, number>();
  private readonly readers: KvChangeReader[] = [];
  private readonly services = new Map<string, BlockingWatch<Instance[]>>();
  private readonly warned = new Set<string>();
  private readonly readAllocations: ObserverOptions['readAllocations'];
  /** The snapshot of the current values; dropped on any change. */
  private memo: ClusterSnapshot | undefined;

  constructor(opts: ObserverOptions) {
    super();
    this.client = opts.client;
    this.logger = opts.logger;
    this.waitMs = opts.waitMs ?? 30_000;
    this.readAllocations = opts.readAllocations;
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
      drain: watchKeyPrefix(this.client, DRAIN_PREFIX, wopts),
      jobStatus: watchKeyPrefix(this.client, STATUS_PREFIX, wopts),
    };
    this.views = {
      allocs: this.viewWatch(ALLOCS_PREFIX, (changes, signal) => this.applyAllocs(changes, signal)),
      status: this.viewWatch(ALLOC_STATUS_PREFIX, (changes, signal) => this.applyStatuses(changes, signal)),
    };
    this.agents.on('change', this.fire);
    for (const w of Object.values(this.kv)) w.on('change', this.fire);
    for (const w of Object.values(this.views)) w.on('change', this.fire);
  }

  private readonly fire = (): void => {
    this.memo = undefined;
    this.emit('change');
  };

  /** Resolves once every watch has a first value. */
  async ready(): Promise<void> {
    await Promise.all([this.agents.ready(), ...Object.values(this.kv).map((w) => w.ready()), ...Object.values(this.views).map((w) => w.ready())]);
    this.syncServiceWatches();
    await Promise.all([...this.services.values()].map((w) => w.ready()));
  }

  /**
   * The joined last good values, computed once per change (the loop and every
   * API call share it). `jobs` is the caller's own copy: the loop overlays the
   * versions it wrote.
   */
  snapshot(): ClusterSnapshot {
    this.memo ??= this.compute();
    return { ...this.memo, jobs: new Map(this.memo.jobs) };
  }

  private compute(): ClusterSnapshot {
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
    const health = new Map<string, boolean>();
    for (const w of this.services.values()) for (const i of w.current() ?? []) health.set(i.id, i.healthy);
    const tasks: ObservedTask[] = [];
    for (const v of this.allocView.values()) {
      const { host, doc } = v;
      if (doc === undefined) continue;
      const status = this.statusView.get(v.statusKey)?.doc;
      const checksPassing = doc.labels[LABEL.service] === undefined ? undefined : health.get(serviceId(host, doc.id));
      // The same object while nothing about the task changed: the translation to allocations reuses its result.
      if (v.task === undefined || v.task.status !== status || v.task.checksPassing !== checksPassing) v.task = { host, doc, status, checksPassing };
      tasks.push(v.task);
    }
    return { agents: this.agents.current() ?? [], jobs, jobIndexes, statuses, statusIndexes, tasks, drained };
  }

  /** The least time between two reads of the allocation documents now (PACE_MS_PER_ENTRY per document). */
  allocReadPaceMs(): number {
    return this.allocView.size * PACE_MS_PER_ENTRY;
  }

  /** Whether the allocation watch shows a document at `key` now (the loop waits until its own writes show). */
  hasAlloc(key: string): boolean {
    return this.allocView.has(key);
  }

  /**
   * Status records (`weft/alloc-status/<host>/<alloc>`) with no allocation
   * document at `weft/allocs/<host>/<alloc>` (valid or not), with the index
   * they were read at: what a stop or a refused document left behind.
   */
  orphanStatuses(): Array<{ host: string; alloc: string; key: string; modifyIndex: number }> {
    const out: Array<{ host: string; alloc: string; key: string; modifyIndex: number }> = [];
    for (const key of this.orphans) {
      const v = this.statusView.get(key);
      const rest = key.slice(ALLOC_STATUS_PREFIX.length);
      const slash = rest.indexOf('/');
      if (v === undefined || slash <= 0 || slash === rest.length - 1) continue;
      out.push({ host: rest.slice(0, slash), alloc: rest.slice(slash + 1), key, modifyIndex: v.modifyIndex });
    }
    return out;
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    await Promise.all([
      this.agents.close(),
      ...Object.values(this.kv).map((w) => w.close()),
      ...Object.values(this.views).map((w) => w.close()),
      ...[...this.services.values()].map((w) => w.close()),
    ]);
    for (const r of this.readers) r.close();
  }

  /**
   * A blocking watch on `prefix` whose raw answers are compared with the
   * previous read off the main thread (KvChangeReader) and whose changes go
   * through `apply` (which parses them and updates a view, saying whether it
   * changed); its value is the view's version, so an unchanged answer is
   * recognised without comparing entries.
   */
  private viewWatch(prefix: string, apply: (changes: KvChanges, signal: AbortSignal) => Promise<boolean>): BlockingWatch<number> {
    let version = 0;
    let pacedUntil = 0;
    const reader = new KvChangeReader(prefix);
    this.readers.push(reader);
    return new BlockingWatch<number>(
      `kv ${prefix}`,
      async (index, waitMs, signal) => {
        const wait = pacedUntil - performance.now();
        if (wait > 0) await sleep(wait, systemTimers, signal);
        signal.throwIfAborted();
        // The answer goes to the reader's worker as it arrives; it is decoded and compared there.
        const r = await this.client.queryRaw('kv.get', '/kv/{key}', { key: prefix }, { recurse: 'true' }, { index, waitMs, signal, into: reader.sink() });
        try {
          const changes = await reader.changes(r.status !== 404);
          if (await apply(changes, signal)) version++;
          pacedUntil = performance.now() + changes.entries * PACE_MS_PER_ENTRY;
        } catch (err) {
          reader.reset(); // the view did not take this answer: the next one is compared with nothing
          throw err;
        }
        return { value: version, index: r.index };
      },
      { logger: this.logger, waitMs: this.waitMs },
    );
  }

  private async applyAllocs(changes: KvChanges, signal: AbortSignal): Promise<boolean> {
    const slices = new Slices(signal);
    const updates: Array<[string, AllocView]> = [];
    let read: ((key: string, raw: string | null) => Verification) | undefined;
    for (const item of changes.changed) {
      const key = item.key;
      if (this.allocView.get(key)?.modifyIndex === item.modifyIndex) continue; // a full answer repeats what the view holds
      const rest = key.slice(ALLOCS_PREFIX.length);
      const slash = rest.indexOf('/');
      if (slash <= 0) continue;
      read ??= this.readAllocations();
      const doc = this.parseAlloc(key, item.value, read);
      updates.push([key, { modifyIndex: item.modifyIndex, host: rest.slice(0, slash), doc, statusKey: ALLOC_STATUS_PREFIX + rest }]);
      await slices.next();
    }
    // The view takes the whole answer at once: a snapshot never sees half of it.
    let changed = updates.length > 0;
    for (const [key, view] of updates) {
      const cur = this.allocView.get(key);
      if (cur?.doc !== undefined) this.useService(cur.doc, -1);
      if (view.doc !== undefined) this.useService(view.doc, 1);
      this.allocView.set(key, view);
      this.orphans.delete(view.statusKey);
    }
    for (const key of changes.full ? absentFrom(this.allocView, changes) : changes.gone) {
      const cur = this.allocView.get(key);
      if (cur === undefined) continue;
      if (cur.doc !== undefined) this.useService(cur.doc, -1);
      this.allocView.delete(key);
      if (this.statusView.has(cur.statusKey)) this.orphans.add(cur.statusKey);
      changed = true;
    }
    if (changed) this.syncServiceWatches();
    return changed;
  }

  private async applyStatuses(changes: KvChanges, signal: AbortSignal): Promise<boolean> {
    const slices = new Slices(signal);
    const updates: Array<[string, StatusView]> = [];
    for (const item of changes.changed) {
      if (this.statusView.get(item.key)?.modifyIndex === item.modifyIndex) continue;
      const doc = this.parse<AllocStatus>(item.key, item.value);
      updates.push([item.key, { modifyIndex: item.modifyIndex, doc: doc !== undefined && checkStatus.Check(doc) ? doc : undefined }]);
      await slices.next();
    }
    let changed = updates.length > 0;
    for (const [key, view] of updates) {
      this.statusView.set(key, view);
      if (!this.allocView.has(ALLOCS_PREFIX + key.slice(ALLOC_STATUS_PREFIX.length))) this.orphans.add(key);
    }
    for (const key of changes.full ? absentFrom(this.statusView, changes) : changes.gone) {
      changed = this.statusView.delete(key) || changed;
      this.orphans.delete(key);
    }
    return changed;
  }

  private parseAlloc(key: string, value: RawItem['Value'], read: (key: string, raw: string | null) => Verification): Allocation | undefined {
    const v = read(key, value === null ? null : value.toString());
    if (!v.ok) {
      this.warnOnce(key, `allocation document refused (${v.reason}: ${v.detail}); ignored, as hosts refuse it`);
      return undefined;
    }
    const raw = this.parse<Allocation>(key, v.doc);
    if (raw === undefined) return undefined;
    // The scheduler's own documents pass the compiled check as they are; others get their defaults first.
    const doc = checkAllocation.Check(raw) ? raw : (Value.Default(AllocationSchema, raw) as Allocation);
    if (!checkAllocation.Check(doc)) {
      this.warnOnce(key, 'allocation document does not match the contract; ignored');
      return undefined;
    }
    return doc;
  }

  private useService(doc: Allocation, delta: number): void {
    const s = doc.labels[LABEL.service];
    if (s === undefined) return;
    const n = (this.serviceUse.get(s) ?? 0) + delta;
    if (n <= 0) this.serviceUse.delete(s);
    else this.serviceUse.set(s, n);
  }

  /** One health watch per service the allocations register; watches of services no longer used are closed. */
  private syncServiceWatches(): void {
    for (const s of this.serviceUse.keys()) {
      if (this.services.has(s)) continue;
      const w = watchService(this.client, s, { passingOnly: false, logger: this.logger, waitMs: this.waitMs });
      w.on('change', this.fire);
      this.services.set(s, w);
    }
    for (const [s, w] of this.services) {
      if (this.serviceUse.has(s)) continue;
      this.services.delete(s);
      void w.close();
    }
  }

  private parse<T>(key: string, value: RawItem['Value']): T | undefined {
    try {
      return JSON.parse(value === null ? '' : value.toString()) as T;
    } catch {
      this.warnOnce(key, 'not JSON; ignored');
      return undefined;
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
