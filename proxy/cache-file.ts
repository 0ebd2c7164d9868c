/**
 * A last-known-good state file, the shared mechanics of the proxy's disk
 * caches (outbound `routes.json`, inbound `inbound.json`): the watches keep
 * the last good answers in memory through a Consul outage; these files keep
 * them across a restart.
 *
 * - One JSON document `{ version, savedAt, ...snapshot() }`. A file of another
 *   `version` is ignored, not misread.
 * - Written to a temporary name and renamed into place: a crash mid-write
 *   leaves the old file, never half of a new one. Mode 0600, folder 0700.
 * - Writes are coalesced (one per `debounceMs`: a rolling deploy changes the
 *   tables many times a second) and serialised (two overlapping renames could
 *   otherwise put the older snapshot last).
 * - Reading never throws: a missing file is silently empty; an unreadable or
 *   malformed one is logged and treated as empty.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../base/atomic-write.js';
import { type Logger, silentLogger } from '../base/log.js';

/** How a cache file is named in logs, versioned and snapshotted. */
export interface CacheFileOptions {
  /** For log messages, e.g. `route cache`. */
  readonly what: string;
  /** The format version written, and the only one read. */
  readonly version: number;
  /** The document's content at write time (`version` and `savedAt` are added in front). */
  readonly snapshot: () => Record<string, unknown>;
  readonly logger?: Logger | undefined;
  /** Delay that coalesces writes after `schedule()`; default 200 ms. */
  readonly debounceMs?: number | undefined;
}

/** One cache file: `read` once at start, `schedule` after each change, `flush` at shutdown. */
export class CacheFile {
  readonly path: string;
  readonly #o: CacheFileOptions;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;
  #writing: Promise<void> = Promise.resolve();

  constructor(path: string, opts: CacheFileOptions) {
    this.path = path;
    this.#o = opts;
    this.#logger = opts.logger ?? silentLogger;
  }

  /**
   * Reads the document and hands it to `parse` (which may throw on a malformed
   * one). Undefined, with a warning unless the file is simply absent, when
   * there is nothing usable. Never throws.
   */
  async read<T>(parse: (doc: Record<string, unknown>) => T): Promise<T | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.warn({ err, path: this.path }, `${this.#o.what} unreadable: starting empty`);
      return undefined;
    }
    try {
      const doc: unknown = JSON.parse(text);
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || (doc as { version?: unknown }).version !== this.#o.version) {
        throw new Error(`not a version ${this.#o.version} ${this.#o.what}`);
      }
      return parse(doc as Record<string, unknown>);
    } catch (err) {
      this.#logger.warn({ err, path: this.path }, `${this.#o.what} malformed: starting empty`);
      return undefined;
    }
  }

  /** Marks the state changed; written `debounceMs` later (one write for a burst of changes). */
  schedule(): void {
    this.#dirty = true;
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#o.debounceMs ?? 200);
    this.#timer.unref();
  }

  /** Writes now if anything changed since the last write; resolves when it is on disk (failures are logged). */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#dirty) return this.#writing;
    this.#dirty = false;
    const doc = { version: this.#o.version, savedAt: new Date().toISOString(), ...this.#o.snapshot() };
    const text = `${JSON.stringify(doc, null, 1)}\n`;
    this.#writing = this.#writing.then(() => this.#write(text));
    return this.#writing;
  }

  async #write(text: string): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      await writeFileAtomic(this.path, text, { mode: 0o600 }); // removes its temporary file on failure
    } catch (err) {
      this.#logger.warn({ err, path: this.path }, `${this.#o.what} write failed`);
    }
  }
}
