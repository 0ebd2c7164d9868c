/**
 * The outbound routing table: per destination service, the instances and the
 * split pushed by the RouteSource, and the balancing and resilience state
 * built on them (ServicePicker, OutlierDetector, RetryPolicy with its budget).
 *
 * Services are subscribed on first use (an app calls `backend`) and for every
 * service in the disk cache at start, so a restarted proxy routes from the
 * cache before Consul answers, and keeps routing from it while Consul is down.
 * Only healthy instances with a pickable weight are routed to.
 */
import type { Logger } from '../../base/log.js';
import type { Endpoint } from '../balance/picker.js';
import { ServicePicker } from '../balance/service-picker.js';
import { parseSplit } from '../balance/split.js';
import type { RouteInstance, RouteSource, Subscription } from '../ports.js';
import { OutlierDetector } from '../resilience/outlier.js';
import { RetryBudget } from '../resilience/retry-budget.js';
import { RetryPolicy } from '../resilience/retry-policy.js';
import { type Activator, HoldQueue } from './activation.js';
import type { OutboundOptions } from './options.js';
import type { RouteCache } from './route-cache.js';

/** What the pickers hold: the instance, under the Endpoint contract. */
export interface RouteEndpoint extends Endpoint {
  readonly instance: RouteInstance;
}

/** One destination service's routing and resilience state. */
export class ServiceRoute {
  readonly service: string;
  readonly picker: ServicePicker<RouteEndpoint>;
  readonly outlier: OutlierDetector;
  readonly retry: RetryPolicy;
  /** Requests waiting for a first healthy instance (activation from zero). */
  readonly held: HoldQueue;
  /** The scheduler marked this service as able to reach zero: hold its requests while it has no healthy instance. */
  activatable = false;
  #healthy = 0;
  #instances: readonly RouteInstance[] = [];
  #splitText: string | null = null;
  #instancesKnown = false;
  #splitKnown = false;
  #waiters: Array<() => void> = [];
  readonly #subs: Subscription[] = [];
  readonly #logger: Logger;

  constructor(service: string, opts: OutboundOptions, activator?: Activator) {
    this.service = service;
    this.#logger = opts.logger;
    this.held = new HoldQueue(service, opts.activation.maxHeld, activator, opts.now);
    this.outlier = new OutlierDetector([], { ...opts.outlier, now: opts.now });
    this.picker = new ServicePicker<RouteEndpoint>([], {
      algorithm: opts.algorithm,
      now: opts.now,
      random: opts.random,
      available: this.outlier.available,
    });
    this.retry = new RetryPolicy({
      budget: new RetryBudget({ ...opts.retryBudget, now: opts.now }),
      random: opts.random,
      maxRetries: opts.maxRetries,
      backoff: opts.backoff,
    });
  }

  /**
   * True once instances and split have both been answered (by Consul or the
   * cache), even if there are no instances: a first request must not ignore
   * a split only because its watch answered a moment after the instances'.
   */
  get known(): boolean {
    return this.#instancesKnown && this.#splitKnown;
  }

  /** Instances passing their checks, as last pushed. */
  get healthyCount(): number {
    return this.#healthy;
  }

  /** The instances in force (healthy or not), as last pushed. */
  get instances(): readonly RouteInstance[] {
    return this.#instances;
  }

  /** The raw split document in force, or null. */
  get splitText(): string | null {
    return this.#splitText;
  }

  /** Replaces the instance set (keeps per-id picker and outlier state). */
  setInstances(instances: readonly RouteInstance[]): void {
    this.#instances = instances;
    const endpoints: RouteEndpoint[] = instances
      .filter((i) => i.healthy)
      .map((i) => ({ id: i.id, weight: i.weight, version: i.version, instance: i }));
    this.picker.update(endpoints);
    this.outlier.update(endpoints.map((e) => e.id));
    this.#instancesKnown = true;
    this.#healthy = endpoints.length;
    this.#wakeIfKnown();
    // The first healthy instance of a service at zero: the held requests go on.
    if (endpoints.length > 0) this.held.releaseAll();
  }

  /** Applies a split document; an invalid one is logged and the last good one kept. */
  setSplit(text: string | null): void {
    this.#splitKnown = true;
    try {
      const split = text === null ? undefined : parseSplit(this.service, text);
      this.#splitText = text;
      this.picker.setSplit(split);
    } catch (err) {
      this.#logger.warn({ err, service: this.service }, 'invalid split ignored: keeping the last good one');
    }
    this.#wakeIfKnown();
  }

  #wakeIfKnown(): void {
    if (this.known) for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Resolves once instances are known, or after `ms` (whichever first). */
  waitKnown(ms: number): Promise<void> {
    if (this.known || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#waiters.push(done);
    });
  }

  /** Keeps a subscription to close with the route. */
  own(sub: Subscription): void {
    this.#subs.push(sub);
  }

  /** Closes the subscriptions. */
  async close(): Promise<void> {
    await Promise.all(this.#subs.splice(0).map((s) => s.close()));
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** Every destination service the proxy has routed to (or found in its cache). */
export class RouteTable {
  readonly #routes = new Map<string, ServiceRoute>();
  readonly #source: RouteSource;
  readonly #options: OutboundOptions;
  readonly #cache: RouteCache | undefined;
  readonly #activator: Activator | undefined;
  #activatable: ReadonlySet<string> = new Set();
  #activatableSub: Subscription | undefined;
  #closed = false;

  constructor(source: RouteSource, options: OutboundOptions, cache?: RouteCache, activator?: Activator) {
    this.#source = source;
    this.#options = options;
    this.#cache = cache;
    this.#activator = activator;
  }

  /** Loads the disk cache and subscribes every service in it, and the activatable set. Call once before serving. */
  async start(): Promise<void> {
    this.#activatableSub = this.#source.watchActivatable?.((services) => {
      this.#activatable = services;
      for (const route of this.#routes.values()) route.activatable = services.has(route.service);
    });
    if (this.#cache === undefined) return;
    const cached = await this.#cache.load();
    for (const service of cached.keys()) this.get(service);
  }

  /** The route of `service`, subscribing to it on first use. */
  get(service: string): ServiceRoute {
    let route = this.#routes.get(service);
    if (route !== undefined) return route;
    route = new ServiceRoute(service, this.#options, this.#activator);
    route.activatable = this.#activatable.has(service);
    this.#routes.set(service, route);
    const cached = this.#cache?.get(service);
    if (cached !== undefined) {
      route.setSplit(cached.split);
      route.setInstances(cached.instances);
    }
    if (!this.#closed) this.#subscribe(route);
    return route;
  }

  /** Services with a route now. */
  services(): string[] {
    return [...this.#routes.keys()].sort();
  }

  /** Closes every subscription and writes the cache a last time. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#activatableSub?.close();
    await Promise.all([...this.#routes.values()].map((r) => r.close()));
    await this.#cache?.flush();
  }

  #subscribe(route: ServiceRoute): void {
    const save = (): void => {
      this.#cache?.set(route.service, { instances: route.instances, split: route.splitText });
    };
    // The split first: a first instances answer then lands on the right split.
    route.own(
      this.#source.watchSplit(route.service, (text) => {
        route.setSplit(text);
        if (route.known) save();
      }),
    );
    route.own(
      this.#source.watchInstances(route.service, (instances) => {
        route.setInstances(instances);
        save();
      }),
    );
  }
}
