/**
 * The dev agent's state store: Consul's tables, one raft-like index, per-table
 * and per-service indexes, and change notification for blocking queries.
 *
 * Every change goes through `write()`, which hands out the next index, logs an
 * undo step per mutation (so a failed txn rolls back completely), and on
 * commit bumps the touched tables' indexes and wakes their watchers
 * synchronously: a woken blocking query re-runs in the same tick, which is why
 * it answers within milliseconds of the change.
 */
import { KvIndex, PrefixMap } from './kv-index.js';
import {
  type AclPolicyRecord,
  type AclTokenRecord,
  type CheckRecord,
  type KvEntry,
  type NodeRecord,
  nodeKey,
  type ServiceRecord,
  type SessionRecord,
  TABLES,
  type Table,
} from './types.js';

type Row<T extends Table> = T extends 'kvs'
  ? KvEntry
  : T extends 'nodes'
    ? NodeRecord
    : T extends 'services'
      ? ServiceRecord
      : T extends 'checks'
        ? CheckRecord
        : T extends 'sessions'
          ? SessionRecord
          : T extends 'acl-tokens'
            ? AclTokenRecord
            : AclPolicyRecord;

/** Called inside a write when a check turns critical or disappears (sessions use it to invalidate). */
export type CheckTrigger = (tx: WriteTx, check: CheckRecord) => void;

/** Thrown inside `write()` to roll back without it being an error of the store. */
export class Rollback extends Error {
  constructor(readonly reason: unknown) {
    super('rollback');
  }
}

/**
 * What one commit (or quiet change) touched, for persistence: the rows by
 * table and key, and the service names whose index moved.
 */
export interface StoreChange {
  readonly tables: ReadonlySet<Table>;
  /** `table\u0000key` of every row written or deleted. */
  readonly rows: ReadonlySet<string>;
  readonly services: ReadonlySet<string>;
  /** A change that keeps the index (check output, tombstone reaps): saved with the next snapshot only. */
  readonly quiet: boolean;
}

/** The `StoreChange.rows` entry of a row. */
export function rowId(table: Table, key: string): string {
  return `${table}\u0000${key}`;
}

/** One write: the index it commits at, and the mutations to undo if it fails. */
export class WriteTx {
  /** The index every record written by this transaction carries. */
  readonly index: number;
  readonly changed = new Set<Table>();
  /** Rows written or deleted (rowId), for persistence. */
  readonly rows = new Set<string>();
  /** KV keys written or deleted: parked queries on their prefixes wake. */
  readonly kvKeys = new Set<string>();
  /** Service names whose index this write moved. */
  readonly services = new Set<string>();
  private readonly undo: Array<() => void> = [];

  constructor(
    private readonly store: Store,
    index: number,
  ) {
    this.index = index;
  }

  /** Inserts, replaces or (with undefined) deletes a row, keeping indexes and tombstones right. */
  put<T extends Table>(table: T, key: string, row: Row<T> | undefined): void {
    const map = this.store.table(table);
    const before = map.get(key);
    if (before === undefined && row === undefined) return;
    this.undo.push(() => (before === undefined ? map.delete(key) : map.set(key, before)));
    if (row === undefined) map.delete(key);
    else map.set(key, row);
    this.changed.add(table);
    this.rows.add(rowId(table, key));

    if (table === 'kvs') {
      this.kvKeys.add(key);
      this.tombstone(key, row === undefined);
      const idx = this.store.kvIndex;
      if (before === undefined) {
        idx.insert(key);
        this.undo.push(() => idx.remove(key));
      } else if (row === undefined) {
        idx.remove(key);
        this.undo.push(() => idx.insert(key));
      }
    }
    if (table === 'services') {
      for (const s of [before, row] as Array<ServiceRecord | undefined>) if (s) this.touchService(s.name);
    }
    if (table === 'checks') this.checkChanged(before as CheckRecord | undefined, row as CheckRecord | undefined);
  }

  /** Bumps the index of a service name, so health/catalog watchers of that name wake. */
  touchService(name: string): void {
    const before = this.store.serviceIndex.get(name);
    this.undo.push(() => (before === undefined ? this.store.serviceIndex.delete(name) : this.store.serviceIndex.set(name, before)));
    this.store.serviceIndex.set(name, this.index);
    this.services.add(name);
  }

  /** Records an extra undo step (for state outside the tables, e.g. lock delays). */
  onRollback(fn: () => void): void {
    this.undo.push(fn);
  }

  /** @internal */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]!();
  }

  private tombstone(key: string, deleted: boolean): void {
    const before = this.store.tombstones.get(key);
    this.undo.push(() => (before === undefined ? this.store.tombstones.delete(key) : this.store.tombstones.set(key, before)));
    if (deleted) this.store.tombstones.set(key, this.index);
    else this.store.tombstones.delete(key);
  }

  private checkChanged(before: CheckRecord | undefined, after: CheckRecord | undefined): void {
    const check = after ?? before!;
    if (check.serviceName !== '') this.touchService(check.serviceName);
    else {
      // A node check is part of every service's health on that node.
      for (const s of this.store.services.values()) if (s.node === check.node) this.touchService(s.name);
    }
    if (after === undefined || (after.status === 'critical' && before?.status !== 'critical')) {
      this.store.checkTrigger?.(this, check);
    }
  }
}

/** The tables, indexes and watchers. */
export class Store {
  /** The last committed index; never goes backwards, also across restarts. */
  index = 0;
  /**
   * Bumped on every change that can alter an answer, including the quiet ones
   * that keep the index (check output, tombstone reaps): answers cached
   * against it (routes/common.ts) are valid while it holds still.
   */
  version = 0;
  readonly kv = new Map<string, KvEntry>();
  /** Deleted keys and the index of their deletion, so prefix queries see deletes (Consul's graveyard). */
  readonly tombstones = new Map<string, number>();
  /** Highest index of reaped tombstones: keeps prefix indexes from going backwards after a reap. */
  tombstoneFloor = 0;
  readonly nodes = new Map<string, NodeRecord>();
  readonly services = new Map<string, ServiceRecord>();
  readonly checks = new Map<string, CheckRecord>();
  readonly sessions = new Map<string, SessionRecord>();
  /** ACL tokens by AccessorID, policies by ID (acl/system.ts keeps their semantics). */
  readonly aclTokens = new Map<string, AclTokenRecord>();
  readonly aclPolicies = new Map<string, AclPolicyRecord>();
  /** The index at which ACLs were bootstrapped (Consul's reset index); 0 while bootstrap is still allowed. */
  aclBootstrapIndex = 0;
  readonly tableIndex: Record<Table, number> = { kvs: 0, nodes: 0, services: 0, checks: 0, sessions: 0, 'acl-tokens': 0, 'acl-policies': 0 };
  /** Per service name: last index at which an instance, its checks or its node's checks changed. */
  readonly serviceIndex = new Map<string, number>();
  /** Key -> time (ms epoch) before which it cannot be locked again; not persisted, as in Consul. */
  readonly lockDelays = new Map<string, number>();
  checkTrigger?: CheckTrigger;
  /** Sorted KV keys and per-prefix indexes (kv-index.ts). */
  readonly kvIndex = new KvIndex();

  private readonly watchers = new Map<Table, Set<() => void>>();
  /** Checks by node and service ID, as of `version` (checksOfInstance). */
  private checkIndex: { version: number; byInstance: Map<string, CheckRecord[]> } | undefined;
  /** Parked KV queries by the prefix (or key) they read. */
  private readonly kvWatchers = new PrefixMap<Set<() => void>>();
  private readonly commitListeners: Array<(change: StoreChange) => void> = [];
  private closed = false;

  /** The map behind a table. */
  table<T extends Table>(table: T): Map<string, Row<T>> {
    const maps = {
      kvs: this.kv,
      nodes: this.nodes,
      services: this.services,
      checks: this.checks,
      sessions: this.sessions,
      'acl-tokens': this.aclTokens,
      'acl-policies': this.aclPolicies,
    };
    return maps[table] as unknown as Map<string, Row<T>>;
  }

  /**
   * Runs `fn` as one transaction at index `this.index + 1`. Commits when it
   * returns (only if it changed something); rolls back and rethrows when it throws.
   */
  write<T>(fn: (tx: WriteTx) => T): T {
    const tx = new WriteTx(this, this.index + 1);
    let result: T;
    try {
      result = fn(tx);
    } catch (err) {
      tx.rollback();
      throw err;
    }
    if (tx.changed.size > 0) {
      this.index = tx.index;
      for (const t of tx.changed) this.tableIndex[t] = tx.index;
      if (tx.kvKeys.size > 0) this.kvIndex.committed(tx.index, tx.kvKeys);
      this.notify({ tables: tx.changed, rows: tx.rows, services: tx.services, quiet: false }, tx.kvKeys);
    }
    return result;
  }

  /**
   * Replaces a row without a new index: for check output changes, which Consul
   * does not sync at once either. Nothing wakes, and persistence saves it with
   * the next snapshot, not at once: a TTL heartbeat whose note changes every
   * time costs no disk write.
   */
  putQuietly<T extends Table>(table: T, key: string, row: Row<T>): void {
    this.table(table).set(key, row);
    this.version++;
    const change: StoreChange = { tables: new Set(), rows: new Set([rowId(table, key)]), services: new Set(), quiet: true };
    for (const l of this.commitListeners) l(change);
  }

  /** Rebuilds derived indexes after state was loaded into the maps directly (persistence). */
  loaded(): void {
    this.kvIndex.reset(this.kv.keys());
  }

  /** Max of the given tables' indexes, at least 1 (Consul never answers index 0). */
  maxIndex(...tables: Table[]): number {
    let max = 0;
    for (const t of tables) max = Math.max(max, this.tableIndex[t]);
    return Math.max(1, max);
  }

  /** Calls `cb` after any commit touching one of `tables`; returns the unsubscribe function. */
  watch(tables: readonly Table[], cb: () => void): () => void {
    for (const t of tables) {
      const set = this.watchers.get(t) ?? new Set();
      this.watchers.set(t, set);
      set.add(cb);
    }
    return () => {
      for (const t of tables) this.watchers.get(t)?.delete(cb);
    };
  }

  /**
   * Calls `cb` after a commit that set or deleted a KV key starting with
   * `prefix` (a single key's query passes the key: a longer key sharing it
   * wakes it too, harmlessly), and on close. Returns the unsubscribe function.
   */
  watchKv(prefix: string, cb: () => void): () => void {
    let set = this.kvWatchers.get(prefix);
    if (set === undefined) {
      set = new Set();
      this.kvWatchers.set(prefix, set);
    }
    set.add(cb);
    return () => {
      const s = this.kvWatchers.get(prefix);
      if (s === undefined) return;
      s.delete(cb);
      if (s.size === 0) this.kvWatchers.delete(prefix);
    };
  }

  /** Calls `cb` after every commit and quiet change (persistence logs or schedules a save). */
  onCommit(cb: (change: StoreChange) => void): void {
    this.commitListeners.push(cb);
  }

  /**
   * Drops tombstones written at or before `uptoIndex` (Consul's graveyard
   * reap) and raises the floor so prefix indexes never go backwards.
   * Returns how many were dropped.
   */
  reapTombstones(uptoIndex: number): number {
    let dropped = 0;
    const reaped: string[] = [];
    for (const [key, idx] of this.tombstones) {
      if (idx > uptoIndex) continue;
      reaped.push(key);
      this.tombstones.delete(key);
      this.tombstoneFloor = Math.max(this.tombstoneFloor, idx);
      dropped++;
    }
    if (dropped > 0) {
      this.version++;
      this.kvIndex.invalidate();
      const change: StoreChange = { tables: new Set(), rows: new Set(reaped.map((k) => rowId('kvs', k))), services: new Set(), quiet: true };
      for (const l of this.commitListeners) l(change);
    }
    return dropped;
  }

  /** Wakes every watcher once, so pending blocking queries answer before shutdown. */
  close(): void {
    this.closed = true;
    this.notify({ tables: new Set(TABLES), rows: new Set(), services: new Set(), quiet: true }, undefined, true);
  }

  /** True once `close()` ran; blocking queries stop waiting. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Services on a node, by ID. */
  servicesOfNode(node: string): ServiceRecord[] {
    return [...this.services.values()].filter((s) => s.node === node);
  }

  /**
   * The checks of one service instance: its own and its node's, sorted by
   * check ID. For reads (routes), not inside a write: it comes from an index
   * rebuilt once per store version, so a health answer of a thousand
   * instances on one node costs one pass over the checks, not one per instance.
   */
  checksOfInstance(node: string, serviceId: string): CheckRecord[] {
    if (this.checkIndex?.version !== this.version) {
      const byInstance = new Map<string, CheckRecord[]>();
      for (const c of this.checks.values()) {
        const k = `${c.node}\u0000${c.serviceId}`;
        const list = byInstance.get(k);
        if (list === undefined) byInstance.set(k, [c]);
        else list.push(c);
      }
      this.checkIndex = { version: this.version, byInstance };
    }
    const own = this.checkIndex.byInstance.get(`${node}\u0000${serviceId}`) ?? [];
    const nodeLevel = serviceId === '' ? [] : (this.checkIndex.byInstance.get(`${node}\u0000`) ?? []);
    return [...nodeLevel, ...own].sort(byCheckId);
  }

  /** Checks on a node, sorted by check ID (Consul's memdb order). */
  checksOfNode(node: string): CheckRecord[] {
    return [...this.checks.values()].filter((c) => c.node === node).sort(byCheckId);
  }

  /** A service instance by node and ID. */
  service(node: string, id: string): ServiceRecord | undefined {
    return this.services.get(nodeKey(node, id));
  }

  /** A check by node and ID. */
  check(node: string, id: string): CheckRecord | undefined {
    return this.checks.get(nodeKey(node, id));
  }

  private notify(change: StoreChange, kvKeys: ReadonlySet<string> | undefined, everyone = false): void {
    this.version++;
    const due = new Set<() => void>();
    for (const t of change.tables) for (const cb of this.watchers.get(t) ?? []) due.add(cb);
    if (everyone) {
      for (const set of this.kvWatchers.values()) for (const cb of set) due.add(cb);
    } else if (kvKeys !== undefined && this.kvWatchers.size > 0) {
      for (const k of kvKeys) this.kvWatchers.forEachPrefixOf(k, (set) => {
        for (const cb of set) due.add(cb);
      });
    }
    for (const cb of due) cb();
    if (!everyone) for (const l of this.commitListeners) l(change);
  }
}

function byCheckId(a: CheckRecord, b: CheckRecord): number {
  return a.checkId < b.checkId ? -1 : a.checkId > b.checkId ? 1 : 0;
}
