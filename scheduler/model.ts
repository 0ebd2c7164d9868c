/**
 * The scheduler core's view of the world: plain data in, plain data out.
 * Consul, KV documents and Docker never appear here; the edges (scheduler/state/)
 * translate them, so placement and reconciliation are pure functions that tests
 * drive with fake states (as Nomad's scheduler is tested through its harness).
 *
 * Units: cpu in millicores, memory in MiB, times in milliseconds since the epoch.
 */

/** CPU (millicores) and memory (MiB). */
export interface Resources {
  cpu: number;
  memory: number;
}

/** Task drivers a node may offer. */
export type Driver = 'docker' | 'process';

/** A node's heartbeat as Consul reports the weft-agent TTL check; `missing` when its registration is gone. */
export type Heartbeat = 'passing' | 'warning' | 'critical' | 'missing';

/** One host, as its weft-agent registration describes it. */
export interface NodeInfo {
  /** Node name: the `<host>` of `weft/allocs/<host>/`. */
  name: string;
  address: string;
  capacity: Resources;
  /** zone, rack, kernel.version, ... (constraints, affinities and spread read these). */
  attributes: Readonly<Record<string, string>>;
  drivers: readonly Driver[];
  /** Names of the host volumes this node offers. */
  hostVolumes: readonly string[];
  heartbeat: Heartbeat;
  /** When the heartbeat stopped passing (critical or missing): what `lost_after` counts from. */
  downSinceMs?: number | undefined;
  /** Operator drain: nothing new lands here and its allocations migrate away. */
  drain: boolean;
}

/** A compiled constraint or affinity: `attribute operator value`, ready to test against nodes. */
export interface Matcher {
  attribute: string;
  operator: '=' | '!=' | 'regexp' | 'version' | 'is_set' | 'is_not_set';
  value: string | undefined;
  /** What a rejection reason prints: `zone = a`. */
  label: string;
  /** Decides for one attribute value (undefined when the node lacks the attribute). */
  test: (value: string | undefined) => boolean;
}

/** A compiled spread block. `targets` maps values to fractions (0..1); empty spreads evenly. */
export interface SpreadRule {
  attribute: string;
  weight: number;
  targets: ReadonlyMap<string, number>;
}

/** Rolling update settings, in milliseconds. */
export interface UpdatePolicy {
  parallelism: number;
  delayMs: number;
  order: 'stop-first' | 'start-first';
  minHealthyTimeMs: number;
  healthDeadlineMs: number;
  autoRevert: boolean;
}

/** When a failed allocation is replaced on another node. */
export interface ReschedulePolicy {
  /** Limit within intervalMs; ignored when unlimited. */
  attempts: number;
  intervalMs: number;
  delayMs: number;
  delayFunction: 'constant' | 'exponential';
  maxDelayMs: number;
  unlimited: boolean;
}

/**
 * One metric of an autoscale policy, compiled. Per-instance targets (rps,
 * inflight, promql) hold the average over ready instances at `target`;
 * ceilings (latency, errors) only scale up, when the service's value passes `max`.
 */
export type AutoscaleMetric =
  | { kind: 'rps'; target: number }
  | { kind: 'inflight'; target: number }
  | { kind: 'promql'; query: string; target: number }
  | { kind: 'latency'; quantile: 0.95 | 0.99; maxMs: number }
  | { kind: 'errors'; maxRatio: number };

/** A step cap per period: `+3` is { unit: 'instances', value: 3 }, `-50%` is { unit: 'percent', value: 50 }. */
export interface ScaleStep {
  unit: 'instances' | 'percent';
  value: number;
}

/** How fast one direction may move, in milliseconds (Kubernetes' HPA behavior, plus a cooldown). */
export interface ScaleBehavior {
  stabilizationWindowMs: number;
  cooldownMs: number;
  /** undefined: no cap but min/max. */
  maxStep: ScaleStep | undefined;
  periodMs: number;
}

/** A group's autoscale policy with defaults applied and durations in ms (docs/autoscaling.md). */
export interface AutoscalePolicy {
  min: number;
  max: number;
  metrics: readonly AutoscaleMetric[];
  /** The service the metrics describe; undefined when the group registers none (then only promql applies). */
  service: string | undefined;
  /** Usage ratios within 1 ± tolerance change nothing. */
  tolerance: number;
  scaleUp: ScaleBehavior;
  scaleDown: ScaleBehavior;
  intervalMs: number;
  onError: 'hold' | 'min' | 'fail';
  dryRun: boolean;
  /** With min 0: go to zero after this long without a request; undefined: never. */
  idleToZeroMs: number | undefined;
}

/** One task group of one job version, as placement needs it. */
export interface GroupDemand {
  job: string;
  group: string;
  /** Job version (bumped when anything but counts changes). */
  version: number;
  /**
   * Hash of what the group runs (everything but its count). An allocation with
   * another fingerprint is outdated; comparing fingerprints rather than versions
   * means a revert to an earlier spec leaves that spec's allocations alone.
   */
  fingerprint: string;
  count: number;
  priority: number;
  /** Sum over the group's tasks: they are placed together. */
  resources: Resources;
  drivers: readonly Driver[];
  /** Fixed host ports the group's tasks listen on. */
  staticPorts: readonly number[];
  /** How many ports the scheduler must pick on the host (tasks with port 0). */
  dynamicPorts: number;
  /** Host volume names; a group with any is sticky to its node. */
  hostVolumes: readonly string[];
  constraints: readonly Matcher[];
  affinities: ReadonlyArray<{ matcher: Matcher; weight: number }>;
  spreads: readonly SpreadRule[];
  update: UpdatePolicy;
  reschedule: ReschedulePolicy;
  /** Set when the group has an `autoscale` block: `count` is then the autoscaler's to move. */
  autoscale?: AutoscalePolicy | undefined;
}

/** A job as the reconciler sees it. */
export interface JobState {
  name: string;
  version: number;
  /** `weft job stop`: every allocation stops, the spec stays. */
  stopped: boolean;
  groups: readonly GroupDemand[];
}

/** Lifecycle of an allocation, aggregated over its tasks (any failed -> failed; all running -> running). */
export type AllocStatus = 'pending' | 'running' | 'failed' | 'stopped';

/** Where an allocation is and what it runs: shared by observed and planned allocations. */
export interface AllocPlacement {
  id: string;
  job: string;
  group: string;
  /** Its slot, 0..count-1: scale-down stops the highest first. */
  index: number;
  node: string;
  version: number;
  /** The fingerprint of the group spec it runs (GroupDemand.fingerprint). */
  fingerprint: string;
  resources: Resources;
  /** Host ports it holds (static and picked). */
  ports: readonly number[];
}

/** One instance of a task group on a node (Nomad's allocation; a pod). */
export interface AllocInfo extends AllocPlacement {
  status: AllocStatus;
  /** Running with every check passing for minHealthyTime; undefined while not yet known. */
  healthy?: boolean | undefined;
  createdAtMs: number;
  /** When it was last seen healthy-since (checks passing continuously from then). */
  healthySinceMs?: number | undefined;
  /** When it failed (restarts spent). */
  failedAtMs?: number | undefined;
  /** Times of the reschedules that led to this allocation (the reschedule tracker). */
  reschedules: readonly number[];
}

/** A deployment: one job version rolling out. */
export interface Deployment {
  job: string;
  version: number;
  status: 'running' | 'successful' | 'failed';
  startedAtMs: number;
  /** The version auto-revert goes back to: the last successful one. */
  stableVersion?: number | undefined;
  message?: string | undefined;
}
