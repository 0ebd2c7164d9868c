/**
 * Runs what the scheduler assigned to this host:
 *
 *   weft/allocs/<host>/ (blocking query) ─▶ reconcile
 *     wanted, no task            ─▶ create + start             status pending -> running
 *     wanted, task with same hash ─▶ adopt as is (agent restart: same container, no restart)
 *     wanted, task with new hash  ─▶ drain + stop + remove, then start the new one
 *     not wanted, task           ─▶ drain + stop + remove      status key deleted
 *   task dies (not stopped by us) ─▶ restart-policy.ts: restart after a delay, or failed
 *
 * A document runs only when the scheduler signed it for its key (base/signing.ts,
 * keys from signing-keys.ts): one that does not verify (written by hand, moved
 * from another host or name, tampered, an older version written back, a
 * retired key) is refused, logged once and counted, and never started; the
 * version verified last stays in force, and a task already running for a
 * refused document is left as it is (never started, never stopped by it).
 * Deleting a document stops its task: a deletion cannot be signed.
 *
 * State goes to weft/alloc-status/<host>/<alloc> on every transition, the
 * reports of a moment batched into one transaction (status-reporter.ts); a
 * record whose document is gone (one this agent refused to run, or one left
 * by a crash) is deleted, with check-and-set, at the next reconcile. Each
 * reconcile reads the host's records once (restart budgets, stale records),
 * not once per allocation. Work on one allocation is serialised; reconciles
 * never overlap. Secrets are fetched
 * at every start and restart (alloc-secrets.ts), never kept in a driver's
 * state, and their files go with the allocation.
 */
import { type BlockingWatch, deleteKey, type DiscoveryClient, type KvEntry, listEntries, watchKeyPrefix } from '../discovery/index.js';
import { ALLOC_STATUS_PREFIX, ALLOCS_PREFIX, type Allocation, type AllocState, type AllocStatus, allocStatusKey } from '../base/contracts/alloc.js';
import { LABEL } from '../base/contracts/labels.js';
import { isSegment } from '../base/contracts/names.js';
import { isWeftError, type WeftError } from '../base/errors.js';
import type { Logger } from '../base/log.js';
import { REFUSAL_REASONS, type Refused, type RefusalReason, SignedDocGate, type SigningKeySet } from '../base/signing.js';
import { AllocSecrets } from './alloc-secrets.js';
import { parseAllocation, specHash, taskName, taskSpec } from './alloc-spec.js';
import { AGENT_LABELS, type Driver, type DriverEvent, runTask, type TaskInfo } from './driver.js';
import { decodeTask, type Registrar } from './registrar.js';
import { decideRestart } from './restart-policy.js';
import type { SecretSource } from './scheduler-secrets.js';
import { StatusReporter } from './status-reporter.js';

export interface AllocRunnerOptions {
  driver: Driver;
  client: DiscoveryClient;
  registrar: Registrar;
  host: string;
  hostAddress: string;
  /** This host's volumes, name -> directory (agent.hostVolumes), for allocations that mount them. */
  hostVolumes?: Readonly<Record<string, string>>;
  logger: Logger;
  /** SIGTERM -> SIGKILL deadline when stopping an allocation (in-flight requests finish within it). */
  stopDeadlineMs?: number;
  /** Blocking query wait (tests lower it). */
  watchWaitMs?: number;
  /** Where secret values come from (the scheduler API); without it, an allocation naming secrets fails to start. */
  secrets?: SecretSource | undefined;
  /** `<dataDir>/agent/secrets`: file secrets, one 0700 directory per allocation; without it, file secrets fail. */
  secretsDir?: string | undefined;
  /** Called when the services named by this host's allocation documents changed (`services()`). */
  onServicesChange?: (() => void) | undefined;
  /** The scheduler's public keys (signing-keys.ts `SigningKeys`): only documents that verify with them run. */
  signingKeys: AllocKeySource;
}

/** Where the runner gets the scheduler's public keys: `SigningKeys`, or anything with its shape. */
export interface AllocKeySource {
  /** The keys known now; undefined before any arrived (then nothing new starts). */
  current(): SigningKeySet | undefined;
  /** A document named a key this host lacks: fetch soon. */
  refreshSoon(): void;
  on(event: 'change', listener: (set: SigningKeySet) => void): unknown;
  off(event: 'change', listener: (set: SigningKeySet) => void): unknown;
}

/** One allocation document as parsed: the allocation (with its hash and service), or the error that refused it. */
interface ParsedDoc {
  modifyIndex: number;
  alloc?: Allocation;
  hash?: string;
  service?: string | undefined;
  error?: WeftError;
  /** The signature check refused this value and no verified version is in force: nothing runs for it. */
  refused?: Refused;
}

interface Tracked {
  alloc: Allocation;
  hash: string;
  taskId: string | undefined;
  restarts: number;
  history: number[];
  timer: NodeJS.Timeout | undefined;
  stopping: boolean;
  failed: boolean;
  /** The state last reported for it. */
  state?: AllocState | undefined;
  /** The last report made (a failed one is made again while it is still the last). */
  lastReport?: Omit<AllocStatus, 'id' | 'updatedAt'> | undefined;
}

/** After a status report Consul did not take (the reporter's own retries spent), it is made again this much later. */
const REPORT_AGAIN_MS = 30_000;

/** The allocation runner of one host. */
export class AllocRunner {
  private readonly opts: AllocRunnerOptions & { stopDeadlineMs: number };
  private readonly tracked = new Map<string, Tracked>();
  private readonly queues = new Map<string, Promise<void>>();
  private watch: BlockingWatch<KvEntry[]> | undefined;
  private reconciling: Promise<void> = Promise.resolve();
  private readonly onEvent = (e: DriverEvent) => void this.onDriverEvent(e);
  private closed = false;
  private readonly secrets: AllocSecrets;
  /** The services this host's allocation documents name, as of the last reconcile. */
  private docServices: string[] = [];
  /** This host's documents as last parsed, by key, with the ModifyIndex they were parsed at. */
  private readonly docs = new Map<string, ParsedDoc>();
  private readonly reporter: StatusReporter;
  private readonly gate = new SignedDocGate();
  private readonly refusedCounts = new Map<RefusalReason, number>(REFUSAL_REASONS.map((r) => [r, 0]));
  /** The entries of the last watch answer: reconciled again when the keys change. */
  private lastEntries: KvEntry[] | undefined;
  private waitingForKeys = false;
  private readonly onKeys = (set: SigningKeySet): void => {
    if (!this.gate.setKeys(set)) return;
    // Every document is judged again: one refused for want of a key may verify now, one of a key just retired not.
    this.docs.clear();
    const entries = this.lastEntries;
    if (entries !== undefined && !this.closed) this.enqueue(entries);
  };

  constructor(opts: AllocRunnerOptions) {
    this.opts = { stopDeadlineMs: 10_000, ...opts };
    this.secrets = new AllocSecrets({ root: opts.secretsDir, host: opts.host, source: opts.secrets });
    this.reporter = new StatusReporter(opts.client);
    const keys = opts.signingKeys.current();
    if (keys !== undefined) this.gate.setKeys(keys);
  }

  /** Allocation documents refused by the signature check, by reason, since start (each value counted once). */
  refusals(): ReadonlyMap<RefusalReason, number> {
    return this.refusedCounts;
  }

  /** Adopts this host's tasks, then follows the allocations prefix. Resolves after the first reconcile. */
  async start(): Promise<void> {
    this.opts.driver.on('event', this.onEvent);
    this.opts.signingKeys.on('change', this.onKeys);
    await this.opts.driver.watch();
    const prefix = `${ALLOCS_PREFIX}${this.opts.host}/`;
    const watch = watchKeyPrefix(this.opts.client, prefix, { logger: this.opts.logger, ...(this.opts.watchWaitMs === undefined ? {} : { waitMs: this.opts.watchWaitMs }) });
    this.watch = watch;
    const first = new Promise<void>((resolve) => watch.once('change', () => resolve()));
    watch.on('change', (entries) => this.enqueue(entries));
    await first;
    await this.reconciling;
  }

  private enqueue(entries: KvEntry[]): void {
    this.lastEntries = entries;
    this.reconciling = this.reconciling.then(() => this.reconcile(entries)).catch((err) => this.opts.logger.error({ err }, 'reconcile failed'));
  }

  /** Stops following allocations. Tasks keep running: a restarted agent adopts them. */
  async stop(): Promise<void> {
    this.closed = true;
    this.opts.driver.off('event', this.onEvent);
    this.opts.signingKeys.off('change', this.onKeys);
    this.watch?.close();
    for (const t of this.tracked.values()) if (t.timer !== undefined) clearTimeout(t.timer);
    await this.reconciling;
    await this.reporter.flush();
  }

  /**
   * The services named by the allocation documents of this host (sorted): still
   * wanted here even while no task of theirs runs (pending, restarting, replaced).
   */
  services(): string[] {
    return this.docServices;
  }

  /** The allocation ids this runner manages, their task ids and the state last reported (pending until the first report). */
  snapshot(): Array<{ id: string; taskId: string | undefined; restarts: number; failed: boolean; state: AllocState }> {
    return [...this.tracked.values()].map((t) => ({ id: t.alloc.id, taskId: t.taskId, restarts: t.restarts, failed: t.failed, state: t.state ?? 'pending' }));
  }

  private async reconcile(entries: KvEntry[]): Promise<void> {
    // This host's status records, read once: restart budgets of allocations new to this runner, and stale records.
    const statusPrefix = `${ALLOC_STATUS_PREFIX}${this.opts.host}/`;
    let records: KvEntry[] | undefined;
    try {
      records = await listEntries(this.opts.client, statusPrefix);
    } catch (err) {
      this.opts.logger.warn({ err }, 'could not read this host\'s allocation status records; restart budgets start over, stale records wait for the next reconcile');
    }
    const previous = new Map<string, AllocStatus>();
    for (const e of records ?? []) {
      try {
        previous.set(e.key.slice(statusPrefix.length), JSON.parse(e.value ?? '') as AllocStatus);
      } catch {
        // not JSON: no budget to carry over
      }
    }
    const wanted = new Map<string, Allocation>();
    const hashes = new Map<string, string>();
    const serviceNames = new Set<string>();
    const seen = new Set<string>();
    /** Ids whose document was refused with no verified version in force: nothing starts, nothing is stopped. */
    const refused = new Map<string, { refused: Refused; fresh: boolean }>();
    let withoutKeys = 0;
    const nowMs = Date.now();
    for (const e of entries) {
      if (e.key.endsWith('/')) continue;
      seen.add(e.key);
      // Parsed once per ModifyIndex: a document that did not change is not decoded, validated or hashed again.
      let doc = this.docs.get(e.key);
      let fresh = false;
      if (doc === undefined || doc.modifyIndex !== e.modifyIndex) {
        const parsed = this.parse(e, nowMs);
        doc = parsed.doc;
        fresh = parsed.freshRefusal;
        this.docs.set(e.key, doc);
        if (doc.error !== undefined) {
          const err = doc.error;
          const id = e.key.slice(e.key.lastIndexOf('/') + 1);
          this.opts.logger.warn({ code: err.code, key: err.key, value: err.value }, `allocation ${id} skipped: ${err.message}`);
          if (isSegment(id) && !this.tracked.has(id)) await this.report(id, { state: 'failed', restarts: 0, message: err.message });
        }
      }
      if (doc.refused !== undefined) {
        const id = e.key.slice(e.key.lastIndexOf('/') + 1);
        refused.set(id, { refused: doc.refused, fresh });
        if (!this.gate.hasKeys) withoutKeys++;
      }
      if (doc.alloc === undefined) continue;
      wanted.set(doc.alloc.id, doc.alloc);
      hashes.set(doc.alloc.id, doc.hash!);
      if (doc.service !== undefined) serviceNames.add(doc.service);
    }
    for (const key of this.docs.keys()) if (!seen.has(key)) this.docs.delete(key);
    this.gate.retain(seen); // a deleted document is forgotten: deletions cannot be signed, and stop the task
    if (withoutKeys > 0 && !this.waitingForKeys) {
      this.opts.logger.error(
        { code: 'WEFT_ERR_SIGNED_STATE', source: 'signing keys' },
        `no signing keys from the scheduler yet: ${withoutKeys} allocation document(s) wait; nothing starts or stops until the keys arrive`,
      );
    }
    this.waitingForKeys = withoutKeys > 0;
    const services = [...serviceNames].sort();
    if (services.join(',') !== this.docServices.join(',')) {
      this.docServices = services;
      this.opts.onServicesChange?.();
    }
    const tasks = await this.opts.driver.list({ all: true, label: `${AGENT_LABELS.host}=${this.opts.host}` });
    const byAlloc = new Map<string, TaskInfo>();
    for (const task of tasks) {
      const id = task.labels[AGENT_LABELS.alloc];
      if (id !== undefined) byAlloc.set(id, task);
    }
    const work: Array<Promise<void>> = [];
    for (const [id, alloc] of wanted) work.push(this.serial(id, () => this.ensure(alloc, hashes.get(id)!, byAlloc.get(id), previous.get(id))));
    // A refused document neither starts nor stops anything: a task running for it stays as it is.
    for (const [id, task] of byAlloc) if (!wanted.has(id) && !refused.has(id)) work.push(this.serial(id, () => this.retire(id, task)));
    for (const id of this.tracked.keys()) if (!wanted.has(id) && !byAlloc.has(id) && !refused.has(id)) work.push(this.serial(id, () => this.retire(id, undefined)));
    // The scheduler and `weft status` see why a refused document does not run (once per value, when no task runs for it).
    for (const [id, r] of refused) {
      if (r.fresh && this.gate.hasKeys && isSegment(id) && !byAlloc.has(id) && !this.tracked.has(id)) {
        work.push(this.serial(id, () => this.report(id, { state: 'failed', restarts: 0, message: `refused: not signed by the scheduler for this key (${r.refused.reason}: ${r.refused.detail})` })));
      }
    }
    await Promise.all(work);
    // Secret files of allocations that stopped while no agent watched (retire removes the others).
    this.secrets.sweep(new Set([...wanted.keys(), ...byAlloc.keys()]));
    const prefix = `${ALLOCS_PREFIX}${this.opts.host}/`;
    if (records !== undefined) await this.sweepStatuses(records, new Set(entries.map((e) => e.key.slice(prefix.length))));
  }

  /**
   * Deletes this host's status records (`records`, as read at the start of
   * the reconcile) whose allocation document is gone (`documents`: the ids of
   * every document, valid or not): a document this agent refused leaves no
   * task, so retire never deletes its record; a crash between a stop and the
   * delete leaves one too. Check-and-set on the index read, so a record
   * rewritten meanwhile is kept. Ids still tracked are left to retire.
   */
  private async sweepStatuses(records: readonly KvEntry[], documents: ReadonlySet<string>): Promise<void> {
    const prefix = `${ALLOC_STATUS_PREFIX}${this.opts.host}/`;
    try {
      for (const e of records) {
        const id = e.key.slice(prefix.length);
        if (id === '' || id.includes('/') || documents.has(id) || this.tracked.has(id)) continue;
        if (await deleteKey(this.opts.client, e.key, { cas: e.modifyIndex })) this.opts.logger.info({ alloc: id }, 'removed the status record of an allocation whose document is gone');
      }
    } catch (err) {
      this.opts.logger.warn({ err }, 'could not remove stale allocation status records; the next reconcile retries');
    }
  }

  /**
   * Judges one document: its signature first (the version in force when this
   * value is refused), then the allocation, its spec hash and the service it
   * registers, or why it is refused. `freshRefusal`: refused, and the first
   * time for this value (logged and counted then).
   */
  private parse(e: KvEntry, nowMs: number): { doc: ParsedDoc; freshRefusal: boolean } {
    const admission = this.gate.admit(e.key, e.value, nowMs);
    const refusal = admission.refused;
    if (refusal !== undefined && admission.fresh) {
      this.refusedCounts.set(refusal.reason, (this.refusedCounts.get(refusal.reason) ?? 0) + 1);
      if (refusal.reason === 'unknown-key') this.opts.signingKeys.refreshSoon();
      if (this.gate.hasKeys) {
        this.opts.logger.warn(
          { code: 'WEFT_ERR_SIGNED_STATE', key: e.key, reason: refusal.reason },
          `allocation document refused: ${refusal.detail}; ${admission.doc === undefined ? 'nothing runs for it' : 'the version verified last stays in force'}`,
        );
      }
    }
    const freshRefusal = refusal !== undefined && admission.fresh;
    if (admission.doc === undefined) return { doc: { modifyIndex: e.modifyIndex, ...(refusal === undefined ? {} : { refused: refusal }) }, freshRefusal };
    try {
      const alloc = parseAllocation(e.key, admission.doc);
      return { doc: { modifyIndex: e.modifyIndex, alloc, hash: specHash(alloc), service: serviceOf(alloc) }, freshRefusal };
    } catch (err) {
      if (!isWeftError(err)) throw err;
      return { doc: { modifyIndex: e.modifyIndex, error: err }, freshRefusal };
    }
  }

  private async ensure(alloc: Allocation, hash: string, task: TaskInfo | undefined, previous: AllocStatus | undefined): Promise<void> {
    let t = this.tracked.get(alloc.id);
    if (t !== undefined && t.hash === hash) {
      t.alloc = alloc; // restart policy may have changed
      return;
    }
    if (t === undefined) {
      const history = previous?.recentRestarts ?? [];
      t = { alloc, hash, taskId: undefined, restarts: previous?.restarts ?? 0, history, timer: undefined, stopping: false, failed: false };
      this.tracked.set(alloc.id, t);
    }
    if (task !== undefined && task.labels[AGENT_LABELS.specHash] === hash) {
      t.taskId = task.id;
      t.hash = hash;
      if (task.running) {
        this.opts.logger.info({ alloc: alloc.id, task: task.name }, 'adopted a running allocation');
        await this.report(alloc.id, { state: 'running', restarts: t.restarts, containerId: task.id });
      } else {
        await this.exited(t, task.exitCode); // exited while no agent watched: the policy decides
      }
      return;
    }
    if (task !== undefined) {
      this.opts.logger.info({ alloc: alloc.id }, 'allocation changed: replacing its task');
      await this.stopTask(t, task);
      t.restarts = 0;
      t.history = [];
    }
    t.hash = hash;
    t.alloc = alloc;
    t.failed = false;
    await this.launch(t);
  }

  private async launch(t: Tracked): Promise<void> {
    await this.report(t.alloc.id, { state: 'pending', restarts: t.restarts });
    try {
      const base = taskSpec(t.alloc, { host: this.opts.host, hostAddress: this.opts.hostAddress, hostVolumes: this.opts.hostVolumes ?? {} });
      const secrets = await this.secrets.prepare(t.alloc);
      const mounts = [...(base.mounts ?? []), ...secrets.mounts];
      const spec = { ...base, env: { ...base.env, ...secrets.env }, secretEnv: secrets.secretEnv, ...(mounts.length === 0 ? {} : { mounts }) };
      t.taskId = await runTask(this.opts.driver, spec);
      await this.report(t.alloc.id, { state: 'running', restarts: t.restarts, containerId: t.taskId });
      this.opts.logger.info({ alloc: t.alloc.id, task: t.taskId }, 'allocation started');
    } catch (err) {
      t.failed = true;
      this.secrets.remove(t.alloc.id);
      this.opts.logger.error({ err, alloc: t.alloc.id }, 'allocation failed to start');
      await this.report(t.alloc.id, { state: 'failed', restarts: t.restarts, message: (err as Error).message });
    }
  }

  private async retire(id: string, task: TaskInfo | undefined): Promise<void> {
    const t = this.tracked.get(id);
    if (t !== undefined) {
      t.stopping = true;
      if (t.timer !== undefined) clearTimeout(t.timer);
    }
    if (task !== undefined) await this.stopTask(t, task);
    this.tracked.delete(id);
    this.secrets.remove(id);
    await this.reporter.delete(allocStatusKey(this.opts.host, id));
    this.opts.logger.info({ alloc: id }, 'allocation stopped and removed');
  }

  private async stopTask(t: Tracked | undefined, task: TaskInfo): Promise<void> {
    if (t !== undefined) t.stopping = true;
    try {
      if (task.running) await this.opts.registrar.drainAndStop(task.id, this.opts.stopDeadlineMs);
      await this.opts.driver.remove(task.id, { force: true });
    } finally {
      if (t !== undefined) {
        t.stopping = false;
        t.taskId = undefined;
      }
    }
  }

  private async onDriverEvent(e: DriverEvent): Promise<void> {
    if (e.type !== 'die' || this.closed) return;
    const id = e.labels[AGENT_LABELS.alloc];
    if (id === undefined || e.labels[AGENT_LABELS.host] !== this.opts.host) return;
    await this.serial(id, async () => {
      const t = this.tracked.get(id);
      if (t === undefined || t.stopping || t.taskId !== e.id) return;
      await this.exited(t, e.exitCode);
    }).catch((err) => this.opts.logger.error({ err, alloc: id }, 'could not handle an exit'));
  }

  private async exited(t: Tracked, exitCode: number | undefined): Promise<void> {
    const now = Date.now();
    const decision = decideRestart(t.alloc.restart, t.history, now);
    const code = exitCode === undefined ? {} : { exitCode };
    if (decision.action === 'fail') {
      t.failed = true;
      this.opts.logger.warn({ alloc: t.alloc.id, exitCode }, `allocation failed: ${decision.reason}`);
      await this.report(t.alloc.id, { state: 'failed', restarts: t.restarts, ...code, ...(t.taskId === undefined ? {} : { containerId: t.taskId }), message: decision.reason });
      return;
    }
    this.opts.logger.info({ alloc: t.alloc.id, exitCode, delayMs: decision.delayMs }, 'allocation exited; restarting per its policy');
    await this.report(t.alloc.id, { state: 'pending', restarts: t.restarts, ...code, ...(t.taskId === undefined ? {} : { containerId: t.taskId }) });
    t.timer = setTimeout(() => {
      t.timer = undefined;
      void this.serial(t.alloc.id, async () => {
        if (this.closed || t.stopping || this.tracked.get(t.alloc.id) !== t || t.taskId === undefined) return;
        t.history.push(Date.now());
        t.restarts++;
        try {
          // Values again from the scheduler: the process driver kept them in memory only (lost with an agent restart).
          const secrets = await this.secrets.prepare(t.alloc);
          await this.opts.driver.start(t.taskId, { secretEnv: secrets.secretEnv }); // same container: its id and logs survive the restart
          await this.report(t.alloc.id, { state: 'running', restarts: t.restarts, ...code, containerId: t.taskId });
        } catch (err) {
          t.failed = true;
          await this.report(t.alloc.id, { state: 'failed', restarts: t.restarts, ...code, message: (err as Error).message });
        }
      });
    }, decision.delayMs);
  }

  private async report(id: string, status: Omit<AllocStatus, 'id' | 'updatedAt'>): Promise<void> {
    const t = this.tracked.get(id);
    if (t !== undefined) t.state = status.state;
    const now = Date.now();
    const recent = t === undefined ? [] : t.history.filter((at) => at > now - t.alloc.restart.interval);
    const doc: AllocStatus = { id, ...status, ...(recent.length === 0 ? {} : { recentRestarts: recent }), updatedAt: new Date(now).toISOString() };
    if (t !== undefined) t.lastReport = status;
    try {
      await this.reporter.set(allocStatusKey(this.opts.host, id), doc);
    } catch (err) {
      this.opts.logger.warn({ err, alloc: id }, `could not report allocation status; trying again in ${REPORT_AGAIN_MS / 1000} s`);
      // The scheduler would otherwise wait for a state this task is long in: say it again later,
      // unless a newer report was made meanwhile or the allocation is gone (bounded by its life).
      if (t === undefined) return;
      const timer = setTimeout(() => {
        if (this.closed || this.tracked.get(id) !== t || t.lastReport !== status) return;
        void this.serial(id, () => this.report(id, status));
      }, REPORT_AGAIN_MS);
      timer.unref();
    }
  }

  private serial(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.queues.set(id, tail);
    return next;
  }
}

/** The service an allocation's task registers (its labels decoded as the registrar will), if any. */
function serviceOf(alloc: Allocation): string | undefined {
  const labels = { ...alloc.labels, ...(alloc.port === undefined ? {} : { [AGENT_LABELS.port]: String(alloc.port) }) };
  const decoded = decodeTask({ id: alloc.id, name: taskName(alloc), image: alloc.image, labels, running: false, exitCode: undefined, pid: undefined, startedAt: undefined, exposedPorts: [] });
  if (decoded.ok) return decoded.registration?.service;
  return alloc.labels[LABEL.service];
}
