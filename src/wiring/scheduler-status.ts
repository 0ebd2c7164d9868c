/**
 * The leader's writes of `weft/job-status/<job>` without losing anyone's events.
 *
 * Two writers append to a job's event ring: the API (submitted, scaled,
 * reverted by hand; any instance, check-and-set) and the leader (placements,
 * deployments, failures). The leader keeps its own copy of each record because
 * its watch may lag its writes; writing that copy as is would drop an event
 * the API appended in the meantime. So each write re-reads the key, merges the
 * two rings (scheduler-store.ts mergeEvents), and sets it with check-and-set
 * inside the fenced transaction; a lost race re-reads and merges again.
 * The leader owns the other fields (deployment, failures, stable versions).
 *
 * A record belongs to one incarnation of its job: the job key's CreateIndex.
 * A purge deletes the job and its record; the write checks (`check-index`)
 * that the job document the plan was made for still exists, so a plan made
 * just before a purge cannot write the purged job's record back, nor an old
 * incarnation's events into a job submitted again under the same name.
 */
import { type DiscoveryClient, type Fence, fencedTxn, getEntry, getJSON, type TxnOp } from '../../discovery/index.js';
import { isWeftError, WeftError } from '../../base/errors.js';
import type { JobEvent } from '../../base/contracts/scheduler-api.js';
import { emptyStatus, jobKey, mergeEvents, pushEvents, type StatusRecord, statusKey } from './scheduler-store.js';
import { sleepBackoff } from '../../base/backoff.js';

/** Attempts before a status write gives up (each one lost to an API append in between). */
const ATTEMPTS = 5;

/**
 * Writes each record, merged with the events stored now, if its job still is
 * the incarnation the plan saw (`incarnations`: job -> the job key's
 * CreateIndex); records of purged or re-created jobs are dropped. Returns what
 * was stored (the leader's next copy). Throws WEFT_ERR_LOCK_LOST when deposed,
 * and WEFT_ERR_KV_CAS_CONFLICT after ATTEMPTS lost races.
 */
export async function writeStatuses(
  client: DiscoveryClient,
  fence: Fence,
  records: ReadonlyMap<string, StatusRecord>,
  incarnations: ReadonlyMap<string, number>,
): Promise<Map<string, StatusRecord>> {
  const written = new Map<string, StatusRecord>();
  if (records.size === 0) return written;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const ops: TxnOp[] = [];
    const next = new Map<string, StatusRecord>();
    for (const [job, mine] of records) {
      const doc = await getEntry(client, jobKey(job));
      if (doc === undefined || doc.createIndex !== incarnations.get(job)) continue; // purged (or purged and submitted again) since the plan
      const stored = await getJSON<StatusRecord>(client, statusKey(job));
      // A record older than the job document is an earlier incarnation's (a purge that did not finish): not merged.
      const current = stored !== undefined && stored.modifyIndex > doc.createIndex ? stored : undefined;
      const merged: StatusRecord = current === undefined ? mine : { ...mine, events: mergeEvents(mine.events, current.value.events ?? []) };
      next.set(job, merged);
      ops.push({ verb: 'check-index', key: jobKey(job), index: doc.modifyIndex });
      ops.push({ verb: 'cas', key: statusKey(job), value: merged, index: stored?.modifyIndex ?? 0 });
    }
    try {
      // 62 ops (31 jobs) per transaction, so a job's check and its write never land in different ones.
      for (let i = 0; i < ops.length; i += 62) await fencedTxn(client, fence, ops.slice(i, i + 62));
      return next;
    } catch (err) {
      if (!isWeftError(err, 'WEFT_ERR_KV_CAS_CONFLICT')) throw err;
      // An API append landed between the read and the write: read and merge again.
      if (attempt < ATTEMPTS) await sleepBackoff(attempt, { baseMs: 20, maxMs: 160, jitter: 'full' });
    }
  }
  throw new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `job status records: lost ${ATTEMPTS} check-and-set attempts to concurrent writers`, { key: 'weft/job-status/', value: ATTEMPTS });
}

/**
 * Appends events to a job's ring from the leader outside its reconciliation
 * (the autoscaler's decisions): the stored record re-read, only its events
 * changed, written with check-and-set inside the fence, a lost race retried.
 * Like writeStatuses it writes only while the job is the incarnation the
 * caller saw (`incarnation`: the job key's CreateIndex), and ignores a record
 * older than the job document. Returns false when the job is gone; throws
 * WEFT_ERR_LOCK_LOST when deposed.
 */
export async function appendStatusEvents(client: DiscoveryClient, fence: Fence, job: string, incarnation: number | undefined, events: readonly JobEvent[]): Promise<boolean> {
  if (events.length === 0) return true;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const doc = await getEntry(client, jobKey(job));
    if (doc === undefined || (incarnation !== undefined && doc.createIndex !== incarnation)) return false;
    const stored = await getJSON<StatusRecord>(client, statusKey(job));
    const current = stored !== undefined && stored.modifyIndex > doc.createIndex ? { ...emptyStatus(), ...stored.value } : emptyStatus();
    const next = pushEvents({ ...current, events: current.events ?? [] }, events);
    try {
      await fencedTxn(client, fence, [
        { verb: 'check-index', key: jobKey(job), index: doc.modifyIndex },
        { verb: 'cas', key: statusKey(job), value: next, index: stored?.modifyIndex ?? 0 },
      ]);
      return true;
    } catch (err) {
      if (!isWeftError(err, 'WEFT_ERR_KV_CAS_CONFLICT')) throw err;
      if (attempt < ATTEMPTS) await sleepBackoff(attempt, { baseMs: 20, maxMs: 160, jitter: 'full' });
    }
  }
  throw new WeftError('WEFT_ERR_KV_CAS_CONFLICT', `${statusKey(job)}: lost ${ATTEMPTS} check-and-set attempts to concurrent writers`, { key: statusKey(job), value: ATTEMPTS });
}

/**
 * The leader's copy after observing `seen` (the watch's value): its own fields
 * win (the watch may lag its writes), the event rings are merged.
 */
export function observeStatus(mine: StatusRecord | undefined, seen: StatusRecord): StatusRecord {
  if (mine === undefined) return seen;
  return { ...mine, events: mergeEvents(mine.events, seen.events ?? []) };
}
