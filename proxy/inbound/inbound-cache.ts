/**
 * The inbound side's last good state on disk, so a proxy restarted while
 * Consul is down still authorizes and forwards (the watches keep
 * last-known-good in memory; this keeps it across a restart, as
 * ../outbound/route-cache.ts does for routes). One JSON file,
 * `<dataDir>/proxy/inbound.json`, written atomically and coalesced by
 * `CacheFile` (../cache-file.ts):
 *
 *   { "version": 1, "savedAt": "...",
 *     "intentions": [{ "key": "weft/intentions/a/b", "value": "{\"action\":\"deny\"}" }, ...] | null,
 *     "local": { "<service>": [LocalInstance, ...] } }
 *
 * Intentions are kept as the KV entries last received, not as decisions: a
 * restored table is built by the same code as a live one, so an invalid
 * document still denies its pair, and the configured default action applies.
 * `null` means none was ever received: KvIntentions stays "not loaded" and
 * denies everything. A malformed intentions section is dropped whole (fail
 * closed: a pair that cannot be read cannot be denied, so nothing is allowed
 * until Consul answers); a malformed service in `local` is skipped alone.
 *
 * The cache is only a starting point: any answer from Consul replaces it.
 */
import { join } from 'node:path';
import { type Logger, silentLogger } from '../../base/log.js';
import { CacheFile } from '../cache-file.js';
import type { LocalInstance } from '../ports.js';
import type { IntentionEntry } from './intentions.js';

/** The cache file of a data directory. */
export function inboundCachePath(dataDir: string): string {
  return join(dataDir, 'proxy', 'inbound.json');
}

/** Loads and saves the inbound cache. */
export class InboundCache {
  readonly path: string;
  readonly #file: CacheFile;
  readonly #logger: Logger;
  #intentions: readonly IntentionEntry[] | null = null;
  readonly #local = new Map<string, readonly LocalInstance[]>();
  #savedAt: string | undefined;

  constructor(path: string, opts: { logger?: Logger | undefined; debounceMs?: number | undefined } = {}) {
    this.path = path;
    this.#logger = opts.logger ?? silentLogger;
    this.#file = new CacheFile(path, {
      what: 'inbound cache',
      version: 1,
      logger: opts.logger,
      debounceMs: opts.debounceMs,
      snapshot: () => ({ intentions: this.#intentions, local: Object.fromEntries(this.#local) }),
    });
  }

  /** Reads the file (at start, before the inbound listener accepts). Never throws; true when a file was used. */
  async load(): Promise<boolean> {
    const loaded = await this.#file.read((doc) => {
      const intentions = doc['intentions'];
      const local = doc['local'];
      if (typeof local !== 'object' || local === null || Array.isArray(local)) throw new Error('not a version 1 inbound cache: local');
      return { intentions, local: local as Record<string, unknown>, savedAt: typeof doc['savedAt'] === 'string' ? doc['savedAt'] : undefined };
    });
    if (loaded === undefined) return false;
    if (validIntentions(loaded.intentions)) this.#intentions ??= loaded.intentions;
    else if (loaded.intentions !== null) this.#logger.warn({ path: this.path }, 'inbound cache: intentions malformed, ignored (denying until Consul answers)');
    for (const [service, instances] of Object.entries(loaded.local)) {
      if (!this.#local.has(service) && validInstances(service, instances)) this.#local.set(service, instances);
    }
    this.#savedAt = loaded.savedAt;
    return true;
  }

  /** When the loaded file was written (ISO 8601), for logs. */
  get savedAt(): string | undefined {
    return this.#savedAt;
  }

  /** The intentions entries last received; undefined when none ever were. */
  get intentions(): readonly IntentionEntry[] | undefined {
    return this.#intentions ?? undefined;
  }

  /** Records the entries of a live answer (only key and value are kept). */
  setIntentions(entries: readonly IntentionEntry[]): void {
    this.#intentions = entries.map(({ key, value }) => ({ key, value }));
    this.#file.schedule();
  }

  /** The instances of `service` on this host last received; undefined when never. */
  local(service: string): readonly LocalInstance[] | undefined {
    return this.#local.get(service);
  }

  /** Every service with cached instances. */
  localServices(): string[] {
    return [...this.#local.keys()];
  }

  /** Records a live answer for `service` (an empty list included: Consul said none runs here). */
  setLocal(service: string, instances: readonly LocalInstance[]): void {
    this.#local.set(service, instances);
    this.#file.schedule();
  }

  /** Forgets `service` (no longer served on this host). */
  deleteLocal(service: string): void {
    if (this.#local.delete(service)) this.#file.schedule();
  }

  /** Writes now (pending debounced write included); resolves when it is on disk. */
  flush(): Promise<void> {
    return this.#file.flush();
  }
}

function validIntentions(value: unknown): value is IntentionEntry[] {
  return (
    Array.isArray(value) &&
    value.every((e: unknown) => {
      const r = e as Partial<IntentionEntry> | null;
      return r !== null && typeof r === 'object' && typeof r.key === 'string' && (r.value === null || typeof r.value === 'string');
    })
  );
}

function validInstances(service: string, value: unknown): value is LocalInstance[] {
  return (
    Array.isArray(value) &&
    value.every((i: unknown) => {
      const r = i as Partial<LocalInstance> | null;
      return (
        r !== null &&
        typeof r === 'object' &&
        typeof r.id === 'string' &&
        r.service === service &&
        typeof r.version === 'string' &&
        typeof r.address === 'string' &&
        Number.isInteger(r.port) &&
        (r.port as number) > 0 &&
        (r.port as number) < 65536
      );
    })
  );
}
