/**
 * The scheduler's documents in Consul KV, and the fenced transaction every
 * leader write goes through.
 *
 *   weft/jobs/<job>                    JobRecord: the spec as submitted + the version it got + stopped
 *   weft/job-versions/<job>/<version>  VersionRecord: history, for auto-revert and `versions`
 *   weft/job-status/<job>              StatusRecord: deployment, placement failures, event ring (leader only)
 *   weft/drain/<node>                  `{ "drain": true }`: operator drain flags
 *   weft/autoscale/<job>/<group>       AutoscaleRecord: the autoscaler's history + last view (leader only)
 *   weft/activate/<service>, weft/zero/<service>: scale to zero (base/contracts/activation.ts)
 *
 * User intent (jobs, drain) is written by any scheduler instance with
 * check-and-set; allocation documents and status records only by the leader,
 * each batch in one Consul transaction that starts with `check-session` on
 * `weft/leader`, so a deposed leader's write is refused as a whole.
 */
import type { AutoscaleHistory, Deployment, JobSpec, PlacementFailure } from '../../scheduler/index.js';
import { type DiscoveryClient, type Fence, fencedTxn, type TxnOp } from '../../discovery/index.js';
import type { AutoscaleDecisionView, AutoscaleMetricView, JobEvent } from '../../base/contracts/scheduler-api.js';

export const JOBS_PREFIX = 'weft/jobs/';
export const VERSIONS_PREFIX = 'weft/job-versions/';
export const STATUS_PREFIX = 'weft/job-status/';
export const DRAIN_PREFIX = 'weft/drain/';
export const AUTOSCALE_PREFIX = 'weft/autoscale/';
export { ACTIVATE_PREFIX, activateKey, ZERO_PREFIX, zeroKey } from '../../base/contracts/activation.js';
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

/** Operations per fenced transaction: Consul's 64 less the session check. */
export const TXN_BATCH = 63;
/** Fenced transactions in flight at once when a plan is written. */
export const TXN_IN_FLIGHT = 8;

/**
 * Writes `ops` as fenced transactions of TXN_BATCH, up to `inFlight` at once:
 * each still starts with the session check (discovery's fencedTxn), so a
 * deposed leader's batches are all refused, and the round trips overlap
 * instead of adding up. The operations of one plan touch distinct keys, so
 * their batches commute. After the first failure no new batch starts; the
 * ones in flight finish, and the first error is thrown (WEFT_ERR_LOCK_LOST
 * before any other, so the caller steps down).
 */
export async function pipelinedTxn(client: DiscoveryClient, fence: Fence, ops: readonly TxnOp[], inFlight = TXN_IN_FLIGHT): Promise<void> {
  const batches: TxnOp[][] = [];
  for (let i = 0; i < ops.length; i += TXN_BATCH) batches.push(ops.slice(i, i + TXN_BATCH));
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (errors.length === 0 && next < batches.length) {
      const batch = batches[next++]!;
      try {
        await fencedTxn(client, fence, batch);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, batches.length) }, worker));
  if (errors.length > 0) throw errors.find((e) => (e as { code?: string }).code === 'WEFT_ERR_LOCK_LOST') ?? errors[0];
}
