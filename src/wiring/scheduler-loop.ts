/**
 * The leader's control loop: observe -> translate (scheduler/state) ->
 * reconcile (pure) -> write, every write fenced by the leader lock.
 *
 * It runs on every change the observer reports (coalesced), at the plan's
 * follow-up time (a node turning lost, a delayed reschedule, a health
 * deadline), and at least every `scheduler.reconcileIntervalMs`. Status
 * records of lost hosts whose document is gone are deleted (fenced,
 * check-and-set): no agent is left to do it. After a write
 * it waits until the allocation watch shows its own writes before planning
 * again (bounded), so a stale view never places the same slot twice.
 *
 * At a thousand hosts: writes go out in key order as fenced transactions, 8
 * in flight (scheduler-store.ts pipelinedTxn); a cycle yields to waiting I/O
 * between its phases, and a cycle followed by more changes pauses as long as
 * it ran (at most 0.5 s), so the API answers during a big reconcile. The
 * translation to allocations redoes only the instances whose tasks changed
 * (AllocTranslator), and new ids come from random bytes drawn a few
 * thousand at a time (one draw per id cost 0.1 s per 10,000 placements).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../config/load.js';
import { AllocTranslator, compileJob, type Deployment, type JobSpec, type NodeInfo, observeNodes, readiness, reconcile } from '../../scheduler/index.js';
import { type DiscoveryClient, type Fence, fencedTxn, getJSON, type TxnOp } from '../../discovery/index.js';
import { isWeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import type { SignedEnvelope } from '../../base/signing.js';
import * as m from './scheduler-metrics.js';
import { rememberAllocs } from './scheduler-context.js';
import type { ClusterObserver } from './scheduler-observer.js';
import { planOps, signAllocationOps } from './scheduler-plan-ops.js';
import { observeStatus, writeStatuses } from './scheduler-status.js';
import { type JobRecord, jobKey, pipelinedTxn, STATUS_PREFIX, type StatusRecord, type VersionRecord, versionKey } from './scheduler-store.js';

export interface LoopOptions {
  client: DiscoveryClient;
  observer: ClusterObserver;
  config: Readonly<Config>;
  logger: Logger;
  /** The lock's fence; throws WEFT_ERR_LOCK_LOST when no longer held. */
  fence: () => Fence;
  /** Called when a fenced write is refused: the caller steps down. */
  onLockLost: (err: unknown) => void;
  /** Signs an allocation document (JSON text) for its KV key: the scheduler's signing key (scheduler-signing.ts). */
  sign: (key: string, doc: string) => SignedEnvelope;
}

/** How long the loop waits for its own writes to show in the watch before it re-plans anyway (at least). */
const SETTLE_TIMEOUT_MS = 5_000;
/** Orphaned status records deleted per cycle at most (the deletes wake the next cycle, which goes on). */
const ORPHAN_SWEEP_MAX = 256;
/** The longest pause between two cycles (a pause lasts as long as the cycle before it). */
const MAX_PAUSE_MS = 500;

/** Lets I/O callbacks waiting now (API requests, watch answers) run before going on. */
function yieldToIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** New allocation ids as the core makes them (10 random hex digits), from random bytes drawn 4,000 at a time. */
function allocIds(): () => string {
  let pool = Buffer.alloc(0);
  let at = 0;
  return () => {
    if (at + 5 > pool.length) {
      pool = randomBytes(4000);
      at = 0;
    }
    at += 5;
    return pool.toString('hex', at - 5, at);
  };
}

function byKey(a: TxnOp, b: TxnOp): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The reconcile loop of a leader. Create on acquiring the lock; stop() on losing it. */
export class ControlLoop {
  private readonly opts: LoopOptions;
  private nodes: NodeInfo[] = [];
  private healthySince = new Map<string, number>();
  private readonly translator = new AllocTranslator();
  private readonly newId = allocIds();
  /** Status records this leader wrote (authoritative over a watch that may lag). */
  private readonly statuses = new Map<string, StatusRecord>();
  /** The job incarnation (job key CreateIndex) each cached status record belongs to. */
  private readonly statusOf = new Map<string, number>();
  /** Job versions this leader wrote (auto-revert), same reason. */
  private readonly jobVersions = new Map<string, JobRecord>();
  private expectSet = new Set<string>();
  private expectGone = new Set<string>();
  private expectSince = 0;
  private running = false;
  private dirty = true;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private followUp: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private readonly onChange = (): void => this.kick();

  constructor(opts: LoopOptions) {
    this.opts = opts;
  }

  /** The nodes as last observed (lost_after counts from the first failure this leader saw). */
  get nodeInfos(): readonly NodeInfo[] {
    return this.nodes;
  }

  /** Starts reconciling. */
  start(): void {
    this.opts.observer.on('change', this.onChange);
    this.timer = setInterval(() => this.kick(), this.opts.config.scheduler.reconcileIntervalMs);
    this.kick();
  }

  /** Stops after the reconciliation in progress, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.observer.off('change', this.onChange);
    clearInterval(this.timer);
    clearTimeout(this.followUp);
    await this.current;
    m.clearReplicas();
  }

  /** Asks for a reconciliation soon; calls while one runs coalesce into one more. */
  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.running) return;
    this.running = true;
    this.current = (async () => {
      try {
        while (this.dirty && !this.stopped) {
          this.dirty = false;
          const started = performance.now();
          await this.cycle();
          // Changes that arrived meanwhile make one more cycle, after a pause as long as this one
          // (bounded): a busy cluster gets at most half of the process, the API the rest.
          if (this.dirty && !this.stopped) await sleep(Math.min(performance.now() - started, MAX_PAUSE_MS));
        }
      } finally {
        this.running = false;
      }
    })();
  }

  private settled(): boolean {
    if (this.expectSet.size === 0 && this.expectGone.size === 0) return true;
    const o = this.opts.observer;
    // A write once shown stays counted (the watch only moves forward), so each call checks only what is
    // still missing, from the oldest on, and stops at the first key still missing.
    for (const k of this.expectSet) {
      if (!o.hasAlloc(k)) break;
      this.expectSet.delete(k);
    }
    for (const k of this.expectGone) {
      if (o.hasAlloc(k)) break;
      this.expectGone.delete(k);
    }
    const ok = this.expectSet.size === 0 && this.expectGone.size === 0;
    // The bound grows with the pacing of the allocation reads (1 s apart at 20,000 documents).
    if (ok || Date.now() - this.expectSince > Math.max(SETTLE_TIMEOUT_MS, 10 * o.allocReadPaceMs())) {
      if (!ok) this.opts.logger.warn('allocation watch did not show our writes in time; planning anyway');
      this.expectSet.clear();
      this.expectGone.clear();
      return true;
    }
    return false;
  }

  private async cycle(): Promise<void> {
    if (!this.settled()) {
      this.scheduleFollowUp(Date.now() + 200); // the watch's change will kick sooner
      return;
    }
    const started = process.hrtime.bigint();
    const { config, logger } = this.opts;
    const snap = this.opts.observer.snapshot();
    const nowMs = Date.now();
    for (const [job, rec] of this.jobVersions) {
      const seen = snap.jobs.get(job);
      if (seen === undefined || seen.version >= rec.version) this.jobVersions.delete(job);
      else snap.jobs.set(job, rec);
    }
    // A purged job's record must not come back from this cache, nor its events
    // join a job submitted again under the same name (a new CreateIndex).
    for (const job of [...this.statuses.keys()]) {
      if (snap.jobIndexes.get(job) !== this.statusOf.get(job)) {
        this.statuses.delete(job);
        this.statusOf.delete(job);
      }
    }
    // Events the API appended (submitted, scaled) join the leader's copy; its own fields win.
    for (const [job, rec] of snap.statuses) {
      const created = snap.jobIndexes.get(job);
      if (created === undefined || (snap.statusIndexes.get(job) ?? 0) < created) continue; // no job, or an earlier incarnation's record
      this.statuses.set(job, observeStatus(this.statuses.get(job), rec));
      this.statusOf.set(job, created);
    }
    this.nodes = observeNodes(snap.agents, this.nodes, snap.drained, nowMs);
    await yieldToIo(); // each phase of a big cycle lets waiting API requests in
    if (this.stopped) return;
    const observed = this.translator.translate(snap.tasks, this.healthySince, nowMs);
    this.healthySince = observed.healthySince;
    rememberAllocs(snap.tasks, observed.allocs); // the API's status answers share it until the next change
    await yieldToIo();
    if (this.stopped) return;
    const specs = new Map<string, JobSpec>();
    const jobs = [...snap.jobs].map(([name, rec]) => {
      specs.set(name, rec.spec);
      return compileJob(rec.spec, rec.version, { stopped: rec.stopped });
    });
    const deployments = [...this.statuses.values()].map((s) => s.deployment).filter((d): d is Deployment => d !== undefined);
    const t0 = process.hrtime.bigint();
    const plan = reconcile(
      { nowMs, nodes: this.nodes, jobs, allocs: observed.allocs, deployments },
      {
        lostAfterMs: config.scheduler.lostAfterMs,
        algorithm: config.scheduler.algorithm,
        dynamicPorts: { min: config.scheduler.dynamicPortMin, max: config.scheduler.dynamicPortMax },
        newId: this.newId,
      },
    );
    m.placementLatency.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    m.recordReplicas(jobs, observed.allocs);
    await yieldToIo();
    if (this.stopped) return;
    const built = planOps(plan, { specs, tasks: snap.tasks, statuses: this.statuses, nowMs });
    // Status records go last, merged with what the API appended meanwhile (scheduler-status.ts).
    // In key order: one host's documents land in one transaction, so its agent wakes once for
    // them rather than once per document (spread placement visits every host in turn).
    const ops: TxnOp[] = built.ops.filter((op) => !op.key.startsWith(STATUS_PREFIX)).sort(byKey);
    if (ops.length > 0) await yieldToIo(); // building thousands of documents took a while: let waiting I/O in before signing them
    if (this.stopped) return;
    await signAllocationOps(ops, this.opts.sign);
    if (this.stopped) return;
    for (const r of plan.reverts) ops.push(...(await this.revertOps(r.job, r.toVersion, snap.jobs.get(r.job), built.statuses.get(r.job) ?? this.statuses.get(r.job), built.statuses, nowMs)));
    let written: Map<string, StatusRecord>;
    let writeStarted = process.hrtime.bigint();
    try {
      writeStarted = process.hrtime.bigint();
      if (ops.length > 0) await pipelinedTxn(this.opts.client, this.opts.fence(), ops);
      written = await writeStatuses(this.opts.client, this.opts.fence(), built.statuses, snap.jobIndexes);
    } catch (err) {
      if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) {
        m.reconcilesTotal.inc({ result: 'lock-lost' });
        logger.warn({ err }, 'a fenced write was refused: stepping down');
        this.opts.onLockLost(err);
        return;
      }
      m.reconcilesTotal.inc({ result: 'error' });
      logger.error({ err }, 'applying the plan failed; retrying');
      this.scheduleFollowUp(Date.now() + 1000);
      return;
    }
    for (const [job, rec] of written) {
      this.statuses.set(job, rec);
      this.statusOf.set(job, snap.jobIndexes.get(job)!); // writeStatuses wrote only jobs of this incarnation
    }
    m.recordCluster({
      nodes: this.nodes,
      jobs,
      allocs: observed.allocs,
      deployments: [...this.statuses.values()].map((s) => s.deployment).filter((d): d is Deployment => d !== undefined),
      nowMs,
      lostAfterMs: config.scheduler.lostAfterMs,
    });
    for (const op of ops) {
      if (!op.key.startsWith('weft/allocs/')) continue;
      if (op.verb === 'set') this.expectSet.add(op.key);
      else this.expectGone.add(op.key);
    }
    if (this.expectSet.size + this.expectGone.size > 0) this.expectSince = Date.now();
    for (const p of plan.place) m.placementsTotal.inc({ reason: p.reason });
    for (const s of plan.stop) m.stopsTotal.inc({ reason: s.reason });
    for (const f of plan.failures) m.placementFailuresTotal.inc(f.missing);
    if (built.placed + built.stopped > 0 || plan.reverts.length > 0) {
      const ms = (from: bigint): number => Math.round(Number(process.hrtime.bigint() - from) / 1e6);
      logger.info(
        { placed: built.placed, stopped: built.stopped, reverts: plan.reverts, failures: plan.failures.map((f) => `${f.job}.${f.group}: ${f.message}`), cycleMs: ms(started), writeMs: ms(writeStarted) },
        'plan applied',
      );
    }
    m.reconcilesTotal.inc({ result: 'ok' });
    m.reconcileDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (plan.followUpAtMs !== undefined) this.scheduleFollowUp(plan.followUpAtMs);
    await this.sweepOrphanStatuses(nowMs);
  }

  /**
   * Status records left on lost hosts (or hosts no weft-agent announces any
   * more) whose allocation document is gone. A live agent deletes its own
   * host's (agent/allocations.ts); a lost one never will. Each delete is its
   * own fenced transaction with a check of the index read, so one record
   * rewritten meanwhile neither is deleted nor fails the others.
   */
  private async sweepOrphanStatuses(nowMs: number): Promise<void> {
    const nodes = new Map(this.nodes.map((n) => [n.name, n]));
    const lost = (host: string): boolean => readiness(nodes.get(host), nowMs, this.opts.config.scheduler.lostAfterMs) === 'lost';
    // Records of hosts no agent ever announced count as lost too, so the scan runs whenever there are
    // status records at all; it is one pass over the parsed view, without parsing.
    const orphans = this.opts.observer.orphanStatuses().filter((o) => lost(o.host)).slice(0, ORPHAN_SWEEP_MAX);
    for (const o of orphans) {
      if (this.stopped) return;
      try {
        await fencedTxn(this.opts.client, this.opts.fence(), [
          { verb: 'check-index', key: o.key, index: o.modifyIndex },
          { verb: 'delete', key: o.key },
        ]);
        this.opts.logger.info({ host: o.host, alloc: o.alloc }, 'removed the status record of a lost host whose allocation document is gone');
      } catch (err) {
        if (isWeftError(err, 'WEFT_ERR_LOCK_LOST')) {
          this.opts.onLockLost(err);
          return;
        }
        if (!isWeftError(err, 'WEFT_ERR_KV_CAS_CONFLICT')) this.opts.logger.warn({ err, key: o.key }, 'could not remove an orphaned status record; retrying next cycle');
      }
    }
  }

  /** Auto-revert: the stable version's spec, submitted again as a new version (fingerprints keep its allocations). */
  private async revertOps(job: string, toVersion: number, current: JobRecord | undefined, status: StatusRecord | undefined, into: Map<string, StatusRecord>, nowMs: number): Promise<TxnOp[]> {
    if (current === undefined) return [];
    const stable = await getJSON<VersionRecord>(this.opts.client, versionKey(job, toVersion));
    if (stable === undefined) {
      this.opts.logger.warn({ job, toVersion }, 'auto-revert: the stable version is not in the history');
      return [];
    }
    const version = current.version + 1;
    const submittedAt = new Date(nowMs).toISOString();
    const record: JobRecord = { version, stopped: false, submittedAt, spec: stable.value.spec };
    this.jobVersions.set(job, record);
    this.opts.logger.warn({ job, from: current.version, to: toVersion, version }, 'deployment failed: auto-reverting');
    const ops: TxnOp[] = [
      { verb: 'set', key: versionKey(job, version), value: { version, submittedAt, spec: stable.value.spec } satisfies VersionRecord },
      { verb: 'set', key: jobKey(job), value: record },
    ];
    if (status !== undefined) {
      const next: StatusRecord = {
        ...status,
        events: [...status.events, { at: submittedAt, type: 'reverted', message: `version ${current.version} failed: reverted to the spec of version ${toVersion} as version ${version}`, version }].slice(-100),
      };
      into.set(job, next); // written with the other status records
    }
    return ops;
  }

  private scheduleFollowUp(atMs: number): void {
    clearTimeout(this.followUp);
    if (this.stopped) return;
    this.followUp = setTimeout(() => this.kick(), Math.max(0, Math.min(atMs - Date.now() + 5, 60_000)));
  }
}
