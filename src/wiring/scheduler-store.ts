/**
 * The scheduler's documents in Consul KV, and the fenced transaction every
 * leader write goes through.
 *
 *   weft/jobs/<job>                    JobRecord: the spec as submitted + the version it got + stopped
 *   weft/job-versions/<job>/<version>  VersionRecord: history, for auto-revert and `versions`
 *   weft/job-status/<job>              StatusRecord: deployment, placement failures, event ring (leader only)
 *   weft/drain/<node>                  `{ "drain": true }`: operator drain flags
 *   weft/autoscale/<job>/<group>       AutoscaleRecord: the autoscaler's history + last view (leader only)
 *   weft/activate/<service>            any value: a caller's proxy holds a request for a service at zero
 *                                      (the leader's autoscaler acts on it, then deletes it)
 *
 * User intent (jobs, drain) is written by any scheduler instance with
 * check-and-set; allocation documents and status records only by the leader,
 * each batch in one Consul transaction that starts with `check-session` on
 * `weft/leader`, so a deposed leader's write is refused as a whole.
 */
import type { AutoscaleHistory, Deployment, JobSpec, PlacementFailure } from '../../scheduler/index.js';
import type { AutoscaleDecisionView, AutoscaleMetricView, JobEvent } from '../../base/contracts/scheduler-api.js';

export const JOBS_PREFIX = 'weft/jobs/';
export const VERSIONS_PREFIX = 'weft/job-versions/';
export const STATUS_PREFIX = 'weft/job-status/';
export const DRAIN_PREFIX = 'weft/drain/';
export const AUTOSCALE_PREFIX = 'weft/autoscale/';
export const ACTIVATE_PREFIX = 'weft/activate/';
/** Events kept per job. */
export const EVENT_RING = 100;

/** `weft/jobs/<job>`. */
export interface JobRecord {
  version: number;
  stopped: boolean;
  /** ISO 8601. */
  submittedAt: string;
  spec: JobSpec;
}

/** `weft/job-versions/<job>/<version>`. */
export interface VersionRecord {
  version: number;
  submittedAt: string;
  spec: JobSpec;
}

/** `weft/job-status/<job>`: what only the leader knows, kept in KV so any instance can answer `status`. */
export interface StatusRecord {
  deployment?: Deployment | undefined;
  failures: PlacementFailure[];
  events: JobEvent[];
  /** Versions whose deployment succeeded. */
  stableVersions: number[];
}

/**
 * `weft/autoscale/<job>/<group>`: the calculator's history (scheduler/autoscale/history.ts,
 * which reads only its own fields) plus what the API shows of the last decisions, so a
 * standby answers `weft autoscale` and a new leader keeps the windows and cooldowns.
 */
export interface AutoscaleRecord extends AutoscaleHistory {
  /** The newest decision, with the metrics it read and the instances it saw. */
  last?: AutoscaleDecisionView | undefined;
  metrics?: AutoscaleMetricView[] | undefined;
  instances?: { total: number; ready: number } | undefined;
  /** The last decisions that moved the count, would have (dry run), or failed; oldest first. */
  decisions?: AutoscaleDecisionView[] | undefined;
}

export const jobKey = (job: string): string => JOBS_PREFIX + job;
export const autoscaleKey = (job: string, group: string): string => `${AUTOSCALE_PREFIX}${job}/${group}`;
export const activateKey = (service: string): string => ACTIVATE_PREFIX + service;
export const versionKey = (job: string, version: number): string => `${VERSIONS_PREFIX}${job}/${version}`;
export const statusKey = (job: string): string => STATUS_PREFIX + job;
export const drainKey = (node: string): string => DRAIN_PREFIX + node;

/** An empty status record. */
export function emptyStatus(): StatusRecord {
  return { failures: [], events: [], stableVersions: [] };
}

/** Adds events in time order (identical ones once), keeping the newest EVENT_RING. */
export function pushEvents(status: StatusRecord, events: readonly JobEvent[]): StatusRecord {
  if (events.length === 0) return status;
  // Through mergeEvents: an event stamped before the ring's last one (the API's,
  // taken before its write) still lands in time order.
  return { ...status, events: mergeEvents(status.events, events) };
}

/**
 * The union of two event rings, oldest first, newest EVENT_RING kept. Two
 * writers append to a job's ring (the API: submitted, scaled; the leader:
 * placements, deployments), so neither may simply overwrite the other's
 * record. An event is the same event when every field is equal.
 */
export function mergeEvents(a: readonly JobEvent[], b: readonly JobEvent[]): JobEvent[] {
  const seen = new Set(a.map(eventKey));
  const extra = b.filter((e) => !seen.has(eventKey(e)));
  // A stable sort by time keeps each writer's own order among equal timestamps.
  return [...a, ...extra].sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0)).slice(-EVENT_RING);
}

function eventKey(e: JobEvent): string {
  return JSON.stringify([e.at, e.type, e.message, e.alloc ?? null, e.node ?? null, e.version ?? null]);
}

