/**
 * The proxy's RouteSource over discovery/ (Consul blocking-query watches with
 * last-known-good): one health watch per destination service (passing
 * instances only) and one KV watch on its split key `weft/splits/<service>`.
 * Push, not polling: a change reaches the proxy as soon as Consul answers the
 * parked query. A failed read changes nothing (discovery/watch.ts), so the
 * proxy keeps routing from what it last knew through a Consul outage.
 *
 * A split is acted on only when the scheduler signed it for its key
 * (proxy-signed-state.ts): a refused value leaves the last verified split of
 * that service in force, or none; a deletion is taken as it is (nothing to
 * sign). When the keys change, each watch admits its last value again.
 */
import { ACTIVATE_PREFIX, activateKey, ZERO_PREFIX } from '../../base/contracts/activation.js';
import type { Logger } from '../../base/log.js';
import { type DiscoveryClient, type Instance, putJSON, watchKey, watchKeyPrefix, type WatchOptions, watchService } from '../../discovery/index.js';
import type { Activator, RouteInstance, RouteSource, Subscription } from '../../proxy/index.js';
import type { ProxySignedState } from './proxy-signed-state.js';

/** KV folder of traffic splits (ARCHITECTURE.md, "Consul KV under weft/"). */
export const SPLITS_PREFIX = 'weft/splits/';

/** Maps discovery's Instance onto the proxy's RouteInstance. */
export function toRouteInstance(i: Instance): RouteInstance {
  return { id: i.id, address: i.address, port: i.port, meshPort: i.meshPort, version: i.version, weight: i.weight, healthy: i.healthy };
}

/** A RouteSource fed by Consul blocking queries through discovery/watch.ts; splits verified against `signed`'s keys. */
export function consulRouteSource(client: DiscoveryClient, opts: WatchOptions, signed: ProxySignedState): RouteSource {
  const gate = signed.gate('split');
  return {
    watchInstances(service, onValue): Subscription {
      const watch = watchService(client, service, opts);
      watch.on('change', (instances) => onValue(instances.map(toRouteInstance)));
      return { close: () => watch.close() };
    },
    watchSplit(service, onValue): Subscription {
      const key = `${SPLITS_PREFIX}${service}`;
      const watch = watchKey(client, key, opts);
      let last: string | null | undefined;
      const admit = (raw: string | null): void => {
        last = raw;
        if (raw === null) {
          gate.forget(key);
          onValue(null);
          return;
        }
        onValue(gate.admit(key, raw).doc ?? null);
      };
      watch.on('change', (entry) => admit(entry?.value ?? null));
      const unsubscribe = signed.onChange(() => {
        if (last !== undefined) admit(last);
      });
      return {
        close: () => {
          unsubscribe();
          return watch.close();
        },
      };
    },
    watchActivatable(onValue): Subscription {
      // One watch per proxy: the few services whose policy allows zero.
      const watch = watchKeyPrefix(client, ZERO_PREFIX, opts);
      watch.on('change', (entries) => onValue(new Set(entries.map((e) => e.key.slice(ZERO_PREFIX.length)).filter((s) => s.length > 0 && !s.includes('/')))));
      return { close: () => watch.close() };
    },
  };
}

/**
 * The proxy's Activator: a held request writes `weft/activate/<service>` at once
 * (the leader's autoscaler watches the prefix and decides within its blocking
 * query's round trip). A failed write is logged; the hold queue pushes again
 * while requests wait.
 */
export function consulActivator(client: DiscoveryClient, host: string, logger: Logger, now: () => number = Date.now): Activator {
  return {
    activate(service: string): void {
      putJSON(client, activateKey(service), { host, at: new Date(now()).toISOString() }).then(
        () => logger.info({ service, key: activateKey(service) }, 'request held for a service at zero: activation requested'),
        (err: unknown) => logger.warn({ err, service, prefix: ACTIVATE_PREFIX }, 'activation request not written (retried while requests wait)'),
      );
    },
  };
}
