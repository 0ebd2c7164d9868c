/**
 * The scheduler client's human output: each API answer (types from
 * base/contracts/scheduler-api.ts) rendered as aligned tables and short lines.
 * Pure functions of the answer, the clock and the colour switch, so tests
 * compare exact text.
 */
import type {
  AutoscaleDecisionView,
  AutoscaleMetricView,
  JobAutoscaleResponse,
  JobListResponse,
  JobStatusResponse,
  NodeListResponse,
  PlanResponse,
  SecretListResponse,
  SplitView,
} from '../../../base/contracts/scheduler-api.js';
import type { DeploymentProgress } from './progress.js';
import { type Tone, paint, renderFields, renderTable } from './table.js';

/** Rendering switches. */
export interface ViewOptions {
  color: boolean;
  /** For ages ("3m ago"); tests pin it. */
  now?: number;
}

/** `weft status`: every job. */
export function renderJobList(r: JobListResponse, o: ViewOptions): string {
  if (r.jobs.length === 0) return 'no jobs (submit one with `weft deploy job.yaml`)';
  return renderTable(
    r.jobs,
    [
      { header: 'NAME', cell: (j) => j.name },
      { header: 'VERSION', cell: (j) => j.version, align: 'right' },
      { header: 'STATUS', cell: (j) => jobState(j), tone: (j) => stateTone(jobState(j)) },
      { header: 'DESIRED', cell: (j) => j.desired, align: 'right' },
      { header: 'RUNNING', cell: (j) => j.running, align: 'right' },
      { header: 'HEALTHY', cell: (j) => j.healthy, align: 'right' },
      { header: 'SUBMITTED', cell: (j) => age(j.submittedAt, o.now) },
    ],
    o,
  );
}

/** `weft status JOB`: summary, groups, allocations, the last events. */
export function renderJobStatus(s: JobStatusResponse, o: ViewOptions, eventCount = 5): string {
  const d = s.deployment;
  const out: string[] = [
    renderFields([
      ['job', s.job],
      ['version', s.version],
      ['status', s.stopped ? 'stopped' : 'running'],
      ['deployment', d === undefined ? undefined : `version ${d.version} ${d.status}${d.message ? `: ${d.message}` : ''}`],
    ]),
    '',
    renderTable(
      s.groups,
      [
        { header: 'GROUP', cell: (g) => g.group },
        { header: 'DESIRED', cell: (g) => g.desired, align: 'right' },
        { header: 'PLACED', cell: (g) => g.placed, align: 'right' },
        { header: 'RUNNING', cell: (g) => g.running, align: 'right' },
        { header: 'HEALTHY', cell: (g) => g.healthy, align: 'right', tone: (g) => (g.healthy < g.desired ? 'yellow' : 'green') },
        { header: 'NOT PLACED', cell: (g) => g.failure?.message },
      ],
      o,
    ),
  ];
  if (s.allocations.length > 0) {
    out.push(
      '',
      renderTable(
        s.allocations,
        [
          { header: 'ALLOCATION', cell: (a) => a.id },
          { header: 'GROUP', cell: (a) => `${a.group}[${a.index}]` },
          { header: 'NODE', cell: (a) => a.node },
          { header: 'VERSION', cell: (a) => a.version, align: 'right' },
          { header: 'STATUS', cell: (a) => a.status, tone: (a) => stateTone(a.status) },
          { header: 'HEALTHY', cell: (a) => (a.healthy === undefined ? '?' : a.healthy ? 'yes' : 'no'), tone: (a) => (a.healthy === false ? 'red' : undefined) },
          { header: 'RESTARTS', cell: (a) => a.tasks.reduce((n, t) => n + t.restarts, 0), align: 'right' },
          { header: 'PORTS', cell: (a) => a.ports.join(',') },
          { header: 'CREATED', cell: (a) => age(a.createdAt, o.now) },
        ],
        o,
      ),
    );
  }
  const events = s.events.slice(-eventCount);
  if (events.length > 0) {
    out.push('', paint('recent events', 'dim', o.color));
    for (const e of events) out.push(`  ${age(e.at, o.now).padEnd(8)}  ${e.type}: ${e.message}`);
  }
  return out.join('\n');
}

/** `weft plan`: what would start and stop, and why something would not fit. */
export function renderPlan(p: PlanResponse, o: ViewOptions): string {
  const out: string[] = [
    `${p.job}: ${p.change === 'none' ? 'no change' : `${p.change} to version ${p.version}`}${p.previousVersion === undefined ? '' : ` (now ${p.previousVersion})`}`,
  ];
  if (p.place.length > 0) {
    out.push(
      '',
      `start ${p.place.length}:`,
      renderTable(
        p.place,
        [
          { header: 'GROUP', cell: (x) => `${x.group}[${x.index}]` },
          { header: 'NODE', cell: (x) => x.node },
          { header: 'REASON', cell: (x) => x.reason },
          { header: 'REPLACES', cell: (x) => x.replaces },
          { header: 'PORTS', cell: (x) => x.ports.join(',') },
        ],
        o,
      ),
    );
  }
  if (p.stop.length > 0) {
    out.push(
      '',
      `stop ${p.stop.length}:`,
      renderTable(
        p.stop,
        [
          { header: 'ALLOCATION', cell: (x) => x.id },
          { header: 'GROUP', cell: (x) => `${x.group}[${x.index}]` },
          { header: 'NODE', cell: (x) => x.node },
          { header: 'REASON', cell: (x) => x.reason },
        ],
        o,
      ),
    );
  }
  for (const f of p.failures) out.push('', paint(`${f.group}: ${f.missing} not placed (${f.nodesEvaluated} nodes evaluated): ${f.message}`, 'red', o.color));
  for (const n of p.notes) out.push(`note: ${n}`);
  if (p.place.length === 0 && p.stop.length === 0 && p.failures.length === 0) out.push('nothing to start or stop');
  return out.join('\n');
}

/**
 * `weft autoscale JOB`: per autoscaled group, the count, each metric's live
 * value against its target, the last decision and the recent ones that moved
 * the count (or would have, or failed).
 */
export function renderAutoscale(r: JobAutoscaleResponse, o: ViewOptions, decisionCount = 5): string {
  if (r.groups.length === 0) return `${r.job}: no group has an autoscale policy`;
  const out: string[] = [paint(r.live ? `${r.job}: live from the leader` : `${r.job}: as the leader last stored it`, 'dim', o.color)];
  for (const g of r.groups) {
    const p = g.policy;
    const ready = g.instances === undefined ? '' : `; ${g.instances.ready}/${g.instances.total} instances ready`;
    const mode = p.dryRun ? ', dry run' : '';
    const move = g.desired === g.current ? `${g.current}` : `${g.current} -> ${g.desired}`;
    out.push(
      '',
      `${g.group}: ${move} (min ${p.min}, max ${p.max}, every ${ms(p.intervalMs)}${mode}${ready})`,
      renderTable(
        g.metrics,
        [
          { header: 'METRIC', cell: (m) => m.name },
          { header: 'VALUE', cell: (m) => (m.value === null ? '-' : amount(m, m.value)), align: 'right', tone: (m) => metricTone(m, p.tolerance) },
          { header: 'TARGET', cell: (m) => `${m.kind === 'latency' || m.kind === 'errors' ? 'max ' : ''}${amount(m, m.target)}`, align: 'right' },
          { header: 'WANTS', cell: (m) => m.wants ?? '-', align: 'right' },
          ...(g.metrics.some((m) => m.unavailable !== undefined)
            ? [{ header: 'NOTE', cell: (m: AutoscaleMetricView) => (m.unavailable === undefined ? '' : `unavailable: ${m.unavailable}`), tone: (m: AutoscaleMetricView) => (m.unavailable === undefined ? undefined : ('red' as const)) }]
            : []),
        ],
        o,
      ),
    );
    if (g.last !== undefined) out.push(`last decision ${age(g.last.at, o.now)}: ${g.last.reason}`);
    const recent = g.decisions.slice(-decisionCount);
    if (recent.length > 0) {
      out.push(paint('recent decisions', 'dim', o.color));
      for (const d of recent) out.push(`  ${age(d.at, o.now).padEnd(8)}  ${`${d.from} -> ${d.to}`.padEnd(8)}  ${paint(decisionState(d).padEnd(7), decisionTone(d), o.color)}  ${d.reason}`);
    }
  }
  return out.join('\n');
}

/** A metric's value in its unit: `250 req/s`, `412 ms`, `5%`. */
function amount(m: AutoscaleMetricView, v: number): string {
  const n = (x: number): string => String(Math.round(x * 100) / 100);
  if (m.unit === 'ratio') return `${n(v * 100)}%`;
  if (m.unit === '') return n(v);
  return `${n(v)} ${m.unit}`;
}

/** Over the target or ceiling beyond the tolerance: yellow; under a per-instance target beyond it: dim. */
function metricTone(m: AutoscaleMetricView, tolerance: number): Tone | undefined {
  if (m.value === null || m.target <= 0) return undefined;
  const ratio = m.value / m.target;
  if (ratio > 1 + tolerance) return 'yellow';
  if (ratio < 1 - tolerance && m.kind !== 'latency' && m.kind !== 'errors') return 'dim';
  return undefined;
}

function decisionState(d: AutoscaleDecisionView): string {
  if (d.applied) return 'applied';
  if (d.failed) return 'failed';
  if (d.dryRun) return 'dry run';
  return 'held';
}

function decisionTone(d: AutoscaleDecisionView): Tone | undefined {
  if (d.failed && !d.applied) return 'red';
  if (d.applied) return 'green';
  return 'dim';
}

/** Milliseconds as a spec writes durations: `500ms`, `1s`, `1m30s`. */
function ms(v: number): string {
  if (v < 1000) return `${v}ms`;
  const s = Math.round(v / 1000);
  if (s < 60) return `${s}s`;
  return s % 60 === 0 ? `${s / 60}m` : `${Math.floor(s / 60)}m${s % 60}s`;
}

/** `weft node ls`. */
export function renderNodes(r: NodeListResponse, o: ViewOptions): string {
  if (r.nodes.length === 0) return 'no nodes (start `weft agent` on a host)';
  return renderTable(
    r.nodes,
    [
      { header: 'NODE', cell: (n) => n.name },
      { header: 'ADDRESS', cell: (n) => n.address },
      { header: 'STATUS', cell: (n) => n.readiness, tone: (n) => stateTone(n.readiness) },
      { header: 'DRIVERS', cell: (n) => n.drivers.join(',') },
      { header: 'ALLOCS', cell: (n) => n.allocations, align: 'right' },
      { header: 'CPU', cell: (n) => `${n.allocated.cpu}/${n.capacity.cpu}`, align: 'right' },
      { header: 'MEMORY', cell: (n) => `${n.allocated.memory}/${n.capacity.memory} MiB`, align: 'right' },
      { header: 'ATTRIBUTES', cell: (n) => Object.entries(n.attributes).map(([k, v]) => `${k}=${v}`).join(',') },
    ],
    o,
  );
}

/** `weft secret list`: names and ages only; the API never returns values. */
export function renderSecrets(r: SecretListResponse, o: ViewOptions): string {
  if (r.secrets.length === 0) return 'no secrets (add one with `weft secret set NAME < value-file`)';
  return renderTable(
    r.secrets,
    [
      { header: 'NAME', cell: (s) => s.name },
      { header: 'UPDATED', cell: (s) => age(s.updatedAt, o.now) },
    ],
    o,
  );
}

/** `weft split svc ...`: each version's weight and its share. */
export function renderSplit(s: SplitView, o: ViewOptions): string {
  const rows = Object.entries(s.weights);
  const total = rows.reduce((n, [, w]) => n + w, 0);
  return `${s.service}:\n${renderTable(
    rows,
    [
      { header: 'VERSION', cell: ([v]) => v },
      { header: 'WEIGHT', cell: ([, w]) => w, align: 'right' },
      { header: 'SHARE', cell: ([, w]) => (total === 0 ? '-' : `${Math.round((w / total) * 1000) / 10}%`), align: 'right' },
    ],
    o,
  )}`;
}

/**
 * A status answer as deploy's progress for `version`. Counts are of that
 * version's allocations, so a rolling update shows the new ones coming up
 * rather than the old ones still serving. The deployment of that version decides
 * when there is one; otherwise (a create or scale the scheduler tracks no
 * deployment for) every group must have its desired count healthy.
 */
export function progressOf(s: JobStatusResponse, version: number): DeploymentProgress {
  const groups = s.groups.map((g) => {
    const allocs = s.allocations.filter((a) => a.group === g.group && a.version === version && a.status !== 'stopped');
    return {
      name: g.group,
      desired: g.desired,
      running: allocs.filter((a) => a.status === 'running').length,
      healthy: allocs.filter((a) => a.status === 'running' && a.healthy === true).length,
      failed: allocs.filter((a) => a.status === 'failed').length,
      pending: allocs.filter((a) => a.status === 'pending').length,
    };
  });
  const shortBy = s.groups.map((g) => g.failure?.message).filter((m): m is string => m !== undefined);
  const d = s.deployment?.version === version ? s.deployment : undefined;
  const countsDone = groups.every((g) => g.healthy >= g.desired);
  let status: DeploymentProgress['status'] = countsDone ? 'successful' : 'running';
  if (d !== undefined) status = d.status;
  const message = d?.status === 'failed' ? d.message : shortBy.length > 0 ? `not placed: ${shortBy.join('; ')}` : d?.message;
  const out: DeploymentProgress = { status, version, groups };
  if (message !== undefined) out.message = message;
  return out;
}

function jobState(j: { stopped: boolean; desired: number; healthy: number }): string {
  if (j.stopped) return 'stopped';
  return j.healthy >= j.desired ? 'healthy' : 'degraded';
}

function stateTone(state: string): Tone | undefined {
  if (state === 'healthy' || state === 'running' || state === 'ready' || state === 'successful') return 'green';
  if (state === 'failed' || state === 'down' || state === 'lost') return 'red';
  if (state === 'pending' || state === 'draining' || state === 'degraded') return 'yellow';
  return 'dim';
}

/** `42s ago`, `3m ago`, `2h ago`, `5d ago`; the timestamp itself when unparsable. */
export function age(iso: string, now = Date.now()): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}
