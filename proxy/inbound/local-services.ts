/**
 * The instances running on this host, indexed for the inbound hot path: by
 * service, and by (service, instance id). The agent's registrations (or a
 * catalog watch filtered to this host) feed `update`; tests fill it directly.
 *
 * Leaving instances linger. When the agent stops an instance it deregisters
 * it first and waits (`agent.drainDelayMs`) before stopping it, so that every
 * proxy stops routing to it. This host's proxy sees the deregistration at
 * about the same moment as the callers' proxies, and a caller's proxy may
 * still send a request addressed to it (`x-weft-instance`) for a few
 * milliseconds. So an instance that leaves the set stays reachable by its id
 * for `lingerMs` (it is still running, draining), but `pick` no longer
 * chooses it. Without this, a scale-down under load failed requests with 503
 * WEFT_ERR_LOCAL_INSTANCE_MISSING (test/integration/scale-to-zero.test.ts).
 */
import type { Clock } from '../../base/clock.js';
import type { LocalInstance, LocalServices } from '../ports.js';

/** How long an instance that left the set stays reachable by id: above the agent's drain delay (1 s by default). */
export const DEFAULT_LEAVING_LINGER_MS = 10_000;

interface ServiceEntry {
  list: LocalInstance[];
  byId: Map<string, LocalInstance>;
  next: number;
}

/** A replaceable in-memory LocalServices. `pick` rotates through a service's instances. */
export class LocalInstanceTable implements LocalServices {
  private byService = new Map<string, ServiceEntry>();
  /** Instances that left the set, by `service\0id`, reachable by id until `until`. */
  readonly #leaving = new Map<string, { inst: LocalInstance; until: number }>();
  readonly #lingerMs: number;
  readonly #now: Clock;

  constructor(instances: Iterable<LocalInstance> = [], opts: { lingerMs?: number; now?: Clock } = {}) {
    this.#lingerMs = opts.lingerMs ?? DEFAULT_LEAVING_LINGER_MS;
    this.#now = opts.now ?? Date.now;
    this.update(instances);
  }

  /** Replaces the whole set (instances are kept as given: reuse the objects so caches keyed on them stay warm). */
  update(instances: Iterable<LocalInstance>): void {
    const next = new Map<string, ServiceEntry>();
    for (const inst of instances) {
      let entry = next.get(inst.service);
      if (entry === undefined) {
        entry = { list: [], byId: new Map(), next: 0 };
        next.set(inst.service, entry);
      }
      entry.list.push(inst);
      entry.byId.set(inst.id, inst);
      this.#leaving.delete(`${inst.service}\0${inst.id}`);
    }
    const now = this.#now();
    for (const [key, l] of this.#leaving) if (l.until <= now) this.#leaving.delete(key);
    if (this.#lingerMs > 0) {
      for (const [service, entry] of this.byService) {
        for (const inst of entry.list) if (next.get(service)?.byId.get(inst.id) === undefined) this.#leaving.set(`${service}\0${inst.id}`, { inst, until: now + this.#lingerMs });
      }
    }
    this.byService = next;
  }

  instance(service: string, id: string): LocalInstance | undefined {
    const inst = this.byService.get(service)?.byId.get(id);
    if (inst !== undefined || this.#leaving.size === 0) return inst;
    const key = `${service}\0${id}`;
    const l = this.#leaving.get(key);
    if (l === undefined) return undefined;
    if (l.until > this.#now()) return l.inst;
    this.#leaving.delete(key);
    return undefined;
  }

  pick(service: string): LocalInstance | undefined {
    const entry = this.byService.get(service);
    if (entry === undefined || entry.list.length === 0) return undefined;
    const inst = entry.list[entry.next % entry.list.length];
    entry.next = (entry.next + 1) % entry.list.length;
    return inst;
  }

  /** Every instance in the set (leaving ones excluded), for metrics and debugging. */
  all(): LocalInstance[] {
    return [...this.byService.values()].flatMap((e) => e.list);
  }
}
