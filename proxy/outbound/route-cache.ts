/**
 * Routing tables on disk, so a proxy restarted while Consul is down still
 * routes (the watches keep last-known-good in memory; this keeps it across a
 * restart). One JSON file, `<dataDir>/proxy/routes.json`, written atomically
 * and coalesced by `CacheFile` (../cache-file.ts), which the inbound cache
 * shares.
 *
 * The cache is only a starting point: any answer from Consul replaces it.
 * A missing, unreadable or malformed file is logged and treated as empty.
 */
import { join } from 'node:path';
import type { Logger } from '../../base/log.js';
import { CacheFile } from '../cache-file.js';
import type { RouteInstance } from '../ports.js';

/** What is cached per service. */
export interface CachedService {
  readonly instances: readonly RouteInstance[];
  /** The raw split document, or null. */
  readonly split: string | null;
}

/** The cache file of a data directory. */
export function routeCachePath(dataDir: string): string {
  return join(dataDir, 'proxy', 'routes.json');
}

/** Loads and saves the routing cache: `{ version: 1, savedAt, services: { <service>: CachedService } }`. */
export class RouteCache {
  readonly path: string;
  readonly #file: CacheFile;
  readonly #services = new Map<string, CachedService>();

  constructor(path: string, opts: { logger?: Logger | undefined; debounceMs?: number | undefined } = {}) {
    this.path = path;
    this.#file = new CacheFile(path, {
      what: 'route cache',
      version: 1,
      logger: opts.logger,
      debounceMs: opts.debounceMs,
      snapshot: () => ({ services: Object.fromEntries(this.#services) }),
    });
  }

  /** Reads the file (at start, before any watch answers). Never throws. */
  async load(): Promise<ReadonlyMap<string, CachedService>> {
    await this.#file.read((doc) => {
      const services = doc['services'];
      if (typeof services !== 'object' || services === null) throw new Error('not a version 1 route cache');
      for (const [service, entry] of Object.entries(services)) {
        if (validEntry(entry)) this.#services.set(service, entry);
      }
    });
    return this.#services;
  }

  /** Records a service's latest tables; written to disk shortly after. */
  set(service: string, entry: CachedService): void {
    this.#services.set(service, entry);
    this.#file.schedule();
  }

  /** The cached entry of a service. */
  get(service: string): CachedService | undefined {
    return this.#services.get(service);
  }

  /** Writes now (pending debounced write included); resolves when it is on disk. */
  flush(): Promise<void> {
    return this.#file.flush();
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
