/**
 * Rules the JSON Schema cannot say: unique names, a docker task has an image,
 * a mount names a declared volume, constraint values that parse, duration
 * ranges, autoscale policies (bounds, one metric per entry, PromQL that parses,
 * steps), and the task's labels decoded exactly as the agent
 * will decode them (base/contracts/labels.ts, the public label decoder). Runs only
 * on a spec that passed the schema, so shapes are known; reports every error.
 */
import semver from 'semver';
import { parseDuration } from '../../base/duration.js';
import { decodeLabels, LABEL } from '../../base/contracts/labels.js';
import { groupServices, metricKinds, parseScaleStep } from '../autoscale/policy.js';
import { checkPromQL } from '../autoscale/promql.js';
import { normalizeRange } from '../placement/matchers.js';
import { joinPath, type SpecError } from './errors.js';
import { CHECK_LABELS, registersService, taskLabels } from './labels.js';
import { AUTOSCALE_METRICS, type AutoscaleSpec, ENV_NAME_PATTERN, type AffinitySpec, type ConstraintSpec, type GroupSpec, type JobSpec, type SpreadSpec, type TaskSpec } from './schema.js';

type Path = Array<string | number>;

/** Stands in for a port the scheduler picks (port: 0) while checking labels. */
const DYNAMIC_PORT_PLACEHOLDER = 49152;
const ENV_NAME = new RegExp(ENV_NAME_PATTERN);

/** Every cross-field error in a schema-valid spec, in document order. */
export function checkSemantics(job: JobSpec): SpecError[] {
  const errors: SpecError[] = [];
  const add = (path: Path, message: string): void => {
    errors.push({ path: joinPath(path), message });
  };
  checkPolicies(job, [], add);
  const groupNames = new Map<string, number>();
  job.groups.forEach((group, g) => {
    const at: Path = ['groups', g];
    const first = groupNames.get(group.name);
    if (first !== undefined) add([...at, 'name'], `duplicate group name "${group.name}" (also groups[${first}])`);
    else groupNames.set(group.name, g);
    checkPolicies(group, at, add);
    checkGroup(group, at, add);
  });
  return errors;
}

type Add = (path: Path, message: string) => void;

function checkGroup(group: GroupSpec, at: Path, add: Add): void {
  if (group.autoscale !== undefined) checkAutoscale(group, group.autoscale, at, add);
  const taskNames = new Map<string, number>();
  const ports = new Map<number, string>();
  group.tasks.forEach((task, i) => {
    const tat: Path = [...at, 'tasks', i];
    const first = taskNames.get(task.name);
    if (first !== undefined) add([...tat, 'name'], `duplicate task name "${task.name}" (also tasks[${first}])`);
    else taskNames.set(task.name, i);
    if (task.port !== undefined && task.port > 0) {
      const other = ports.get(task.port);
      if (other !== undefined) add([...tat, 'port'], `${task.port} is also task ${other}'s port (a group's tasks share the host)`);
      else ports.set(task.port, task.name);
    }
    checkTask(task, group, tat, add);
  });
}

/** Longest stabilization window (the HPA's limit, one hour). */
const MAX_STABILIZATION_WINDOW_MS = 3_600_000;
/** Shortest decision interval: the loop reads metrics each time. */
const MIN_AUTOSCALE_INTERVAL_MS = 100;

/** An autoscale policy (docs/autoscaling.md): bounds, one metric per entry, PromQL that parses, steps, idleToZero with min 0. */
function checkAutoscale(group: GroupSpec, policy: AutoscaleSpec, groupAt: Path, add: Add): void {
  const at: Path = [...groupAt, 'autoscale'];
  const { min, max } = policy;
  if (min > max) add([...at, 'min'], `must be <= autoscale.max (${max}) (got ${min})`);
  if (group.count !== undefined && (group.count < min || group.count > max)) {
    add([...groupAt, 'count'], `must be within autoscale.min..max (${min}..${max}) (got ${group.count})`);
  }
  const services = groupServices(group);
  if (policy.service !== undefined && !services.includes(policy.service)) {
    add([...at, 'service'], `the group registers no service "${policy.service}" (${services.length === 0 ? 'it registers none' : `its services: ${services.join(', ')}`})`);
  }
  const measured = services.length > 0;
  policy.metrics.forEach((entry, i) => {
    const mat: Path = [...at, 'metrics', i];
    const kinds = metricKinds(entry);
    if (kinds.length === 0) {
      add(mat, `names no metric: one of ${AUTOSCALE_METRICS.join(', ')}`);
      return;
    }
    if (kinds.length > 1) {
      add(mat, `names ${kinds.join(' and ')}: one metric per entry (write one entry each)`);
      return;
    }
    const kind = kinds[0]!;
    if (kind === 'promql') {
      if (entry.target === undefined) add([...mat, 'target'], 'is required with promql (the per-instance value to hold the expression at)');
      const bad = checkPromQL(entry.promql!);
      if (bad !== undefined) add([...mat, 'promql'], `not a PromQL expression: column ${bad.column}: ${bad.message}`);
      return;
    }
    if (entry.target !== undefined) add([...mat, 'target'], `is only for promql (${kind} is its own target)`);
    if (!measured) add([...mat, kind], "needs a service to measure: none of the group's tasks registers one (give a task a port)");
    if (kind === 'latency') duration(entry.latency!.max, [...mat, 'latency', 'max'], add, 1);
  });
  for (const direction of ['up', 'down'] as const) {
    const field = direction === 'up' ? 'scaleUp' : 'scaleDown';
    const behavior = policy[field];
    if (behavior === undefined) continue;
    const bat: Path = [...at, field];
    const window = duration(behavior.stabilizationWindow, [...bat, 'stabilizationWindow'], add);
    if (window !== undefined && window > MAX_STABILIZATION_WINDOW_MS) add([...bat, 'stabilizationWindow'], `must be at most 1h (got "${behavior.stabilizationWindow}")`);
    duration(behavior.cooldown, [...bat, 'cooldown'], add);
    duration(behavior.period, [...bat, 'period'], add, 1000);
    if (behavior.maxStep !== undefined) {
      const step = parseScaleStep(behavior.maxStep, direction);
      if (!step.ok) add([...bat, 'maxStep'], step.message);
    } else if (behavior.period !== undefined) {
      add([...bat, 'period'], 'is the period of maxStep: set maxStep too');
    }
  }
  duration(policy.interval, [...at, 'interval'], add, MIN_AUTOSCALE_INTERVAL_MS);
  if (policy.idleToZero !== undefined) {
    const idle = duration(policy.idleToZero, [...at, 'idleToZero'], add, 1000);
    if (idle !== undefined && min > 0) add([...at, 'idleToZero'], `needs autoscale.min 0 (got min ${min})`);
    if (!measured) add([...at, 'idleToZero'], "needs a service to watch for traffic: none of the group's tasks registers one");
  }
}

function checkTask(task: TaskSpec, group: GroupSpec, at: Path, add: Add): void {
  if (task.driver === 'docker' && task.image === undefined) add([...at, 'image'], 'is required for driver docker');
  if (task.driver === 'process') {
    if (task.command === undefined) add([...at, 'command'], 'is required for driver process');
    if (task.image !== undefined) add([...at, 'image'], 'is only for driver docker');
  }
  (task.volumeMounts ?? []).forEach((m, i) => {
    const volume = group.volumes?.[m.volume];
    if (volume === undefined) add([...at, 'volumeMounts', i, 'volume'], `no volume "${m.volume}" in the group's volumes`);
    else if (volume.type === 'docker' && task.driver !== 'docker') add([...at, 'volumeMounts', i, 'volume'], 'docker volumes need driver docker');
  });
  checkEnvAndFiles(task, at, add);
  if (task.check !== undefined) {
    for (const [field, label] of Object.entries(CHECK_LABELS)) {
      if (field in task.check && task.labels?.[label] !== undefined) add([...at, 'check', field], `also set by label ${label}; keep one`);
    }
    const interval = duration(task.check.interval, [...at, 'check', 'interval'], add);
    const timeout = duration(task.check.timeout, [...at, 'check', 'timeout'], add);
    if (interval !== undefined && timeout !== undefined && timeout > interval) add([...at, 'check', 'timeout'], 'must be at most check.interval');
  }
  if ((task.upstreams?.length ?? 0) > 0 && task.labels?.[LABEL.upstreams] !== undefined) add([...at, 'upstreams'], 'also set by label weft.upstreams; keep one');
  if (!registersService(task)) return;
  const port = task.port === 0 ? DYNAMIC_PORT_PLACEHOLDER : task.port;
  const decoded = decodeLabels(taskLabels(task), { defaultName: task.name, exposedPorts: port === undefined ? [] : [port] });
  if (!decoded.ok) {
    for (const err of decoded.errors) {
      const prefix = `${err.key}: `;
      add([...at, ...specPathOfLabel(task, err.key ?? '')], err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message);
    }
  }
}

/**
 * Where the user wrote what a label error is about: a label the spec's
 * `upstreams` or `check` block became is reported at that block, not at a
 * label the user never wrote.
 */
function specPathOfLabel(task: TaskSpec, key: string): Path {
  if (task.labels?.[key] !== undefined) return ['labels', key];
  if (key === LABEL.upstreams && (task.upstreams?.length ?? 0) > 0) return ['upstreams'];
  const field = Object.entries(CHECK_LABELS).find(([, label]) => label === key)?.[0];
  if (field !== undefined && task.check !== undefined) return ['check', field];
  return ['labels', key];
}

function checkEnvAndFiles(task: TaskSpec, at: Path, add: Add): void {
  const envFrom = new Map<string, string>(Object.keys(task.env ?? {}).map((k) => [k, `env.${k}`]));
  const files = new Map<string, string>();
  (task.files ?? []).forEach((f, i) => {
    const other = files.get(f.destination);
    if (other !== undefined) add([...at, 'files', i, 'destination'], `${f.destination} is also written by ${other}`);
    else files.set(f.destination, joinPath(['files', i]));
  });
  (task.secrets ?? []).forEach((s, i) => {
    const sat: Path = [...at, 'secrets', i];
    if (s.file !== undefined) {
      const other = files.get(s.file);
      if (other !== undefined) add([...sat, 'file'], `${s.file} is also written by ${other}`);
      else files.set(s.file, joinPath(['secrets', i]));
    }
    if (s.file !== undefined && s.env === undefined) return;
    const env = s.env ?? s.name;
    if (!ENV_NAME.test(env)) {
      add([...sat, 'env'], `is required: "${s.name}" is not a valid variable name`);
      return;
    }
    const other = envFrom.get(env);
    if (other !== undefined) add([...sat, 'env'], `${env} is also set by ${other}`);
    else envFrom.set(env, joinPath(['secrets', i]));
  });
}

interface Policies {
  constraints?: ConstraintSpec[] | undefined;
  affinities?: AffinitySpec[] | undefined;
  spread?: SpreadSpec[] | undefined;
  update?: JobSpec['update'];
  restart?: JobSpec['restart'];
  reschedule?: JobSpec['reschedule'];
}

function checkPolicies(p: Policies, at: Path, add: Add): void {
  (p.constraints ?? []).forEach((c, i) => {
    checkMatcher(c, [...at, 'constraints', i], add);
  });
  (p.affinities ?? []).forEach((a, i) => {
    checkMatcher(a, [...at, 'affinities', i], add);
    if (a.weight === 0) add([...at, 'affinities', i, 'weight'], 'must not be 0');
  });
  (p.spread ?? []).forEach((s, i) => {
    const targets = s.targets ?? [];
    const sum = targets.reduce((n, t) => n + t.percent, 0);
    if (sum > 100) add([...at, 'spread', i, 'targets'], `percents must add up to at most 100 (got ${sum})`);
    const seen = new Set<string>();
    targets.forEach((t, j) => {
      if (seen.has(t.value)) add([...at, 'spread', i, 'targets', j, 'value'], `duplicate target "${t.value}"`);
      seen.add(t.value);
    });
  });
  if (p.update !== undefined) {
    const u = [...at, 'update'];
    duration(p.update.delay, [...u, 'delay'], add);
    const min = duration(p.update.minHealthyTime, [...u, 'minHealthyTime'], add);
    const deadline = duration(p.update.healthDeadline, [...u, 'healthDeadline'], add, 1000);
    if (min !== undefined && deadline !== undefined && min >= deadline) add([...u, 'minHealthyTime'], 'must be less than update.healthDeadline');
  }
  if (p.restart !== undefined) {
    duration(p.restart.interval, [...at, 'restart', 'interval'], add, 1000);
    duration(p.restart.delay, [...at, 'restart', 'delay'], add);
  }
  if (p.reschedule !== undefined) {
    const r = [...at, 'reschedule'];
    duration(p.reschedule.interval, [...r, 'interval'], add);
    duration(p.reschedule.delay, [...r, 'delay'], add);
    duration(p.reschedule.maxDelay, [...r, 'maxDelay'], add);
    if (p.reschedule.unlimited === false && (p.reschedule.attempts ?? 0) > 0 && p.reschedule.interval === undefined) {
      add([...r, 'interval'], 'is required when attempts are limited');
    }
  }
}

function checkMatcher(c: ConstraintSpec, at: Path, add: Add): void {
  const op = c.operator ?? '=';
  if (op === 'is_set' || op === 'is_not_set') return;
  if (c.value === undefined) {
    add([...at, 'value'], `is required for operator ${op}`);
    return;
  }
  if (op === 'regexp') {
    try {
      new RegExp(c.value);
    } catch (err) {
      add([...at, 'value'], `not a valid regular expression: ${(err as Error).message}`);
    }
  }
  if (op === 'version' && semver.validRange(normalizeRange(c.value), { loose: true }) === null) add([...at, 'value'], `not a valid version range (got "${c.value}")`);
}

/** Parses a duration field (the schema checked its shape); reports values below `min` ms. */
function duration(text: string | undefined, at: Path, add: Add, min = 0): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) {
    add(at, `not a duration (got "${text}")`);
    return undefined;
  }
  if (ms < min) add(at, `must be at least ${min}ms (got "${text}")`);
  return ms;
}
