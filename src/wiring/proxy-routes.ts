/**
 * The proxy's RouteSource over discovery/ (Consul blocking-query watches with
 * last-known-good): one health watch per destination service (passing
 * instances only) and one KV watch on its split key `weft/splits/<service>`.
 * Push, not polling: a change reaches the proxy as soon as Consul answers the
 * parked query. A failed read changes nothing (discovery/watch.ts), so the
 * proxy keeps routing from what it last knew through a Consul outage.
 */
import { type DiscoveryClient, type Instance, watchKey, type WatchOptions, watchService } from '../../discovery/index.js';
import type { RouteInstance, RouteSource, Subscription } from '../../proxy/index.js';

/** KV folder of traffic splits (ARCHITECTURE.md, "Consul KV under weft/"). */
export const SPLITS_PREFIX = 'weft/splits/';

/** Maps discovery's Instance onto the proxy's RouteInstance. */
export function toRouteInstance(i: Instance): RouteInstance {
  return { id: i.id, address: i.address, port: i.port, meshPort: i.meshPort, version: i.version, weight: i.weight, healthy: i.healthy };
}

/** A RouteSource fed by Consul blocking queries through discovery/watch.ts. */
export function consulRouteSource(client: DiscoveryClient, opts: WatchOptions = {}): RouteSource {
  return {
    watchInstances(service, onValue): Subscription {
      const watch = watchService(client, service, opts);
      watch.on('change', (instances) => onValue(instances.map(toRouteInstance)));
      return { close: () => watch.close() };
    },
    watchSplit(service, onValue): Subscription {
      const watch = watchKey(client, `${SPLITS_PREFIX}${service}`, opts);
      watch.on('change', (entry) => onValue(entry?.value ?? null));
      return { close: () => watch.close() };
    },
  };
}
