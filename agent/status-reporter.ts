/**
 * The allocation runner's writes of `weft/alloc-status/<host>/<alloc>`,
 * batched: every report made within one short window (the reports of a
 * reconcile that starts ten allocations, for instance) goes out as one
 * Consul transaction of up to 64 operations instead of one PUT each, and
 * only the newest state of each record is sent. A caller's `report` resolves
 * once its batch is written (or has failed: the failure is the caller's to
 * log, as a single PUT's was). Deletes ride in the same batches, ordered
 * after any earlier write of the same key, so a record written and then
 * deleted ends up deleted. A batch Consul did not take is tried again with
 * backoff (a report lost to a busy Consul would leave the scheduler waiting
 * for a state the task is long in), up to STATUS_ATTEMPTS times; a newer
 * report of the same record supersedes the one being retried (which is then
 * dropped, never written after it).
 */
import { type Backoff, backoffDelayMs } from '../base/backoff.js';
import type { DiscoveryClient } from '../discovery/index.js';

/** Consul's cap on operations per transaction. */
export const STATUS_TXN_MAX_OPS = 64;
/** How long reports are gathered before a batch is sent. */
export const STATUS_BATCH_MS = 10;
/** Attempts per report before its caller is told it failed. */
export const STATUS_ATTEMPTS = 6;
/** Between attempts: 200 ms doubling to 5 s, with jitter (about 10 s in all). */
const RETRY: Backoff = { baseMs: 200, maxMs: 5000, jitter: 'equal' };

interface Pending {
  /** The JSON to set, or undefined to delete. */
  value: string | undefined;
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
  /** Failed attempts so far. */
  attempts: number;
  /** Order of the report (latestSeq says which report of a record is the newest). */
  seq: number;
}

/** One host's status writes, gathered into transactions. */
export class StatusReporter {
  private pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private sending: Promise<void> = Promise.resolve();
  private closed = false;
  private seq = 0;
  /** Per record, the newest report's seq: an older one that failed is not retried over it. */
  private readonly latestSeq = new Map<string, number>();

  constructor(
    private readonly client: DiscoveryClient,
    private readonly batchMs = STATUS_BATCH_MS,
  ) {}

  /** Sets `key` to `doc` (JSON) in the next batch. */
  set(key: string, doc: unknown): Promise<void> {
    return this.enqueue(key, JSON.stringify(doc));
  }

  /** Deletes `key` in the next batch. */
  delete(key: string): Promise<void> {
    return this.enqueue(key, undefined);
  }

  /** Sends what is pending now and waits for every batch in flight; no retries after this. */
  async flush(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
    this.send();
    await this.sending;
  }

  private enqueue(key: string, value: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const seq = ++this.seq;
      this.latestSeq.set(key, seq);
      const p = this.pending.get(key);
      if (p !== undefined) {
        p.value = value; // only the newest state of a record matters
        p.seq = seq;
        p.waiters.push({ resolve, reject });
      } else this.pending.set(key, { value, waiters: [{ resolve, reject }], attempts: 0, seq });
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.send();
      }, this.batchMs);
    });
  }

  /** Takes what is pending as batches; they go out after the ones already sending, in order. */
  private send(): void {
    if (this.pending.size === 0) return;
    const all = [...this.pending];
    this.pending = new Map();
    const batches: Array<Array<[string, Pending]>> = [];
    for (let i = 0; i < all.length; i += STATUS_TXN_MAX_OPS) batches.push(all.slice(i, i + STATUS_TXN_MAX_OPS));
    this.sending = this.sending.then(async () => {
      await Promise.all(batches.map((b) => this.write(b)));
    });
  }

  private async write(batch: Array<[string, Pending]>): Promise<void> {
    const ops = batch.map(([key, p]) =>
      p.value === undefined ? { KV: { Verb: 'delete', Key: key } } : { KV: { Verb: 'set', Key: key, Value: Buffer.from(p.value).toString('base64') } },
    );
    try {
      // node-consul sends the operations as they are; its types describe a shape Consul does not accept.
      await this.client.call('txn', (c) => c.transaction.create(ops as never));
      for (const [key, p] of batch) {
        if (this.latestSeq.get(key) === p.seq) this.latestSeq.delete(key);
        for (const w of p.waiters) w.resolve();
      }
    } catch (err) {
      let retry = 0;
      for (const [key, p] of batch) {
        // A newer report of the record exists (waiting, or already on its way): it supersedes this one,
        // and retrying this one after it would put the older state back.
        if (this.latestSeq.get(key) !== p.seq) {
          for (const w of p.waiters) w.resolve();
          continue;
        }
        p.attempts++;
        if (this.closed || p.attempts >= STATUS_ATTEMPTS) {
          this.latestSeq.delete(key);
          for (const w of p.waiters) w.reject(err);
          continue;
        }
        this.pending.set(key, p);
        retry = Math.max(retry, p.attempts);
      }
      if (retry > 0 && this.retryTimer === undefined) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.send();
        }, backoffDelayMs(retry, RETRY));
      }
    }
  }
}
