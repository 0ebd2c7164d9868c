/**
 * Routing tables on disk, so a proxy restarted while Consul is down still
 * routes (the watches keep last-known-good in memory; this keeps it across a
 * restart). One JSON file, `<dataDir>/proxy/routes.json`, written to a
 * temporary name and renamed into place: a crash mid-write leaves the old
 * file, never half of a new one. Writes are coalesced (one per `debounceMs`)
 * because a rolling deploy changes the tables many times a second.
 *
 * The cache is only a starting point: any answer from Consul replaces it.
 * A missing, unreadable or malformed file is logged and treated as empty.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, silentLogger } from '../../src/log.js';
import type { RouteInstance } from '../ports.js';

/** What is cached per service. */
export interface CachedService {
  readonly instances: readonly RouteInstance[];
  /** The raw split document, or null. */
  readonly split: string | null;
}

/** The file's format. `version` lets a later format refuse an old file instead of misreading it. */
interface CacheFile {
  readonly version: 1;
  readonly savedAt: string;
  readonly services: Record<string, CachedService>;
}

/** The cache file of a data directory. */
export function routeCachePath(dataDir: string): string {
  return join(dataDir, 'proxy', 'routes.json');
}

/** Loads and saves the routing cache. */
export class RouteCache {
  readonly path: string;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  #services = new Map<string, CachedService>();
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #seq = 0;

  constructor(path: string, opts: { logger?: Logger | undefined; debounceMs?: number | undefined } = {}) {
    this.path = path;
    this.#logger = opts.logger ?? silentLogger;
    this.#debounceMs = opts.debounceMs ?? 200;
  }

  /** Reads the file (at start, before any watch answers). Never throws. */
  async load(): Promise<ReadonlyMap<string, CachedService>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#logger.warn({ err, path: this.path }, 'route cache unreadable: starting empty');
      return this.#services;
    }
    try {
      const doc = JSON.parse(text) as Partial<CacheFile>;
      if (doc.version !== 1 || typeof doc.services !== 'object' || doc.services === null) throw new Error('not a version 1 route cache');
      for (const [service, entry] of Object.entries(doc.services)) {
        if (validEntry(entry)) this.#services.set(service, entry);
      }
    } catch (err) {
      this.#logger.warn({ err, path: this.path }, 'route cache malformed: starting empty');
    }
    return this.#services;
  }

  /** Records a service's latest tables; written to disk shortly after. */
  set(service: string, entry: CachedService): void {
    this.#services.set(service, entry);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#debounceMs);
    this.#timer.unref();
  }

  /** The cached entry of a service. */
  get(service: string): CachedService | undefined {
    return this.#services.get(service);
  }

  /** Writes now (pending debounced write included); resolves when it is on disk. */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const doc: CacheFile = { version: 1, savedAt: new Date().toISOString(), services: Object.fromEntries(this.#services) };
    const text = `${JSON.stringify(doc, null, 1)}\n`;
    // Serialised: two overlapping renames could otherwise put the older snapshot last.
    this.#writing = this.#writing.then(() => this.#write(text));
    return this.#writing;
  }

  async #write(text: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${++this.#seq}.tmp`;
    try {
      await mkdir(join(this.path, '..'), { recursive: true, mode: 0o700 });
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.path);
    } catch (err) {
      this.#logger.warn({ err, path: this.path }, 'route cache write failed');
    }
  }
}

function validEntry(entry: unknown): entry is CachedService {
  if (typeof entry !== 'object' || entry === null) return false;
  const e = entry as { instances?: unknown; split?: unknown };
  if (!Array.isArray(e.instances) || !(e.split === null || typeof e.split === 'string')) return false;
  return e.instances.every((i: unknown) => {
    const r = i as Partial<RouteInstance> | null;
    return (
      r !== null &&
      typeof r === 'object' &&
      typeof r.id === 'string' &&
      typeof r.address === 'string' &&
      typeof r.port === 'number' &&
      typeof r.weight === 'number' &&
      (r.meshPort === undefined || typeof r.meshPort === 'number')
    );
  });
}
