/**
 * Smooth weighted round robin, as nginx does it (ngx_http_upstream_round_robin.c).
 *
 * Each pick, every endpoint's `current` grows by its effective weight; the
 * largest wins and pays back the total. Weights 5,1,1 give a a b a c a a: the
 * heavy endpoint is spread out instead of served in a burst, and over any
 * window of sum(weights) picks each endpoint gets exactly its weight.
 *
 * Failures lower an endpoint's effective weight (nginx with max_fails=1: to 0),
 * and it climbs back by one per pick, so a flaky instance sheds load at once
 * and recovers gradually. Cost is O(n) per pick; fine for the instance counts
 * of one service (see bench/proxy/pickers.ts).
 */
import type { Availability, AttemptResult, Endpoint, Picker } from './picker.js';
import { uniqueById } from './picker.js';

/** Options of a SWRR picker. */
export interface SwrrOptions<E extends Endpoint = Endpoint> {
  /** Hides endpoints without forgetting their position (outlier ejection). */
  readonly available?: Availability<E> | undefined;
  /**
   * When every weighted endpoint is hidden, pick among them anyway (Envoy's
   * panic mode): a possibly-bad host beats a certain 503. Default true.
   */
  readonly panic?: boolean | undefined;
}

interface Slot<E> {
  endpoint: E;
  weight: number;
  /** The weight in use now: below `weight` after failures, recovering by 1 per pick. */
  effective: number;
  current: number;
}

/** Smooth weighted round robin over one service's endpoints. */
export class SwrrPicker<E extends Endpoint = Endpoint> implements Picker<E> {
  #slots: Slot<E>[] = [];
  #byId = new Map<string, Slot<E>>();
  readonly #available: Availability<E> | undefined;
  readonly #panic: boolean;

  constructor(endpoints: readonly E[] = [], options: SwrrOptions<E> = {}) {
    this.#available = options.available;
    this.#panic = options.panic ?? true;
    this.update(endpoints);
  }

  pick(): E | undefined {
    if (this.#available === undefined) return this.#round(undefined)?.endpoint;
    const chosen = this.#round(this.#available);
    if (chosen !== undefined || !this.#panic) return chosen?.endpoint;
    return this.#round(undefined)?.endpoint;
  }

  /** One nginx round over the endpoints that count; mutates only when something is chosen. */
  #round(available: Availability<E> | undefined): Slot<E> | undefined {
    let total = 0;
    let best: Slot<E> | undefined;
    for (const slot of this.#slots) {
      if (slot.weight === 0) continue;
      if (available !== undefined && !available(slot.endpoint)) continue;
      slot.current += slot.effective;
      total += slot.effective;
      if (slot.effective < slot.weight) slot.effective++;
      if (best === undefined || slot.current > best.current) best = slot;
    }
    if (best !== undefined) best.current -= total;
    return best;
  }

  update(endpoints: readonly E[]): void {
    const next = new Map<string, Slot<E>>();
    const slots: Slot<E>[] = [];
    for (const endpoint of uniqueById(endpoints)) {
      const old = this.#byId.get(endpoint.id);
      const weight = endpoint.weight;
      // A staying endpoint keeps its place in the rotation and any failure
      // penalty (the deficit below its weight), so a catalog refresh does not
      // restart the sequence or forgive a flaky host.
      const effective = old === undefined ? weight : Math.max(0, weight - (old.weight - old.effective));
      const slot: Slot<E> = { endpoint, weight, effective, current: old?.current ?? 0 };
      next.set(endpoint.id, slot);
      slots.push(slot);
    }
    this.#slots = slots;
    this.#byId = next;
  }

  onStart(_endpoint: E): void {
    // Round robin does not look at load in flight.
  }

  onEnd(endpoint: E, result: AttemptResult): void {
    if (result.ok) return;
    const slot = this.#byId.get(endpoint.id);
    if (slot !== undefined) slot.effective = 0;
  }

  /** Effective weight of an endpoint (for metrics and tests); undefined when unknown. */
  effectiveWeight(id: string): number | undefined {
    return this.#byId.get(id)?.effective;
  }
}
