/**
 * Persists the store in `<dataDir>`: a snapshot (`state.json`) plus an
 * append-only log (`state.log`) of what changed since.
 *
 *   commit ─▶ dirty rows (table + key), service indexes ─▶ every persistDebounceMs:
 *     one line appended to state.log: the current value of each dirty row (or its
 *     deletion) and the indexes; fdatasync
 *   state.log grown past max(1 MiB, the last snapshot's size) ─▶ new snapshot:
 *     state.json (generation g+1, atomic: base/atomic-write.ts), then a fresh
 *     state.log for g+1 (atomic too)
 *   first save in an empty data directory, and a clean close ─▶ a snapshot
 *     (at close state.log is removed: state.json alone holds everything)
 *
 * A write costs what it changed, not the size of the state: the whole state
 * is written only when the log has grown as large as the snapshot, so
 * snapshots cost at most as much as the log writes they fold. Check output
 * changes (a TTL heartbeat's note) keep the index and are not logged: they
 * are saved with the next snapshot, so heartbeats cost no disk write.
 *
 * Loading: the snapshot, then the log's lines in order if its generation is
 * the snapshot's (an older log was folded into the snapshot before a crash).
 * A last line cut short by a crash is ignored (and cut off before the next
 * append); a bad line before the last one, or a snapshot that does not parse,
 * is an error naming the file: silently starting empty would throw away a
 * user's KV and registrations. `state.json` files of format 1 (written
 * before the log existed) load as generation 0.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { type FileHandle, mkdir, open, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../base/atomic-write.js';
import type { Logger } from '../../../base/log.js';
import { WeftError } from '../../../base/errors.js';
import type { Store, StoreChange } from './store.js';
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
/** The change log's name inside the data directory. */
export const LOG_FILE = 'state.log';
/** Snapshot format: 2 has `generation` and a log beside it; 1 (no log) still loads. */
const FORMAT = 2;
/** The log is folded into a snapshot once it is larger than this and than the last snapshot. */
export const SNAPSHOT_MIN_LOG_BYTES = 1024 * 1024;

interface Snapshot {
  format: number;
  /** Which state.log continues this snapshot (absent in format 1: 0). */
  generation?: number;
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

/** The first line of state.log. */
interface LogHeader {
  weftDevConsulLog: 1;
  generation: number;
}

/** One line of state.log: the current value of every row that changed, and the indexes. */
interface LogRecord {
  /** The store's index. */
  i: number;
  ti: Record<Table, number>;
  tf: number;
  ab: number;
  /** [table, key, row or null for deleted]; KV values base64. */
  r: Array<[Table, string, unknown]>;
  /** KV tombstones of the keys in `r`: [key, index or null]. */
  tb: Array<[string, number | null]>;
  /** Service indexes that moved: [name, index or null]. */
  si: Array<[string, number | null]>;
}

/** What was loaded: the node ID and where the files stand, for the Persister. */
export interface LoadedState {
  nodeId: string;
  /** The snapshot's generation (0 with no snapshot, or a format 1 one). */
  generation: number;
  /** Bytes of the snapshot (0 when none). */
  snapshotBytes: number;
  /** Bytes of state.log up to its last whole line, when it continues the snapshot; undefined when there is none to append to. */
  logBytes: number | undefined;
  /** A torn last line was found (and will be cut off before the next append). */
  torn: boolean;
}

/**
 * Loads the snapshot and the log into `store` and returns the persisted node
 * ID (a new one on first start). The index is bumped by one past the saved
 * value so an index handed out before a crash-lost write is never reused.
 */
export function loadState(dataDir: string, store: Store): LoadedState {
  const file = join(dataDir, STATE_FILE);
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (cause) {
    throw dataDirError(`cannot create data directory ${dataDir}: ${(cause as Error).message}`, dataDir, cause);
  }
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw dataDirError(`cannot read ${file}: ${(cause as Error).message}`, file, cause);
  }
  let nodeId: string = randomUUID();
  let generation = 0;
  if (text !== undefined) {
    let snap: Snapshot;
    try {
      snap = JSON.parse(text) as Snapshot;
      if (snap === null || typeof snap !== 'object' || (snap.format !== FORMAT && snap.format !== 1) || typeof snap.index !== 'number') {
        throw new Error(`not a weft dev-consul snapshot (format 1 or ${FORMAT})`);
      }
      restore(store, snap);
    } catch (cause) {
      throw dataDirError(`${file} is corrupt (${(cause as Error).message}); move it away to start empty`, file, cause);
    }
    nodeId = snap.nodeId;
    generation = snap.generation ?? 0;
  }
  const log = replayLog(join(dataDir, LOG_FILE), generation, store);
  store.index += 1;
  store.loaded();
  return { nodeId, generation, snapshotBytes: text === undefined ? 0 : Buffer.byteLength(text), logBytes: log.bytes, torn: log.torn };
}

/**
 * Applies state.log when it continues generation `generation`. Returns the
 * length up to its last whole record (undefined when there is no such log).
 */
function replayLog(file: string, generation: number, store: Store): { bytes: number | undefined; torn: boolean } {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: undefined, torn: false };
    throw dataDirError(`cannot read ${file}: ${(cause as Error).message}`, file, cause);
  }
  let offset = 0;
  let line = 0;
  let torn = false;
  while (offset < buf.length) {
    const nl = buf.indexOf(0x0a, offset);
    const last = nl === -1 || nl === buf.length - 1;
    const text = buf.subarray(offset, nl === -1 ? buf.length : nl).toString('utf8');
    let parsed: unknown;
    try {
      if (nl === -1) throw new Error('no end of line');
      parsed = JSON.parse(text);
    } catch (cause) {
      // A crash mid-append leaves a partial last line: what it held was never acknowledged as saved.
      if (last) {
        torn = true;
        break;
      }
      throw dataDirError(`${file} is corrupt at line ${line + 1} (${(cause as Error).message}); move it away to start from ${STATE_FILE} alone`, file, cause);
    }
    if (line === 0) {
      const h = parsed as LogHeader;
      if (h?.weftDevConsulLog !== 1 || typeof h.generation !== 'number') throw dataDirError(`${file} is not a weft dev-consul log`, file, undefined);
      // An older log was folded into the snapshot just before a crash; a newer one cannot exist without its snapshot.
      if (h.generation < generation) return { bytes: undefined, torn: false };
      if (h.generation > generation) throw dataDirError(`${file} continues generation ${h.generation} but ${STATE_FILE} is generation ${generation}`, file, undefined);
    } else {
      try {
        applyRecord(store, parsed as LogRecord);
      } catch (cause) {
        throw dataDirError(`${file} is corrupt at line ${line + 1} (${(cause as Error).message})`, file, cause);
      }
    }
    offset = nl + 1;
    line++;
  }
  if (line === 0) return { bytes: undefined, torn }; // not even a whole header: start a new log
  return { bytes: offset, torn };
}

function applyRecord(store: Store, rec: LogRecord): void {
  if (typeof rec?.i !== 'number' || !Array.isArray(rec.r)) throw new Error('not a log record');
  for (const [table, key, row] of rec.r) {
    const map = store.table(table) as Map<string, unknown>;
    if (map === undefined) throw new Error(`unknown table ${table}`);
    if (row === null) map.delete(key);
    else if (table === 'kvs') {
      const e = row as Omit<KvEntry, 'value'> & { value: string | null };
      map.set(key, { ...e, value: e.value === null ? null : Buffer.from(e.value, 'base64') });
    } else map.set(key, row);
  }
  for (const [key, idx] of rec.tb) {
    if (idx === null) store.tombstones.delete(key);
    else store.tombstones.set(key, idx);
  }
  for (const [name, idx] of rec.si) {
    if (idx === null) store.serviceIndex.delete(name);
    else store.serviceIndex.set(name, idx);
  }
  for (const t of TABLES) store.tableIndex[t] = rec.ti[t] ?? store.tableIndex[t];
  store.tombstoneFloor = rec.tf;
  store.aclBootstrapIndex = rec.ab;
  store.index = rec.i;
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
  store.index = snap.index;
}

/**
 * The snapshot's JSON text. KV entries (most of a weft cluster's state) are
 * spliced in as cached texts (kvRowText), so a snapshot costs a join, not a
 * base64 encoding and a serialisation of every value again.
 */
function snapshotText(store: Store, nodeId: string, generation: number): string {
  const rest: Omit<Snapshot, 'kv'> = {
    format: FORMAT,
    generation,
    nodeId,
    index: store.index,
    tableIndex: { ...store.tableIndex },
    serviceIndex: [...store.serviceIndex],
    tombstoneFloor: store.tombstoneFloor,
    tombstones: [...store.tombstones],
    nodes: [...store.nodes.values()],
    services: [...store.services.values()],
    checks: [...store.checks.values()],
    sessions: [...store.sessions.values()],
    aclTokens: [...store.aclTokens.values()],
    aclPolicies: [...store.aclPolicies.values()],
    aclBootstrapIndex: store.aclBootstrapIndex,
  };
  const kv = [...store.kv.values()].map(kvRowText).join(',');
  return `${JSON.stringify(rest).slice(0, -1)},"kv":[${kv}]}`;
}

/** A KV entry as saved: the value base64. */
function kvRow(e: KvEntry): Omit<KvEntry, 'value'> & { value: string | null } {
  return { ...e, value: e.value === null ? null : e.value.toString('base64') };
}

/** Each entry's saved form as JSON text; entries are immutable (a write replaces the record), so it never goes stale. */
const rowTexts = new WeakMap<KvEntry, string>();

function kvRowText(e: KvEntry): string {
  let text = rowTexts.get(e);
  if (text === undefined) {
    text = JSON.stringify(kvRow(e));
    rowTexts.set(e, text);
  }
  return text;
}

/** Saves the store after commits: log lines, debounced, one write at a time; snapshots now and then. */
export class Persister {
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  /** Something committed that the log does not have yet (if only the index). */
  private dirty = false;
  /** Rows and service indexes changed since the last log line. */
  private rows = new Set<string>();
  private services = new Set<string>();
  /** Quiet changes (check output) not in a snapshot yet: only the next snapshot saves them. */
  private quiet = false;
  private generation: number;
  private snapshotBytes: number;
  /** Bytes in state.log; undefined while there is no log of this generation to append to. */
  private logBytes: number | undefined;
  private torn: boolean;
  private handle: FileHandle | undefined;
  /** Bytes of the log's header line: a log no longer than this holds nothing. */
  private headerBytes = 0;

  constructor(
    private readonly dataDir: string,
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly debounceMs: number,
    private readonly logger: Logger,
    loaded: Pick<LoadedState, 'generation' | 'snapshotBytes' | 'logBytes' | 'torn'> = { generation: 0, snapshotBytes: 0, logBytes: undefined, torn: false },
  ) {
    this.generation = loaded.generation;
    this.snapshotBytes = loaded.snapshotBytes;
    this.logBytes = loaded.logBytes;
    this.torn = loaded.torn;
    store.onCommit((change) => this.changed(change));
  }

  /** Marks the state dirty and saves within the debounce window. */
  schedule(): void {
    this.dirty = true;
    this.arm();
  }

  /** Appends what changed since the last save now; waits for a save in progress. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.writing.then(() => this.append());
    this.writing = run.catch(() => undefined);
    return run;
  }

  /** Saves everything (a last snapshot, quiet changes included) and removes the log: a clean stop. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.writing.then(async () => {
      const pending = this.dirty || this.quiet || this.rows.size > 0 || (this.logBytes ?? 0) > this.headerBytes || this.generation === 0;
      if (!pending) return;
      await this.snapshot();
      await this.closeHandle();
      await rm(join(this.dataDir, LOG_FILE), { force: true });
      this.logBytes = undefined;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  private changed(change: StoreChange): void {
    if (change.quiet) {
      // Reaped tombstones are gone from the state: the log must say so too, or a replay brings them back.
      if (change.rows.size > 0 && change.tables.size === 0 && [...change.rows].every((r) => r.startsWith('kvs\u0000'))) {
        for (const r of change.rows) this.rows.add(r);
        this.schedule();
        return;
      }
      this.quiet = true;
      return;
    }
    for (const r of change.rows) this.rows.add(r);
    for (const s of change.services) this.services.add(s);
    this.schedule();
  }

  private arm(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().catch((err: unknown) => this.logger.error({ err }, 'dev-consul: saving state failed'));
    }, this.debounceMs);
  }

  private async append(): Promise<void> {
    if (!this.dirty && this.rows.size === 0) return;
    // A data directory without a snapshot gets one first: there is nothing for a log to continue.
    if (this.snapshotBytes === 0 && this.logBytes === undefined) {
      await this.snapshot();
      return;
    }
    const rows = this.rows;
    const services = this.services;
    const line = this.line();
    const file = join(this.dataDir, LOG_FILE);
    try {
      const fh = await this.openLog();
      await fh.write(line);
      await fh.datasync();
      this.logBytes = (this.logBytes ?? 0) + Buffer.byteLength(line);
    } catch (cause) {
      // Not saved: the rows stay dirty for the next attempt.
      this.dirty = true;
      for (const r of rows) this.rows.add(r);
      for (const n of services) this.services.add(n);
      throw dataDirError(`cannot write ${file}: ${(cause as Error).message}`, file, cause);
    }
    if ((this.logBytes ?? 0) > Math.max(SNAPSHOT_MIN_LOG_BYTES, this.snapshotBytes)) await this.rotate();
  }

  /** The line for everything dirty, with the rows' values as they are now (KV rows as cached texts). */
  private line(): string {
    const s = this.store;
    const r: string[] = [];
    const tb: LogRecord['tb'] = [];
    for (const id of this.rows) {
      const sep = id.indexOf('\u0000');
      const table = id.slice(0, sep) as Table;
      const key = id.slice(sep + 1);
      const row = s.table(table).get(key);
      const head = JSON.stringify([table, key]).slice(0, -1);
      if (table === 'kvs') {
        r.push(`${head},${row === undefined ? 'null' : kvRowText(row as KvEntry)}]`);
        tb.push([key, s.tombstones.get(key) ?? null]);
      } else r.push(`${head},${JSON.stringify(row ?? null)}]`);
    }
    const si: LogRecord['si'] = [...this.services].map((n) => [n, s.serviceIndex.get(n) ?? null]);
    this.rows = new Set();
    this.services = new Set();
    this.dirty = false;
    const rest: Omit<LogRecord, 'r'> = { i: s.index, ti: { ...s.tableIndex }, tf: s.tombstoneFloor, ab: s.aclBootstrapIndex, tb, si };
    return `${JSON.stringify(rest).slice(0, -1)},"r":[${r.join(',')}]}\n`;
  }

  /** The log to append to: the loaded one (a torn tail cut off first), or a new one for this generation. */
  private async openLog(): Promise<FileHandle> {
    if (this.handle !== undefined) return this.handle;
    const file = join(this.dataDir, LOG_FILE);
    await mkdir(this.dataDir, { recursive: true });
    if (this.logBytes === undefined) await this.writeHeader();
    else if (this.torn) {
      await truncate(file, this.logBytes);
      this.torn = false;
    }
    this.handle = await open(file, 'a', 0o600);
    return this.handle;
  }

  private async writeHeader(): Promise<void> {
    const header = `${JSON.stringify({ weftDevConsulLog: 1, generation: this.generation } satisfies LogHeader)}\n`;
    await writeFileAtomic(join(this.dataDir, LOG_FILE), header, { mode: 0o600 });
    this.headerBytes = Buffer.byteLength(header);
    this.logBytes = this.headerBytes;
    this.torn = false;
  }

  /** Folds the log into a new snapshot and starts a new log. */
  private async rotate(): Promise<void> {
    await this.snapshot();
    await this.closeHandle();
    await this.writeHeader();
  }

  /** Writes the whole state as generation + 1; what the old log held is in it. */
  private async snapshot(): Promise<void> {
    const file = join(this.dataDir, STATE_FILE);
    const next = this.generation + 1;
    const text = snapshotText(this.store, this.nodeId, next);
    // What is dirty now is in the text; changes while it is written stay dirty for the next log.
    const saved = { rows: this.rows, services: this.services, dirty: this.dirty, quiet: this.quiet };
    this.rows = new Set();
    this.services = new Set();
    this.dirty = false;
    this.quiet = false;
    try {
      await mkdir(this.dataDir, { recursive: true });
      await writeFileAtomic(file, text, { mode: 0o600 });
    } catch (cause) {
      for (const r of saved.rows) this.rows.add(r);
      for (const n of saved.services) this.services.add(n);
      this.dirty ||= saved.dirty;
      this.quiet ||= saved.quiet;
      throw dataDirError(`cannot write ${file}: ${(cause as Error).message}`, file, cause);
    }
    this.generation = next;
    this.snapshotBytes = Buffer.byteLength(text);
  }

  private async closeHandle(): Promise<void> {
    const fh = this.handle;
    this.handle = undefined;
    await fh?.close();
  }
}

function dataDirError(message: string, file: string, cause: unknown): WeftError {
  return new WeftError('WEFT_ERR_DEV_CONSUL_DATA_DIR', `dev-consul: ${message}`, { key: 'dataDir', value: file, cause });
}
