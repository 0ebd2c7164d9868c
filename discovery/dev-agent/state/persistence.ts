/**
 * Persists the store to `<dataDir>/state.json`. Writes are debounced (a burst
 * of KV writes costs one file write) and atomic (base/atomic-write.ts), so
 * a crash leaves either the old or the new snapshot, never half of one. A file
 * that does not parse is an error naming it: silently starting empty would
 * throw away a user's KV and registrations.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../base/atomic-write.js';
import type { Logger } from '../../../base/log.js';
import { WeftError } from '../../../base/errors.js';
import type { Store } from './store.js';
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

/** The snapshot file's name inside the data directory. */
export const STATE_FILE = 'state.json';
const FORMAT = 1;

interface Snapshot {
  format: number;
  nodeId: string;
  index: number;
  tableIndex: Record<Table, number>;
  serviceIndex: Array<[string, number]>;
  tombstoneFloor: number;
  kv: Array<Omit<KvEntry, 'value'> & { value: string | null }>;
  tombstones: Array<[string, number]>;
  nodes: NodeRecord[];
  services: ServiceRecord[];
  checks: CheckRecord[];
  sessions: SessionRecord[];
  /** ACL state (absent in files written before ACLs existed: nothing to restore). Token secrets are here: the file is 0600. */
  aclTokens?: AclTokenRecord[];
  aclPolicies?: AclPolicyRecord[];
  aclBootstrapIndex?: number;
}

/**
 * Loads the snapshot into `store` and returns the persisted node ID (a new
 * one on first start). The index is bumped by one past the saved value so an
 * index handed out before a crash-lost write is never reused.
 */
export function loadState(dataDir: string, store: Store): { nodeId: string } {
  const file = join(dataDir, STATE_FILE);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (cause) {
    throw dataDirError(`cannot create data directory ${dataDir}: ${(cause as Error).message}`, dataDir, cause);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { nodeId: randomUUID() };
    throw dataDirError(`cannot read ${file}: ${(cause as Error).message}`, file, cause);
  }
  let snap: Snapshot;
  try {
    snap = JSON.parse(text) as Snapshot;
    if (snap === null || typeof snap !== 'object' || snap.format !== FORMAT || typeof snap.index !== 'number') {
      throw new Error(`not a weft dev-consul snapshot (format ${FORMAT})`);
    }
    restore(store, snap);
  } catch (cause) {
    throw dataDirError(`${file} is corrupt (${(cause as Error).message}); move it away to start empty`, file, cause);
  }
  return { nodeId: snap.nodeId };
}

function restore(store: Store, snap: Snapshot): void {
  for (const e of snap.kv) store.kv.set(e.key, { ...e, value: e.value === null ? null : Buffer.from(e.value, 'base64') });
  for (const [k, i] of snap.tombstones) store.tombstones.set(k, i);
  for (const n of snap.nodes) store.nodes.set(n.node, n);
  for (const s of snap.services) store.services.set(nodeKey(s.node, s.id), s);
  for (const c of snap.checks) store.checks.set(nodeKey(c.node, c.checkId), c);
  for (const s of snap.sessions) store.sessions.set(s.id, s);
  for (const tok of snap.aclTokens ?? []) store.aclTokens.set(tok.accessorId, tok);
  for (const p of snap.aclPolicies ?? []) store.aclPolicies.set(p.id, p);
  store.aclBootstrapIndex = snap.aclBootstrapIndex ?? 0;
  for (const [name, i] of snap.serviceIndex) store.serviceIndex.set(name, i);
  for (const t of TABLES) store.tableIndex[t] = snap.tableIndex[t] ?? 0;
  store.tombstoneFloor = snap.tombstoneFloor ?? 0;
  store.index = snap.index + 1;
}

function snapshot(store: Store, nodeId: string): Snapshot {
  return {
    format: FORMAT,
    nodeId,
    index: store.index,
    tableIndex: { ...store.tableIndex },
    serviceIndex: [...store.serviceIndex],
    tombstoneFloor: store.tombstoneFloor,
    kv: [...store.kv.values()].map((e) => ({ ...e, value: e.value === null ? null : e.value.toString('base64') })),
    tombstones: [...store.tombstones],
    nodes: [...store.nodes.values()],
    services: [...store.services.values()],
    checks: [...store.checks.values()],
    sessions: [...store.sessions.values()],
    aclTokens: [...store.aclTokens.values()],
    aclPolicies: [...store.aclPolicies.values()],
    aclBootstrapIndex: store.aclBootstrapIndex,
  };
}

/** Saves the store after commits, debounced, one write at a time. */
export class Persister {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly dataDir: string,
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly debounceMs: number,
    private readonly logger: Logger,
  ) {
    store.onCommit(() => this.schedule());
  }

  /** Marks the state dirty and saves within the debounce window. */
  schedule(): void {
    this.dirty = true;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch((err: unknown) => this.logger.error({ err }, 'dev-consul: saving state failed'));
    }, this.debounceMs);
  }

  /** Writes now if anything changed since the last save; waits for a save in progress. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      await this.writeAtomic(JSON.stringify(snapshot(this.store, this.nodeId)));
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  private async writeAtomic(text: string): Promise<void> {
    const file = join(this.dataDir, STATE_FILE);
    try {
      await mkdir(this.dataDir, { recursive: true });
      await writeFileAtomic(file, text, { mode: 0o600 });
    } catch (cause) {
      this.dirty = true;
      throw dataDirError(`cannot write ${file}: ${(cause as Error).message}`, file, cause);
    }
  }
}

function dataDirError(message: string, file: string, cause: unknown): WeftError {
  return new WeftError('WEFT_ERR_DEV_CONSUL_DATA_DIR', `dev-consul: ${message}`, { key: 'dataDir', value: file, cause });
}
