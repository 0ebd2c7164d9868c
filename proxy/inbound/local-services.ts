/**
 * The instances running on this host, indexed for the inbound hot path: by
 * service, and by (service, instance id). The agent's registrations (or a
 * catalog watch filtered to this host) feed `update`; tests fill it directly.
 */
import type { LocalInstance, LocalServices } from '../ports.js';

/** A replaceable in-memory LocalServices. `pick` rotates through a service's instances. */
export class LocalInstanceTable implements LocalServices {
  private byService = new Map<string, { list: LocalInstance[]; byId: Map<string, LocalInstance>; next: number }>();

  constructor(instances: Iterable<LocalInstance> = []) {
    this.update(instances);
  }

  /** Replaces the whole set (instances are kept as given: reuse the objects so caches keyed on them stay warm). */
  update(instances: Iterable<LocalInstance>): void {
    const next = new Map<string, { list: LocalInstance[]; byId: Map<string, LocalInstance>; next: number }>();
    for (const inst of instances) {
      let entry = next.get(inst.service);
      if (entry === undefined) {
        entry = { list: [], byId: new Map(), next: 0 };
        next.set(inst.service, entry);
      }
      entry.list.push(inst);
      entry.byId.set(inst.id, inst);
    }
    this.byService = next;
  }

  instance(service: string, id: string): LocalInstance | undefined {
    return this.byService.get(service)?.byId.get(id);
  }

  pick(service: string): LocalInstance | undefined {
    const entry = this.byService.get(service);
    if (entry === undefined || entry.list.length === 0) return undefined;
    const inst = entry.list[entry.next % entry.list.length];
    entry.next = (entry.next + 1) % entry.list.length;
    return inst;
  }

  /** Every instance, for metrics and debugging. */
  all(): LocalInstance[] {
    return [...this.byService.values()].flatMap((e) => e.list);
  }
}
