/**
 * Job routes: submit, plan (dry run), get, list, stop, scale, status,
 * versions, revert. A spec is fully checked (schema, semantics, secrets it
 * names exist) before anything is written; writes are check-and-set on
 * `weft/jobs/<job>` so two submits never interleave. Any scheduler instance
 * serves these: the leader's loop picks the change up from its watch.
 * Also the autoscaler's view (`GET /v1/jobs/:job/autoscale`):
 * the leader answers from memory, a standby from the record the leader
 * stores in `weft/autoscale/<job>/<group>`.
 */
import { canonicalJSON, compileJob, type Deployment, jobInvalid, type JobSpec, nextVersion, parseJobSpec, reconcile, type SpecError, validateJobSpec } from '../../scheduler/index.js';
import { deleteKey, getJSON, list, putJSON, update } from '../../discovery/index.js';
import type {
  AllocationView,
  GroupAutoscaleView,
  JobAutoscaleResponse,
  JobStatusResponse,
  JobSubmitResponse,
  JobSummary,
  PlanResponse,
  ScaleRequest,
  ScaleResponse,
} from '../../base/contracts/scheduler-api.js';
import { WeftError } from '../../base/errors.js';
import { currentAllocs, currentNodes, type SchedulerContext } from './scheduler-context.js';
import type { Handlers } from './scheduler-api.js';
import { type GroupAutoscaleState, metricPlaceholders } from './scheduler-autoscaler.js';
import {
  AUTOSCALE_PREFIX,
  type AutoscaleRecord,
  autoscaleKey,
  emptyStatus,
  type JobRecord,
  jobKey,
  pushEvents,
  type StatusRecord,
  statusKey,
  type VersionRecord,
  VERSIONS_PREFIX,
  versionKey,
} from './scheduler-store.js';

type Change = JobSubmitResponse['change'];

/** The job route handlers. */
export function jobHandlers(ctx: SchedulerContext): Pick<Handlers, 'listJobs' | 'submitJob' | 'planJob' | 'getJob' | 'stopJob' | 'scaleJob' | 'jobStatus' | 'jobVersions' | 'revertJob'> {
  return {
    async listJobs() {
      const snap = ctx.observer.snapshot();
      // Counted in one pass over the allocations, not one per job.
      const counts = new Map<string, { running: number; healthy: number }>();
      for (const a of currentAllocs(snap, Date.now())) {
        if (a.status !== 'running') continue;
        const c = counts.get(a.job) ?? { running: 0, healthy: 0 };
        c.running++;
        if (a.healthy === true) c.healthy++;
        counts.set(a.job, c);
      }
      const jobs: JobSummary[] = [...snap.jobs].map(([name, rec]) => ({
        name,
        version: rec.version,
        stopped: rec.stopped,
        submittedAt: rec.submittedAt,
        desired: rec.stopped ? 0 : rec.spec.groups.reduce((s, g) => s + (g.count ?? 1), 0),
        running: counts.get(name)?.running ?? 0,
        healthy: counts.get(name)?.healthy ?? 0,
      }));
      return { jobs };
    },

    async submitJob(req) {
      const spec = await checkedSpec(ctx, (req.body as { spec: unknown }).spec);
      return submit(ctx, spec, 'submitted');
    },

    async planJob(req) {
      const spec = await checkedSpec(ctx, (req.body as { spec: unknown }).spec);
      return dryRun(ctx, spec);
    },

    async getJob(req) {
      const rec = await mustGetJob(ctx, (req.params as { job: string }).job);
      return { name: rec.spec.name, version: rec.version, stopped: rec.stopped, submittedAt: rec.submittedAt, spec: rec.spec };
    },

    async stopJob(req) {
      const { job } = req.params as { job: string };
      const purge = (req.query as { purge?: boolean }).purge === true;
      const current = await getJSON<JobRecord>(ctx.client, jobKey(job));
      if (current === undefined) throw notFound(job);
      if (purge) {
        // Without a job document the loop stops every allocation ('job-removed').
        await deleteKey(ctx.client, jobKey(job), { cas: current.modifyIndex });
        await deleteKey(ctx.client, `${VERSIONS_PREFIX}${job}/`, { recurse: true });
        await deleteKey(ctx.client, statusKey(job));
        await deleteKey(ctx.client, `${AUTOSCALE_PREFIX}${job}/`, { recurse: true });
      } else if (!(await putJSON(ctx.client, jobKey(job), { ...current.value, stopped: true }, { cas: current.modifyIndex }))) {
        throw conflict(job);
      }
      ctx.logger.info({ job, purge }, 'job stopped');
      return { job, stopped: true, purged: purge };
    },

    async scaleJob(req) {
      const { job } = req.params as { job: string };
      const body = req.body as ScaleRequest;
      const current = await getJSON<JobRecord>(ctx.client, jobKey(job));
      if (current === undefined) throw notFound(job);
      const groups = current.value.spec.groups;
      const name = body.group ?? (groups.length === 1 ? groups[0]!.name : undefined);
      if (name === undefined) throw new WeftError('WEFT_ERR_API_REQUEST_INVALID', `job ${job} has ${groups.length} groups: name one (body.group)`, { key: 'body.group' });
      const group = groups.find((g) => g.name === name);
      if (group === undefined) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `job ${job} has no group ${name} (groups: ${groups.map((g) => g.name).join(', ')})`, { key: 'body.group', value: name });
      const previous = group.count ?? 1;
      const spec: JobSpec = { ...current.value.spec, groups: groups.map((g) => (g.name === name ? { ...g, count: body.count } : g)) };
      const check = validateJobSpec(spec); // autoscale bounds and the like still hold
      if (!check.ok) throw jobInvalid(check.errors, job);
      const record: JobRecord = { ...current.value, spec };
      const at = new Date().toISOString(); // before the write: the leader may place before the event lands
      if (!(await putJSON(ctx.client, jobKey(job), record, { cas: current.modifyIndex }))) throw conflict(job);
      await appendEvent(ctx, job, { at, type: 'scaled', message: `${name}: ${previous} -> ${body.count}` });
      ctx.logger.info({ job, group: name, from: previous, to: body.count }, 'job scaled');
      return { job, group: name, count: body.count, previous, version: record.version } satisfies ScaleResponse;
    },

    async jobStatus(req) {
      const { job } = req.params as { job: string };
      const snap = ctx.observer.snapshot();
      const rec = snap.jobs.get(job) ?? (await mustGetJob(ctx, job));
      const status = snap.statuses.get(job) ?? emptyStatus();
      const allocs = currentAllocs(snap, Date.now()).filter((a) => a.job === job);
      // Task documents by instance, found once (a job of 10,000 allocations is not 10,000 scans).
      const tasksOf = new Map<string, typeof snap.tasks>();
      for (const t of snap.tasks) {
        if (t.doc.job !== job) continue;
        const id = `${t.host}\u0000${t.doc.placement?.instance ?? t.doc.id}`;
        const list = tasksOf.get(id);
        if (list === undefined) tasksOf.set(id, [t]);
        else list.push(t);
      }
      const views: AllocationView[] = allocs.map((a) => ({
        id: a.id,
        group: a.group,
        index: a.index,
        node: a.node,
        version: a.version,
        status: a.status,
        ...(a.healthy === undefined ? {} : { healthy: a.healthy }),
        ports: [...a.ports],
        createdAt: new Date(a.createdAtMs).toISOString(),
        tasks: (tasksOf.get(`${a.node}\u0000${a.id}`) ?? []).map((t) => ({
            id: t.doc.id,
            task: t.doc.task,
            state: t.status?.state ?? 'pending',
            restarts: t.status?.restarts ?? 0,
            ...(t.status?.exitCode === undefined ? {} : { exitCode: t.status.exitCode }),
            ...(t.status?.message === undefined ? {} : { message: t.status.message }),
          })),
      }));
      const out: JobStatusResponse = {
        job,
        version: rec.version,
        stopped: rec.stopped,
        groups: rec.spec.groups.map((g) => {
          const mine = allocs.filter((a) => a.group === g.name);
          const failure = status.failures.find((f) => f.group === g.name);
          return {
            group: g.name,
            desired: rec.stopped ? 0 : (g.count ?? 1),
            placed: mine.length,
            running: mine.filter((a) => a.status === 'running').length,
            healthy: mine.filter((a) => a.status === 'running' && a.healthy === true).length,
            ...(failure === undefined ? {} : { failure }),
          };
        }),
        allocations: views,
        events: status.events,
      };
      if (status.deployment !== undefined) out.deployment = deploymentView(status.deployment);
      return out;
    },

    async jobVersions(req) {
      const { job } = req.params as { job: string };
      await mustGetJob(ctx, job);
      const stable = new Set((await getJSON<StatusRecord>(ctx.client, statusKey(job)))?.value.stableVersions ?? []);
      const versions = (await list<VersionRecord>(ctx.client, `${VERSIONS_PREFIX}${job}/`))
        .map((v) => ({ version: v.value.version, submittedAt: v.value.submittedAt, stable: stable.has(v.value.version) }))
        .sort((a, b) => a.version - b.version);
      return { job, versions };
    },

    async revertJob(req) {
      const { job } = req.params as { job: string };
      const { version } = req.body as { version: number };
      await mustGetJob(ctx, job);
      const old = await getJSON<VersionRecord>(ctx.client, versionKey(job, version));
      if (old === undefined) throw new WeftError('WEFT_ERR_API_NOT_FOUND', `job ${job} has no version ${version} in its history`, { key: 'body.version', value: version });
      return submit(ctx, old.value.spec, 'reverted', true);
    },
  };
}

/** The autoscaler's view of a job (`GET /v1/jobs/:job/autoscale`). */
export function autoscaleHandlers(ctx: SchedulerContext): Pick<Handlers, 'jobAutoscale'> {
  return {
    async jobAutoscale(req) {
      const { job } = req.params as { job: string };
      const rec = ctx.observer.snapshot().jobs.get(job) ?? (await mustGetJob(ctx, job));
      const state = compileJob(rec.spec, rec.version, { stopped: rec.stopped });
      const groups: GroupAutoscaleView[] = [];
      let fromMemory = 0;
      for (const g of state.groups) {
        const p = g.autoscale;
        if (p === undefined) continue;
        let view: GroupAutoscaleState | undefined = ctx.autoscaleState?.(job, g.group);
        if (view !== undefined) fromMemory++;
        else {
          const stored = (await getJSON<AutoscaleRecord>(ctx.client, autoscaleKey(job, g.group)))?.value;
          view = stored === undefined ? undefined : { last: stored.last, metrics: stored.metrics ?? [], instances: stored.instances, decisions: stored.decisions ?? [] };
        }
        const current = rec.stopped ? 0 : g.count;
        groups.push({
          group: g.group,
          ...(p.service === undefined ? {} : { service: p.service }),
          policy: {
            min: p.min,
            max: p.max,
            intervalMs: p.intervalMs,
            tolerance: p.tolerance,
            onError: p.onError,
            dryRun: p.dryRun,
            scaleUpWindowMs: p.scaleUp.stabilizationWindowMs,
            scaleDownWindowMs: p.scaleDown.stabilizationWindowMs,
            ...(p.idleToZeroMs === undefined ? {} : { idleToZeroMs: p.idleToZeroMs }),
          },
          current,
          desired: view?.last?.to ?? current,
          ...(view?.instances === undefined ? {} : { instances: view.instances }),
          // A record of another policy (the metrics changed since) shows the new metrics, unmeasured.
          metrics: view !== undefined && view.metrics.length === p.metrics.length ? view.metrics : metricPlaceholders(p),
          ...(view?.last === undefined ? {} : { last: view.last }),
          decisions: view?.decisions ?? [],
        });
      }
      return { job, live: groups.length > 0 && fromMemory === groups.length, groups } satisfies JobAutoscaleResponse;
    },
  };
}

/** The body's spec (text or value) -> a checked spec; every secret it names must exist. */
async function checkedSpec(ctx: SchedulerContext, raw: unknown): Promise<JobSpec> {
  const result = typeof raw === 'string' ? parseJobSpec(raw) : validateJobSpec(raw);
  const name = typeof raw === 'object' && raw !== null ? (raw as { name?: unknown }).name : undefined;
  if (!result.ok) throw jobInvalid(result.errors, typeof name === 'string' ? name : undefined);
  const known = new Set((await ctx.secrets.list()).map((s) => s.name));
  const missing: SpecError[] = [];
  result.job.groups.forEach((g, gi) => {
    g.tasks.forEach((t, ti) => {
      (t.secrets ?? []).forEach((s, si) => {
        if (!known.has(s.name)) missing.push({ path: `groups[${gi}].tasks[${ti}].secrets[${si}].name`, message: `no secret named ${JSON.stringify(s.name)} (weft secret set ${s.name})` });
      });
    });
  });
  if (missing.length > 0) throw jobInvalid(missing, result.job.name);
  return result.job;
}

/** Stores a checked spec: history first, then the job document with check-and-set. */
async function submit(ctx: SchedulerContext, spec: JobSpec, event: string, forceNewVersion = false): Promise<JobSubmitResponse> {
  const current = await getJSON<JobRecord>(ctx.client, jobKey(spec.name));
  const prev = current?.value;
  let version = nextVersion(prev === undefined ? undefined : { spec: prev.spec, version: prev.version }, spec);
  if (forceNewVersion && prev !== undefined) version = prev.version + 1;
  const change: Change = changeOf(prev, spec, version);
  const submittedAt = new Date().toISOString();
  if (change !== 'none' || prev?.stopped === true) {
    if (prev === undefined || version !== prev.version) await putJSON(ctx.client, versionKey(spec.name, version), { version, submittedAt, spec } satisfies VersionRecord);
    const record: JobRecord = { version, stopped: false, submittedAt, spec };
    if (!(await putJSON(ctx.client, jobKey(spec.name), record, { cas: current?.modifyIndex ?? 0 }))) throw conflict(spec.name);
    await appendEvent(ctx, spec.name, { at: submittedAt, type: event, message: `version ${version} ${event} (${change})`, version });
  }
  ctx.logger.info({ job: spec.name, version, change }, 'job submitted');
  const out: JobSubmitResponse = { job: spec.name, version, change, submittedAt };
  if (prev !== undefined) out.previousVersion = prev.version;
  return out;
}

function changeOf(prev: JobRecord | undefined, spec: JobSpec, version: number): Change {
  if (prev === undefined) return 'create';
  if (version !== prev.version) return 'update';
  return canonicalJSON(prev.spec) === canonicalJSON(spec) ? 'none' : 'scale';
}

/** The plan the leader would make with this spec in place of the current one, limited to this job. */
async function dryRun(ctx: SchedulerContext, spec: JobSpec): Promise<PlanResponse> {
  const snap = ctx.observer.snapshot();
  const nowMs = Date.now();
  const prev = snap.jobs.get(spec.name);
  const version = nextVersion(prev === undefined ? undefined : { spec: prev.spec, version: prev.version }, spec);
  const jobs = [...snap.jobs].filter(([n]) => n !== spec.name).map(([, r]) => compileJob(r.spec, r.version, { stopped: r.stopped }));
  jobs.push(compileJob(spec, version));
  const deployments = [...snap.statuses.values()].map((s) => s.deployment).filter((d): d is Deployment => d !== undefined);
  const c = ctx.config.scheduler;
  const plan = reconcile(
    { nowMs, nodes: currentNodes(ctx, snap, nowMs), jobs, allocs: currentAllocs(snap, nowMs), deployments },
    { lostAfterMs: c.lostAfterMs, algorithm: c.algorithm, dynamicPorts: { min: c.dynamicPortMin, max: c.dynamicPortMax } },
  );
  const notes: string[] = [];
  if (prev !== undefined && version !== prev.version) notes.push('a rolling update: only its first batch is shown; later batches follow as earlier ones turn healthy');
  const out: PlanResponse = {
    job: spec.name,
    version,
    change: changeOf(prev, spec, version),
    place: plan.place.filter((p) => p.job === spec.name).map((p) => ({ id: p.id, group: p.group, index: p.index, node: p.node, reason: p.reason, ports: p.ports, ...(p.replaces === undefined ? {} : { replaces: p.replaces }) })),
    stop: plan.stop.filter((s) => s.alloc.job === spec.name).map((s) => ({ id: s.alloc.id, group: s.alloc.group, index: s.alloc.index, node: s.alloc.node, reason: s.reason })),
    failures: plan.failures.filter((f) => f.job === spec.name),
    notes,
  };
  if (prev !== undefined) out.previousVersion = prev.version;
  return out;
}

/**
 * Adds an event to a job's ring (API-side events: submitted, scaled), stamped
 * with `at`, the time taken before the write it records (the leader reacts to
 * that write and may log its placements before this append lands), with
 * check-and-set retried on a lost race: the leader writes the same record and
 * merges rings (scheduler-status.ts), so neither side loses the other's events.
 * Still best effort on a Consul failure: the ring is informational.
 */
async function appendEvent(ctx: SchedulerContext, job: string, event: { at: string; type: string; message: string; version?: number }): Promise<void> {
  try {
    await update<StatusRecord>(ctx.client, statusKey(job), (current) => pushEvents(current ?? emptyStatus(), [event]));
  } catch (err) {
    ctx.logger.debug({ err, job }, 'could not record an event');
  }
}

async function mustGetJob(ctx: SchedulerContext, job: string): Promise<JobRecord> {
  const rec = await getJSON<JobRecord>(ctx.client, jobKey(job));
  if (rec === undefined) throw notFound(job);
  return rec.value;
}

function deploymentView(d: Deployment): NonNullable<JobStatusResponse['deployment']> {
  return {
    version: d.version,
    status: d.status,
    startedAt: new Date(d.startedAtMs).toISOString(),
    ...(d.stableVersion === undefined ? {} : { stableVersion: d.stableVersion }),
    ...(d.message === undefined ? {} : { message: d.message }),
  };
}

function notFound(job: string): WeftError {
  return new WeftError('WEFT_ERR_JOB_NOT_FOUND', `job ${job}: not found`, { key: 'job', value: job });
}

function conflict(job: string): WeftError {
  return new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `job ${job} changed while this request ran; retry`, { key: jobKey(job) });
}
