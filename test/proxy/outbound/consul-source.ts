/**
 * The RouteSource adapter over discovery/ (blocking watches with
 * last-known-good), as the `weft proxy` wiring in src/ will build it: one
 * health watch per service (passing instances only) and one KV watch on the
 * service's split key. (Not a *.test.ts file: tap skips it.)
 */
import type { DiscoveryClient } from '../../../discovery/client.js';
import type { Instance } from '../../../discovery/registry.js';
import { watchKey, watchService, type WatchOptions } from '../../../discovery/watch.js';
import type { RouteInstance, RouteSource, Subscription } from '../../../proxy/ports.js';

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
      const watch = watchKey(client, `weft/splits/${service}`, opts);
      watch.on('change', (entry) => onValue(entry?.value ?? null));
      return { close: () => watch.close() };
    },
  };
}
