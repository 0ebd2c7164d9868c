/**
 * Activation from zero (scale to zero): requests for a service that may be at
 * zero instances are held, not refused, while it has no healthy instance.
 *
 * - Which services: those the scheduler marks as able to reach zero (KV
 *   `weft/zero/<service>`, written by the leader for every group whose
 *   autoscale policy has `min: 0`); RouteSource.watchActivatable pushes the set.
 *   Any other service with no instance is refused at once (503
 *   WEFT_ERR_NO_INSTANCES), as before: a typo must not wait 30 s.
 * - Push, not poll: the first held request tells the control plane at once
 *   (Activator.activate: the wiring writes `weft/activate/<service>`, which the
 *   leader watches), again every `ACTIVATION_REPEAT_MS` while anything is held.
 * - Bounded: at most `maxHeld` requests per service (more answer 503
 *   WEFT_ERR_HOLD_QUEUE_FULL at once) for at most `maxWaitMs` each (then 503
 *   WEFT_ERR_COLD_START_TIMEOUT); a held request keeps only its buffered body
 *   (a body larger than the proxy buffers is never held).
 * - Released to the first healthy instance: held requests go on when the route
 *   gets an instance passing its checks (the health watch's push), never
 *   before; their answers carry `x-weft-cold-start: true`.
 * - Each service has its own queue: a hold never delays another service.
 */
import type { Clock } from '../../base/clock.js';

/** Answers to held requests carry this header, `true`. */
export const COLD_START_HEADER = 'x-weft-cold-start';

/** Requests held per service at most. */
export const DEFAULT_MAX_HELD = 100;

/** How long a request waits at most for the first healthy instance. */
export const DEFAULT_MAX_HOLD_WAIT_MS = 30_000;

/** While requests are held, the activation is pushed again this often (a lost write is not fatal). */
export const ACTIVATION_REPEAT_MS = 2_000;

/** Tells the control plane a request is waiting for `service` (fire and forget; the adapter logs its failures). */
export interface Activator {
  activate(service: string): void;
}

/** The hold settings. */
export interface ActivationOptions {
  readonly maxHeld: number;
  readonly maxWaitMs: number;
}

/** A held request: released when an instance is healthy. */
export interface Held {
  release(): void;
}

/** One service's held requests. */
export class HoldQueue {
  readonly #service: string;
  readonly #max: number;
  readonly #activator: Activator | undefined;
  readonly #now: Clock;
  readonly #held = new Set<Held>();
  #lastPush = Number.NEGATIVE_INFINITY;
  #repeat: NodeJS.Timeout | undefined;

  constructor(service: string, max: number, activator: Activator | undefined, now: Clock) {
    this.#service = service;
    this.#max = max;
    this.#activator = activator;
    this.#now = now;
  }

  get size(): number {
    return this.#held.size;
  }

  /** Holds `h`; false when the queue is full (answer 503 at once). */
  add(h: Held): boolean {
    if (this.#held.size >= this.#max) return false;
    this.#held.add(h);
    this.#push();
    if (this.#repeat === undefined) {
      this.#repeat = setInterval(() => {
        this.#lastPush = this.#now();
        this.#activator?.activate(this.#service);
      }, ACTIVATION_REPEAT_MS);
      this.#repeat.unref();
    }
    return true;
  }

  /** Forgets `h` (it timed out, or its client left). */
  remove(h: Held): void {
    this.#held.delete(h);
    if (this.#held.size === 0) this.#stopRepeat();
  }

  /** An instance is healthy: every held request goes on, oldest first. */
  releaseAll(): void {
    if (this.#held.size === 0) return;
    const all = [...this.#held];
    this.#held.clear();
    this.#stopRepeat();
    for (const h of all) h.release();
  }

  /** Tells the control plane without holding anything (a request that cannot be held), throttled like the holds' pushes. */
  activate(): void {
    this.#push();
  }

  #push(): void {
    const now = this.#now();
    if (now - this.#lastPush < ACTIVATION_REPEAT_MS) return;
    this.#lastPush = now;
    this.#activator?.activate(this.#service);
  }

  #stopRepeat(): void {
    if (this.#repeat !== undefined) clearInterval(this.#repeat);
    this.#repeat = undefined;
  }
}
