/**
 * Scale to zero in KV (the autoscaler in the scheduler, the hold queue in the
 * proxies: proxy/outbound/activation.ts, src/wiring/scheduler-autoscaler.ts).
 *
 *   weft/zero/<service>      the leader: this service's autoscale policy allows 0 instances
 *                            (value: `{"job","group"}`); proxies hold its requests while it has
 *                            no healthy instance. Removed when no such policy remains.
 *   weft/activate/<service>  a caller's proxy: a request is held for this service (value:
 *                            `{"host","at"}`); the leader decides at once and deletes the key.
 */

/** Services whose policy allows zero instances. */
export const ZERO_PREFIX = 'weft/zero/';
/** A proxy holds a request for the service. */
export const ACTIVATE_PREFIX = 'weft/activate/';

export const zeroKey = (service: string): string => ZERO_PREFIX + service;
export const activateKey = (service: string): string => ACTIVATE_PREFIX + service;
