/**
 * LocalServices for the inbound side: the instances of this host, read from
 * Consul. One health watch (blocking query, every instance whether passing or
 * not) per service this host holds an identity for, filtered to Meta
 * `weft_host == <this host>`.
 *
 * Why per identity rather than one catalog-wide watch: inbound can only
 * terminate TLS for services with a certificate on this host, so those are
 * exactly the services it may forward to; a cluster-wide watch would wake
 * every proxy on every registration anywhere. Unhealthy local instances stay
 * forwardable: the caller's outbound already chose the instance
 * (x-weft-instance), and a failing check must not turn into a 503 here.
 *
 * Last known good: through an outage each watch keeps its last answer;
 * across a restart the inbound cache (proxy/inbound/inbound-cache.ts) does.
 * A service starts from its cached instances (when `setServices` first
 * names it and Consul has not answered for it yet); every live answer
 * replaces them and is saved; a service no longer named is forgotten.
 */
import { type BlockingWatch, type DiscoveryClient, type Instance, type WatchOptions, watchService } from '../../discovery/index.js';
import { type InboundCache, type LocalInstance, LocalInstanceTable } from '../../proxy/index.js';
import type { Logger } from '../../base/log.js';

/** Maps discovery's Instance onto the inbound's LocalInstance. */
export function toLocalInstance(i: Instance): LocalInstance {
  return { id: i.id, service: i.service, version: i.version ?? 'unknown', address: i.address, port: i.port };
}

/** The local instance table, kept current by one watch per local service. */
export class ConsulLocalServices {
  readonly table = new LocalInstanceTable();
  readonly #client: DiscoveryClient;
  readonly #host: string;
  readonly #logger: Logger;
  readonly #watchOptions: WatchOptions;
  readonly #cache: InboundCache | undefined;
  readonly #watches = new Map<string, BlockingWatch<Instance[]>>();
  readonly #byService = new Map<string, readonly LocalInstance[]>();

  constructor(client: DiscoveryClient, opts: { host: string; logger: Logger; watch?: WatchOptions | undefined; cache?: InboundCache | undefined }) {
    this.#client = client;
    this.#host = opts.host;
    this.#logger = opts.logger;
    this.#watchOptions = opts.watch ?? {};
    this.#cache = opts.cache;
  }

  /** Watches exactly `services` (the services with an identity on this host); load the cache before the first call. */
  setServices(services: readonly string[]): void {
    const wanted = new Set(services);
    for (const [service, watch] of this.#watches) {
      if (wanted.has(service)) continue;
      void watch.close();
      this.#watches.delete(service);
      this.#byService.delete(service);
      this.#cache?.deleteLocal(service);
    }
    for (const service of wanted) {
      if (this.#watches.has(service)) continue;
      const cached = this.#cache?.local(service);
      if (cached !== undefined) {
        this.#byService.set(service, cached);
        this.#logger.info({ service, instances: cached.map((i) => i.id), from: 'cache' }, 'local instances');
      }
      const watch = watchService(this.#client, service, { ...this.#watchOptions, passingOnly: false });
      watch.on('change', (instances) => {
        const local = instances.filter((i) => i.host === this.#host).map(toLocalInstance);
        this.#byService.set(service, local);
        this.#publish();
        this.#cache?.setLocal(service, local);
        this.#logger.info({ service, instances: local.map((i) => i.id), from: 'consul' }, 'local instances');
      });
      this.#watches.set(service, watch);
    }
    this.#publish();
  }

  /** Every local instance known now. */
  all(): LocalInstance[] {
    return this.table.all();
  }

  /** Replaces the table with the union of every service's instances (kept as objects, so caches stay warm). */
  #publish(): void {
    this.table.update([...this.#byService.values()].flat());
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    await Promise.all([...this.#watches.values()].map((w) => w.close()));
    this.#watches.clear();
  }
}
