/**
 * The autoscaler of the running scheduler: on the leader only (created on
 * acquiring `weft/leader`, stopped on losing it, next to the control loop),
 * one runner per job group with an `autoscale` policy, each deciding every
 * `policy.intervalMs`:
 *
 *   observer snapshot ─▶ the group's count (job document) and instances
 *                        (allocations; ready = running with passing checks)
 *   MetricSource.fetch ─▶ readings            (scrape or prometheus, per cluster)
 *   decide()           ─▶ Decision            (scheduler/autoscale, pure)
 *   apply              ─▶ the job document's count, fenced check-and-set (what
 *                         `weft scale` changes): the reconciler places or stops
 *                         instances; a stopped one is drained first by its agent
 *   then               ─▶ weft/autoscale/<job>/<group>: the history (fenced),
 *                         stored only after the count, so a lost write leaves
 *                         no phantom scale event
 *   and                ─▶ a job event (weft status) for every decision that moves
 *                         the count, would in a dry run, or fails (rate-limited),
 *                         and weft_autoscaler_* (scheduler-autoscale-metrics.ts)
 *
 * A new leader reads each group's history from KV before its first decision,
 * so a failover keeps the stabilization windows, cooldowns and the idle clock.
 *
 * Activation: a caller's proxy holding a request for a service at zero writes
 * `weft/activate/<service>`; the leader watches that prefix (blocking query),
 * runs the decision of the service's group at once with activationRequested,
 * and deletes the key (check-and-set on the index it acted on) once the count
 * is written. `requestActivation(service)` does the same in-process.
 *
 * Time: decisions, history and events read the injected wall clock (`now`,
 * epoch ms: the history crosses processes); the pacing of decisions uses
 * real timers.
 */
import { performance } from 'node:perf_hooks';
import { LABEL } from '../../base/contracts/labels.js';
import type { AutoscaleDecisionView, AutoscaleMetricView, JobEvent } from '../../base/contracts/scheduler-api.js';
import { isWeftError, WeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import { type DiscoveryClient, type Fence, fencedTxn, getJSON, type KvEntry, listEntries, type TxnOp, watchKeyPrefix } from '../../discovery/index.js';
import {
  type AutoscaleHistory,
  type AutoscaleMetric,
  type AutoscalePolicy,
  compileJob,
  type Decision,
  decide,
  type InstanceView,
  type JobState,
  jobInvalid,
  type MetricOutcome,
  type MetricSnapshot,
  type MetricSource,
  type ObservedTask,
  observeAllocs,
  parseHistory,
  validateJobSpec,
} from '../../scheduler/index.js';
import { clearAutoscaleGauges, forgetGroup, recordDecision } from './scheduler-autoscale-metrics.js';
import type { ClusterObserver, ClusterSnapshot } from './scheduler-observer.js';
import { appendStatusEvents } from './scheduler-status.js';
import { ACTIVATE_PREFIX, type AutoscaleRecord, autoscaleKey, type JobRecord, jobKey } from './scheduler-store.js';
import { ZERO_PREFIX, zeroKey } from '../../base/contracts/activation.js';

/** Where the autoscaler reads metrics, per cluster (`scheduler.autoscale.source`). */
export const AUTOSCALE_SOURCES = ['scrape', 'prometheus'] as const;
export type AutoscaleSourceName = (typeof AUTOSCALE_SOURCES)[number];
/** The default: the proxies' /metrics, scraped by the scheduler itself (no Prometheus needed). */
export const DEFAULT_AUTOSCALE_SOURCE: AutoscaleSourceName = 'scrape';
/** Prometheus' API for `source: prometheus` (and PromQL metrics). */
export const DEFAULT_PROMETHEUS_URL = 'http://127.0.0.1:9090';

/** While nothing but timestamps changes, a group's record is stored at most this often (a new recommendation, a move or an event store it at once). */
export const STORE_EVERY_MS = 5_000;
/** At most one failure event per group this often (wall clock); the metrics and the API show every one. */
export const FAILURE_EVENT_EVERY_MS = 60_000;
/** A dry run's would-be move is an event when it differs from the last one, or this long after it. */
export const DRY_RUN_EVENT_EVERY_MS = 60_000;
/** Decisions kept per group for the API. */
export const DECISIONS_KEPT = 10;
/** How long a runner waits for its own count write to show in the watch before deciding again anyway. */
const SETTLE_TIMEOUT_MS = 5_000;
/** Observer changes are folded into one sync of the runners this often at most. */
const SYNC_DELAY_MS = 200;

/** An instance as the sources get it: InstanceView plus its host (the in-flight gauge is per host). */
export type AutoscaleInstance = InstanceView & { host: string };

export interface AutoscalerOptions {
  client: DiscoveryClient;
  observer: ClusterObserver;
  logger: Logger;
  source: MetricSource;
  /** The lock's fence; throws WEFT_ERR_LOCK_LOST when no longer held. */
  fence: () => Fence;
  /** Called when a fenced write is refused: the caller steps down. */
  onLockLost: (err: unknown) => void;
  /** Wall clock, epoch ms (default Date.now). */
  now?: (() => number) | undefined;
  /** Ready instances younger than this count as unready (default: the calculator's DEFAULT_WARMUP_MS). */
  warmupMs?: number | undefined;
  /** Blocking-query wait of the activation watch (default 30 s). */
  watchWaitMs?: number;
}

/** What the API shows of a group, from the leader's memory or its KV record. */
export interface GroupAutoscaleState {
  last: AutoscaleDecisionView | undefined;
  metrics: AutoscaleMetricView[];
  instances: { total: number; ready: number } | undefined;
  decisions: AutoscaleDecisionView[];
}

interface Runner {
  readonly job: string;
  readonly group: string;
  policy: AutoscalePolicy;
  /** The job key's CreateIndex the runner's state belongs to (a purged and re-submitted job starts afresh). */
  incarnation: number | undefined;
  /** undefined until read from KV (the first decision after gaining leadership). */
  history: AutoscaleHistory | undefined;
  view: GroupAutoscaleState;
  storedShape: string | undefined;
  storedAt: number;
  activation: boolean;
  /** Activation keys acted on: key -> the ModifyIndex seen. */
  activationKeys: Map<string, number>;
  /** The count this runner wrote, until the snapshot shows it. */
  expect: { count: number; since: number } | undefined;
  lastFailureEventAt: number | undefined;
  lastDryRunEvent: { from: number; to: number; at: number } | undefined;
  busy: boolean;
  again: boolean;
  current: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  gone: boolean;
}

/** The leader's autoscaler. Create on acquiring the lock, `start()`, and `stop()` on losing it. */
export class Autoscaler {
  private readonly opts: AutoscalerOptions;
  private readonly now: () => number;
  private readonly runners = new Map<string, Runner>();
  private readonly compiled = new Map<string, { text: string; state: JobState }>();
  private activations: ReturnType<typeof watchKeyPrefix> | undefined;
  /** Activation keys with no autoscaled group to act on, already logged. */
  private readonly unknownServices = new Set<string>();
  private syncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** `weft/zero/` as last written (undefined: not read yet): service -> its group. */
  private zeroWritten: Map<string, string> | undefined;
  private zeroWrite: Promise<void> = Promise.resolve();
  private readonly onChange = (): void => {
    if (this.syncTimer !== undefined || this.stopped) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = undefined;
      this.sync();
    }, SYNC_DELAY_MS);
  };

  constructor(opts: AutoscalerOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  /** Starts a runner per autoscaled group (each reads its history first) and the activation watch. */
  start(): void {
    this.opts.observer.on('change', this.onChange);
    this.sync();
    const w = watchKeyPrefix(this.opts.client, ACTIVATE_PREFIX, { logger: this.opts.logger, waitMs: this.opts.watchWaitMs ?? 30_000 });
    w.on('change', (entries) => this.onActivations(entries));
    this.activations = w;
  }

  /** Stops after the decisions in progress; clears the gauges (a standby reports none). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.observer.off('change', this.onChange);
    clearTimeout(this.syncTimer);
    for (const r of this.runners.values()) clearTimeout(r.timer);
    await this.activations?.close();
    await this.zeroWrite;
    await Promise.all([...this.runners.values()].map((r) => r.current));
    this.runners.clear();
    clearAutoscaleGauges();
  }

  /**
   * A caller's proxy holds a request for `service`, which is at zero: the
   * group(s) measuring that service decide at once with activationRequested.
   * Returns how many groups that is (0: no autoscaled group serves it).
   */
  requestActivation(service: string): number {
    return this.activate(service, undefined);
  }

  /** The leader's view of a group, once it has decided on it (the API's live answer). */
  state(job: string, group: string): GroupAutoscaleState | undefined {
    const r = this.runners.get(runnerId(job, group));
    return r?.view.last === undefined ? undefined : r.view;
  }

  private activate(service: string, key: { key: string; modifyIndex: number } | undefined): number {
    if (this.stopped) return 0;
    let runners = this.runnersFor(service);
    if (runners.length === 0) {
      this.sync(); // a job submitted a moment ago
      runners = this.runnersFor(service);
    }
    for (const r of runners) {
      r.activation = true;
      if (key !== undefined) r.activationKeys.set(key.key, key.modifyIndex);
      this.opts.logger.info({ job: r.job, group: r.group, service }, 'activation requested: deciding now');
      this.kick(r);
    }
    return runners.length;
  }

  private runnersFor(service: string): Runner[] {
    return [...this.runners.values()].filter((r) => r.policy.service === service);
  }

  private onActivations(entries: readonly KvEntry[]): void {
    for (const e of entries) {
      const service = e.key.slice(ACTIVATE_PREFIX.length);
      const acting = [...this.runners.values()].some((r) => r.activationKeys.get(e.key) === e.modifyIndex);
      if (acting) continue;
      if (this.activate(service, { key: e.key, modifyIndex: e.modifyIndex }) > 0) continue;
      // Nothing to wake: drop the key so it does not linger (a proxy writes it again if it still waits).
      if (!this.unknownServices.has(service)) {
        this.unknownServices.add(service);
        this.opts.logger.warn({ key: e.key, service }, 'activation requested for a service no autoscaled group measures; key removed');
      }
      void this.deleteActivation(e.key, e.modifyIndex);
    }
  }

  /** Runners follow the jobs: one per group with an autoscale policy of a running job. */
  private sync(): void {
    if (this.stopped) return;
    const snap = this.opts.observer.snapshot();
    const wanted = new Set<string>();
    for (const [job, rec] of snap.jobs) {
      if (rec.stopped) continue;
      for (const g of this.compile(job, rec).groups) {
        if (g.autoscale === undefined) continue;
        const id = runnerId(job, g.group);
        wanted.add(id);
        const r = this.runners.get(id);
        if (r !== undefined) {
          r.policy = g.autoscale;
          continue;
        }
        const runner = newRunner(job, g.group, g.autoscale);
        this.runners.set(id, runner);
        this.kick(runner);
      }
    }
    for (const [id, r] of this.runners) if (!wanted.has(id)) this.drop(r);
    for (const job of this.compiled.keys()) if (!snap.jobs.has(job)) this.compiled.delete(job);
    this.syncZero();
  }

  /**
   * Keeps `weft/zero/<service>` = the services of groups whose policy allows 0
   * (base/contracts/activation.ts): the proxies hold those services' requests
   * while they have no healthy instance. Fenced; one write at a time.
   */
  private syncZero(): void {
    const wanted = new Map<string, string>(); // service -> {"job","group"}
    for (const r of this.runners.values()) {
      if (r.policy.min === 0 && r.policy.service !== undefined) wanted.set(r.policy.service, JSON.stringify({ job: r.job, group: r.group }));
    }
    this.zeroWrite = this.zeroWrite.then(async () => {
      if (this.stopped) return;
      try {
        if (this.zeroWritten === undefined) {
          const entries = await listEntries(this.opts.client, ZERO_PREFIX);
          this.zeroWritten = new Map(entries.map((e) => [e.key.slice(ZERO_PREFIX.length), e.value ?? '']));
        }
        const written = this.zeroWritten;
        const ops: TxnOp[] = [];
        for (const [service, value] of wanted) if (written.get(service) !== value) ops.push({ verb: 'set', key: zeroKey(service), value: JSON.parse(value) });
        for (const service of written.keys()) if (!wanted.has(service)) ops.push({ verb: 'delete', key: zeroKey(service) });
        if (ops.length === 0) return;
        await fencedTxn(this.opts.client, this.opts.fence(), ops);
        this.zeroWritten = wanted;
      } catch (err) {
        this.zeroWritten = undefined; // read again next time
        if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) this.opts.onLockLost(err);
        else this.opts.logger.warn({ err, prefix: ZERO_PREFIX }, 'could not write the services that may be at zero (retried at the next change)');
      }
    });
  }

  private compile(job: string, rec: JobRecord): JobState {
    const text = JSON.stringify([rec.version, rec.spec]);
    const hit = this.compiled.get(job);
    if (hit !== undefined && hit.text === text) return hit.state;
    const state = compileJob(rec.spec, rec.version);
    this.compiled.set(job, { text, state });
    return state;
  }

  private drop(r: Runner): void {
    r.gone = true;
    clearTimeout(r.timer);
    this.runners.delete(runnerId(r.job, r.group));
    forgetGroup(r.job, r.group);
  }

  /** Runs the group's decision now (or right after the one in progress). */
  private kick(r: Runner): void {
    if (this.stopped || r.gone) return;
    if (r.busy) {
      r.again = true;
      return;
    }
    clearTimeout(r.timer);
    r.timer = undefined;
    r.busy = true;
    const started = performance.now();
    r.current = (async () => {
      let next: number | undefined;
      try {
        next = await this.decideFor(r);
      } catch (err) {
        if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) {
          this.opts.onLockLost(err);
          return;
        }
        this.opts.logger.error({ err, job: r.job, group: r.group }, 'autoscaler decision failed; retrying');
      } finally {
        r.busy = false;
      }
      if (this.stopped || r.gone) return;
      if (r.again) {
        r.again = false;
        this.kick(r);
        return;
      }
      const delay = next ?? Math.max(0, started + r.policy.intervalMs - performance.now());
      r.timer = setTimeout(() => this.kick(r), delay);
    })();
  }

  /** One decision. Returns a delay when the next one should come sooner than the interval. */
  private async decideFor(r: Runner): Promise<number | undefined> {
    const snap = this.opts.observer.snapshot();
    const found = this.groupOf(snap, r.job, r.group);
    if (found === undefined) {
      this.drop(r);
      return undefined;
    }
    const { policy, count, incarnation } = found;
    r.policy = policy;
    if (r.incarnation !== undefined && r.incarnation !== incarnation) {
      // Purged and submitted again under the same name: nothing of the old one applies.
      r.history = undefined;
      r.view = emptyView();
      r.storedShape = undefined;
    }
    r.incarnation = incarnation;
    if (r.expect !== undefined) {
      if (count !== r.expect.count && performance.now() - r.expect.since < SETTLE_TIMEOUT_MS) return 100;
      r.expect = undefined;
    }
    if (r.history === undefined) await this.load(r);
    const nowMs = this.now();
    const instances = groupInstances(snap.tasks, r.job, r.group, policy.service, nowMs);
    const activation = r.activation;
    const acting = new Map(r.activationKeys);
    r.activation = false;
    const metrics = await this.read(r, policy, instances, nowMs);
    if (this.stopped || r.gone) return undefined;
    const d = decide({ policy, current: count, instances, metrics, activationRequested: activation, history: r.history!, nowMs, warmupMs: this.opts.warmupMs });

    let applied = false;
    let writeProblem: string | undefined;
    if (d.apply) {
      try {
        await this.writeCount(r.job, r.group, count, d.desired);
        applied = true;
        r.expect = { count: d.desired, since: performance.now() };
      } catch (err) {
        if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) throw err;
        if (activation) r.activation = true; // not acted on yet
        if (isWeftError(err, 'WEFT_ERR_KV_CAS_CONFLICT')) {
          // `weft scale` or a submit changed the count since the snapshot: decide again on the new one.
          this.opts.logger.debug({ job: r.job, group: r.group }, 'the job document changed while deciding; deciding again');
          return 200;
        }
        writeProblem = err instanceof Error ? err.message : String(err);
        this.opts.logger.warn({ err, job: r.job, group: r.group, to: d.desired }, 'autoscaler could not write the count');
      }
    }
    // A move that was not written leaves no trace in the history (decide recorded it as applied).
    if (!d.apply || applied) r.history = d.history;

    const failed = d.failed || writeProblem !== undefined || d.metrics.some((m) => m.unavailable !== undefined);
    const view: AutoscaleDecisionView = {
      at: new Date(nowMs).toISOString(),
      from: d.current,
      to: d.desired,
      direction: d.direction,
      applied,
      dryRun: policy.dryRun,
      failed,
      activation,
      reason: writeProblem === undefined ? d.reason : `${d.reason}; not applied: ${writeProblem}`,
    };
    const metricViews = metricViewsOf(policy, metrics, d.metrics, instances);
    const eventType = this.eventTypeFor(r, view, nowMs);
    r.view = {
      last: view,
      metrics: metricViews,
      instances: { total: instances.length, ready: instances.filter((i) => i.ready).length },
      decisions: eventType === undefined ? r.view.decisions : [...r.view.decisions, view].slice(-DECISIONS_KEPT),
    };
    recordDecision(r.job, r.group, {
      current: d.current,
      desired: d.desired,
      max: policy.max,
      direction: d.direction,
      reason: decisionCategory(d, policy.dryRun, writeProblem !== undefined),
      metrics: metricViews.map((m) => ({ name: m.name, value: m.value === null ? undefined : baseUnits(m.kind, m.value), target: baseUnits(m.kind, m.target) })),
    });
    if (applied || eventType !== undefined) {
      this.opts.logger.info({ job: r.job, group: r.group, from: d.current, to: d.desired, applied, dryRun: policy.dryRun, failed }, `autoscaler: ${view.reason}`);
    }

    // The history only after the count (above), then the event, then the activation keys.
    await this.store(r, applied || eventType !== undefined);
    if (eventType !== undefined) {
      const event: JobEvent = { at: view.at, type: eventType, message: `${r.group}: ${view.reason}` };
      try {
        await appendStatusEvents(this.opts.client, this.opts.fence(), r.job, incarnation, [event]);
      } catch (err) {
        if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) throw err;
        this.opts.logger.warn({ err, job: r.job }, 'could not record the autoscaler event');
      }
    }
    if (activation && (!d.apply || applied)) {
      for (const [key, index] of acting) {
        r.activationKeys.delete(key);
        await this.deleteActivation(key, index);
      }
    }
    return writeProblem === undefined ? undefined : Math.max(1000, policy.intervalMs);
  }

  /** The group's policy, count and job incarnation now; undefined when the group no longer autoscales. */
  private groupOf(snap: ClusterSnapshot, job: string, group: string): { policy: AutoscalePolicy; count: number; incarnation: number | undefined } | undefined {
    const rec = snap.jobs.get(job);
    if (rec === undefined || rec.stopped) return undefined;
    const demand = this.compile(job, rec).groups.find((g) => g.group === group);
    if (demand?.autoscale === undefined) return undefined;
    return { policy: demand.autoscale, count: demand.count, incarnation: snap.jobIndexes.get(job) };
  }

  /**
   * Reads the group's record from KV (the history a previous leader left; its
   * last decisions for the API). A record older than the job document belongs
   * to an earlier incarnation of the job (purged, then submitted again): ignored.
   */
  private async load(r: Runner): Promise<void> {
    const key = autoscaleKey(r.job, r.group);
    const entry = await getJSON<AutoscaleRecord>(this.opts.client, key);
    const stored = entry !== undefined && (r.incarnation === undefined || entry.modifyIndex > r.incarnation) ? entry : undefined;
    const { history, problem } = parseHistory(stored?.value);
    if (problem !== undefined) this.opts.logger.warn({ key, problem }, 'autoscale history unreadable: starting afresh (scale-down holds for one window)');
    r.history = history;
    const v = problem === undefined ? stored?.value : undefined;
    if (v !== undefined) {
      r.view = {
        last: v.last,
        metrics: Array.isArray(v.metrics) ? v.metrics : [],
        instances: v.instances,
        decisions: Array.isArray(v.decisions) ? v.decisions.slice(-DECISIONS_KEPT) : [],
      };
    }
    r.storedShape = shapeOf(history, r.view);
    r.storedAt = performance.now();
    this.opts.logger.debug({ key, recommendations: history.recommendations.length, events: history.events.length }, 'autoscale history read');
  }

  private async read(r: Runner, policy: AutoscalePolicy, instances: readonly AutoscaleInstance[], nowMs: number): Promise<MetricSnapshot> {
    try {
      return await this.opts.source.fetch({ job: r.job, group: r.group, service: policy.service }, policy, instances, nowMs);
    } catch (err) {
      // Sources should not throw; one that does makes every metric unavailable (onError decides).
      const reason = err instanceof Error ? err.message : String(err);
      return { readings: policy.metrics.map(() => ({ kind: 'unavailable' as const, reason })), traffic: undefined };
    }
  }

  /** Sets the group's count in the job document, as `weft scale` does, fenced and checked against the count decided from. */
  private async writeCount(job: string, group: string, from: number, to: number): Promise<void> {
    const entry = await getJSON<JobRecord>(this.opts.client, jobKey(job));
    const g = entry?.value.spec.groups.find((x) => x.name === group);
    if (entry === undefined || g === undefined || entry.value.stopped || (g.count ?? 1) !== from) {
      throw new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `${jobKey(job)}: ${group}'s count is no longer ${from}`, { key: jobKey(job) });
    }
    const spec = { ...entry.value.spec, groups: entry.value.spec.groups.map((x) => (x.name === group ? { ...x, count: to } : x)) };
    const check = validateJobSpec(spec);
    if (!check.ok) throw jobInvalid(check.errors, job);
    const record: JobRecord = { ...entry.value, spec };
    await fencedTxn(this.opts.client, this.opts.fence(), [{ verb: 'cas', key: jobKey(job), value: record, index: entry.modifyIndex }]);
  }

  /** Stores the group's record (fenced): at once when `force` or something but timestamps changed, else every STORE_EVERY_MS. */
  private async store(r: Runner, force: boolean): Promise<void> {
    const history = r.history;
    if (history === undefined) return;
    const shape = shapeOf(history, r.view);
    if (!force && shape === r.storedShape && performance.now() - r.storedAt < STORE_EVERY_MS) return;
    const record: AutoscaleRecord = { ...history, last: r.view.last, metrics: r.view.metrics, instances: r.view.instances, decisions: r.view.decisions };
    try {
      await fencedTxn(this.opts.client, this.opts.fence(), [{ verb: 'set', key: autoscaleKey(r.job, r.group), value: record }]);
      r.storedShape = shape;
      r.storedAt = performance.now();
    } catch (err) {
      if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) throw err;
      this.opts.logger.warn({ err, job: r.job, group: r.group }, 'could not store the autoscale history; retrying at the next decision');
    }
  }

  /** Which event a decision is, if any: moves always, dry-run moves when new, failures rate-limited. */
  private eventTypeFor(r: Runner, view: AutoscaleDecisionView, nowMs: number): string | undefined {
    if (view.applied) return 'autoscaled';
    if (view.failed) {
      if (r.lastFailureEventAt !== undefined && nowMs - r.lastFailureEventAt < FAILURE_EVENT_EVERY_MS && nowMs >= r.lastFailureEventAt) return undefined;
      r.lastFailureEventAt = nowMs;
      return 'autoscale-failed';
    }
    if (view.dryRun && view.direction !== 'none') {
      const last = r.lastDryRunEvent;
      if (last !== undefined && last.from === view.from && last.to === view.to && nowMs - last.at < DRY_RUN_EVENT_EVERY_MS && nowMs >= last.at) return undefined;
      r.lastDryRunEvent = { from: view.from, to: view.to, at: nowMs };
      return 'autoscale-dry-run';
    }
    return undefined;
  }

  /** Deletes an activation key if it still has the index acted on (a newer write stays for the next decision). */
  private async deleteActivation(key: string, index: number): Promise<void> {
    try {
      await fencedTxn(this.opts.client, this.opts.fence(), [
        { verb: 'check-index', key, index },
        { verb: 'delete', key },
      ]);
    } catch (err) {
      if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) {
        this.opts.onLockLost(err);
        return;
      }
      if (!isWeftError(err, 'WEFT_ERR_KV_CAS_CONFLICT')) this.opts.logger.warn({ err, key }, 'could not remove an activation key');
    }
  }
}

function runnerId(job: string, group: string): string {
  return `${job}\u0000${group}`;
}

function emptyView(): GroupAutoscaleState {
  return { last: undefined, metrics: [], instances: undefined, decisions: [] };
}

function newRunner(job: string, group: string, policy: AutoscalePolicy): Runner {
  return {
    job,
    group,
    policy,
    incarnation: undefined,
    history: undefined,
    view: emptyView(),
    storedShape: undefined,
    storedAt: 0,
    activation: false,
    activationKeys: new Map(),
    expect: undefined,
    lastFailureEventAt: undefined,
    lastDryRunEvent: undefined,
    busy: false,
    again: false,
    current: undefined,
    timer: undefined,
    gone: false,
  };
}

/**
 * What of a record is more than timestamps moving: the recommendations' values,
 * the scale events, whether traffic was ever seen, the decisions list. A change
 * here is stored at once; otherwise every STORE_EVERY_MS.
 */
function shapeOf(h: AutoscaleHistory, view: GroupAutoscaleState): string {
  return JSON.stringify([h.recommendations.map((x) => x.desired), h.events, h.lastTrafficAtMs === undefined, view.decisions.length, view.decisions.at(-1)?.at]);
}

/**
 * The group's instances as the calculator and the sources see them: its
 * allocations that are pending or running (a stopped one's document is
 * already gone; a failed one is being replaced), ready when running with every
 * check passing, started when its tasks last turned running (placement time
 * before that), identified by the `weft_instance` of the task registering
 * the measured service (the id its proxy metrics carry).
 */
export function groupInstances(tasks: readonly ObservedTask[], job: string, group: string, service: string | undefined, nowMs: number): AutoscaleInstance[] {
  const mine = tasks.filter((t) => t.doc.job === job && t.doc.group === group);
  const instanceOf = (t: ObservedTask): string => t.doc.placement?.instance ?? t.doc.id;
  const out: AutoscaleInstance[] = [];
  for (const a of observeAllocs(mine, new Map(), nowMs).allocs) {
    if (a.status !== 'running' && a.status !== 'pending') continue;
    const docs = mine.filter((t) => t.host === a.node && instanceOf(t) === a.id);
    const measured =
      docs.find((t) => service !== undefined && t.doc.labels[LABEL.service] === service) ?? docs.find((t) => t.doc.labels[LABEL.service] !== undefined) ?? docs[0];
    if (measured === undefined) continue;
    let startedAtMs = a.createdAtMs;
    if (a.status === 'running') {
      const times = docs.map((t) => Date.parse(t.status?.updatedAt ?? '')).filter((n) => Number.isFinite(n));
      if (times.length > 0) startedAtMs = Math.max(...times);
    }
    out.push({ id: measured.doc.id, ready: a.status === 'running' && a.healthy === true, startedAtMs, host: a.node });
  }
  return out.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}

/** A metric's name as the calculator's reasons print it (metrics.ts metricName). */
export function metricLabel(metric: AutoscaleMetric, index: number): string {
  if (metric.kind === 'latency') return `latency p${Math.round(metric.quantile * 100)}`;
  if (metric.kind === 'promql') return `promql[${index}]`;
  return metric.kind;
}

function describeMetric(metric: AutoscaleMetric): { target: number; unit: string } {
  switch (metric.kind) {
    case 'rps':
      return { target: metric.target, unit: 'req/s' };
    case 'inflight':
      return { target: metric.target, unit: 'requests' };
    case 'promql':
      return { target: metric.target, unit: '' };
    case 'latency':
      return { target: metric.maxMs, unit: 'ms' };
    case 'errors':
      return { target: metric.maxRatio, unit: 'ratio' };
  }
}

/** A view value in Prometheus' base units (latency ms -> s). */
function baseUnits(kind: string, value: number): number {
  return kind === 'latency' ? value / 1000 : value;
}

/**
 * Each policy metric's live value against its target: per-instance metrics
 * averaged over the ready instances that had a value, ceilings as read.
 */
export function metricViewsOf(policy: AutoscalePolicy, snapshot: MetricSnapshot, outcomes: readonly MetricOutcome[], instances: readonly InstanceView[]): AutoscaleMetricView[] {
  const ready = new Set(instances.filter((i) => i.ready).map((i) => i.id));
  return policy.metrics.map((metric, i) => {
    const reading = snapshot.readings[i];
    const outcome = outcomes[i];
    const name = outcome?.name ?? metricLabel(metric, i);
    const { target, unit } = describeMetric(metric);
    let value: number | null = null;
    if (reading?.kind === 'instances') {
      const values = Object.entries(reading.values)
        .filter(([id, v]) => ready.has(id) && Number.isFinite(v) && v >= 0)
        .map(([, v]) => v);
      value = values.length === 0 ? null : values.reduce((s, v) => s + v, 0) / values.length;
    } else if (reading?.kind === 'service' && reading.value !== null && Number.isFinite(reading.value)) {
      value = reading.value;
    }
    const unavailable = reading?.kind === 'unavailable' ? reading.reason : outcome?.unavailable;
    const summary = outcome?.summary ?? (unavailable !== undefined ? `${name} unavailable (${unavailable})` : `${name}: not used by this decision`);
    return {
      name,
      kind: metric.kind,
      value,
      target,
      unit,
      ...(outcome?.wants === undefined ? {} : { wants: outcome.wants }),
      ...(unavailable === undefined ? {} : { unavailable }),
      summary,
    };
  });
}

/** The policy's metrics before any decision measured them (the API's view of a group not decided on yet). */
export function metricPlaceholders(policy: AutoscalePolicy): AutoscaleMetricView[] {
  return policy.metrics.map((metric, i) => {
    const name = metricLabel(metric, i);
    const { target, unit } = describeMetric(metric);
    return { name, kind: metric.kind, value: null, target, unit, summary: `${name}: not measured yet` };
  });
}

/**
 * A decision's reason as a short, bounded label for weft_autoscaler_decisions_total
 * (the full text is in the event and the API): failed, dry-run (a would-be
 * move), activation, min (raised to autoscale.min from zero), zero (at zero,
 * nothing waiting), idle (idleToZero), on-error, no-data, held (a window or
 * cooldown kept the count), capped (a move cut short), metrics.
 */
export function decisionCategory(d: Pick<Decision, 'reason' | 'direction' | 'failed'>, dryRun: boolean, writeFailed = false): string {
  const reason = d.reason.startsWith('dry run: ') ? d.reason.slice('dry run: '.length) : d.reason;
  if (d.failed || writeFailed) return 'failed';
  if (dryRun && d.direction !== 'none') return 'dry-run';
  if (reason.startsWith('activation:')) return 'activation';
  if (reason.startsWith('below autoscale.min')) return 'min';
  if (reason.startsWith('at zero')) return 'zero';
  if (reason.startsWith('no request for')) return 'idle';
  if (reason.includes('(onError ')) return 'on-error';
  if (reason.startsWith('nothing to act on')) return 'no-data';
  if (d.direction === 'none' && reason.includes(', held by ')) return 'held';
  if (reason.includes(', capped by ')) return 'capped';
  return 'metrics';
}
