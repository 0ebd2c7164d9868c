/**
 * A checked JobSpec -> the core's JobState: each group's summed resources,
 * drivers, ports and volumes, compiled matchers, and policies in milliseconds
 * with defaults applied (a group inherits the job's policy field by field),
 * and the autoscale policy (autoscale/policy.ts).
 * Also decides whether a new spec is a new *version* (anything but counts
 * changed), which is what triggers a rolling update.
 */
import { createHash } from 'node:crypto';
import { parseDuration } from '../../base/duration.js';
import { compileAutoscale } from '../autoscale/policy.js';
import type { Driver, GroupDemand, JobState, Matcher, ReschedulePolicy, SpreadRule, UpdatePolicy } from '../model.js';
import { compileMatcher } from '../placement/matchers.js';
import { type ConstraintSpec, type GroupSpec, type JobSpec, SPEC_DEFAULTS } from './schema.js';

/** Compiles a validated spec at `version`. */
export function compileJob(spec: JobSpec, version: number, opts: { stopped?: boolean } = {}): JobState {
  return { name: spec.name, version, stopped: opts.stopped ?? false, groups: spec.groups.map((g) => compileGroup(spec, g, version)) };
}

/** Compiles one group of a spec. */
export function compileGroup(spec: JobSpec, group: GroupSpec, version: number): GroupDemand {
  let cpu = 0;
  let memory = 0;
  const drivers = new Set<Driver>();
  const staticPorts: number[] = [];
  let dynamicPorts = 0;
  for (const task of group.tasks) {
    cpu += task.resources?.cpu ?? SPEC_DEFAULTS.resources.cpu;
    memory += task.resources?.memory ?? SPEC_DEFAULTS.resources.memory;
    drivers.add(task.driver);
    if (task.port === 0) dynamicPorts++;
    else if (task.port !== undefined) staticPorts.push(task.port);
  }
  const hostVolumes = Object.values(group.volumes ?? {})
    .filter((v) => v.type === 'host')
    .map((v) => v.source);
  return {
    job: spec.name,
    group: group.name,
    version,
    fingerprint: groupFingerprint(spec, group),
    count: group.count ?? SPEC_DEFAULTS.count,
    priority: spec.priority ?? SPEC_DEFAULTS.priority,
    resources: { cpu, memory },
    drivers: [...drivers],
    staticPorts,
    dynamicPorts,
    hostVolumes: [...new Set(hostVolumes)],
    constraints: [...(spec.constraints ?? []), ...(group.constraints ?? [])].map(matcherOf),
    affinities: [...(spec.affinities ?? []), ...(group.affinities ?? [])].map((a) => ({
      matcher: matcherOf(a),
      weight: a.weight ?? SPEC_DEFAULTS.affinityWeight,
    })),
    spreads: [...(spec.spread ?? []), ...(group.spread ?? [])].map(
      (s): SpreadRule => {
        const targets = new Map((s.targets ?? []).map((t) => [t.value, t.percent / 100]));
        const rest = 1 - [...targets.values()].reduce((a, b) => a + b, 0);
        // Values without a target share what is left (Nomad's implicit "*" target).
        if (targets.size > 0 && rest > 1e-9) targets.set('*', rest);
        return { attribute: s.attribute, weight: s.weight ?? SPEC_DEFAULTS.spreadWeight, targets };
      },
    ),
    update: updatePolicy({ ...SPEC_DEFAULTS.update, ...spec.update, ...group.update }),
    reschedule: reschedulePolicy({ ...SPEC_DEFAULTS.reschedule, ...spec.reschedule, ...group.reschedule }),
    ...(group.autoscale === undefined ? {} : { autoscale: compileAutoscale(group) }),
  };
}

/** The agent's restart policy (base/contracts/alloc.ts RestartPolicy), in milliseconds. */
export function restartPolicy(spec: JobSpec, group: GroupSpec): { attempts: number; interval: number; delay: number; mode: 'fail' | 'delay' } {
  const r = { ...SPEC_DEFAULTS.restart, ...spec.restart, ...group.restart };
  return { attempts: r.attempts, interval: ms(r.interval), delay: ms(r.delay), mode: r.mode };
}

/**
 * The part of a spec whose change needs new allocations: everything but group
 * counts and autoscale bounds (scaling keeps the version, as in Nomad).
 */
export function versionFingerprint(spec: JobSpec): string {
  const { groups, ...rest } = spec;
  const stripped = { ...rest, groups: groups.map(({ count: _count, autoscale: _autoscale, ...g }) => g) };
  return canonicalJSON(stripped);
}

/** What one group runs, with the job-level settings it inherits, minus its count: 16 hex digits of SHA-256. */
export function groupFingerprint(spec: JobSpec, group: GroupSpec): string {
  const { groups: _groups, meta: _meta, priority: _priority, ...jobLevel } = spec;
  const { count: _count, autoscale: _autoscale, ...rest } = group;
  return createHash('sha256').update(canonicalJSON({ job: jobLevel, group: rest })).digest('hex').slice(0, 16);
}

/** The version a newly submitted spec gets: the same when only counts changed, else previous + 1. */
export function nextVersion(previous: { spec: JobSpec; version: number } | undefined, spec: JobSpec): number {
  if (previous === undefined) return 1;
  return versionFingerprint(previous.spec) === versionFingerprint(spec) ? previous.version : previous.version + 1;
}

/** JSON with object keys sorted, so equal specs compare equal however they were written. */
export function canonicalJSON(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

function matcherOf(c: ConstraintSpec): Matcher {
  return compileMatcher(c.attribute, c.operator ?? '=', c.value);
}

function updatePolicy(u: { parallelism: number; delay: string; order: 'stop-first' | 'start-first'; minHealthyTime: string; healthDeadline: string; autoRevert: boolean }): UpdatePolicy {
  return {
    parallelism: u.parallelism,
    delayMs: ms(u.delay),
    order: u.order,
    minHealthyTimeMs: ms(u.minHealthyTime),
    healthDeadlineMs: ms(u.healthDeadline),
    autoRevert: u.autoRevert,
  };
}

function reschedulePolicy(r: {
  attempts: number;
  interval: string;
  delay: string;
  delayFunction: 'constant' | 'exponential';
  maxDelay: string;
  unlimited: boolean;
}): ReschedulePolicy {
  return {
    attempts: r.attempts,
    intervalMs: ms(r.interval),
    delayMs: ms(r.delay),
    delayFunction: r.delayFunction,
    maxDelayMs: ms(r.maxDelay),
    unlimited: r.unlimited,
  };
}

/** Durations were checked by the validator; 0 is a safe floor should one slip through. */
function ms(text: string): number {
  return parseDuration(text) ?? 0;
}
