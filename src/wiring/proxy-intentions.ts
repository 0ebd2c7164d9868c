/**
 * Intentions for the inbound side: discovery's `watchKeyPrefix` on
 * `weft/intentions/` (a blocking query: a new deny is pushed, and applies to
 * the next request, keep-alive connections included) feeding the proxy's
 * KvIntentions. Through an outage the watch keeps the last good entries;
 * across a restart the inbound cache (proxy/inbound/inbound-cache.ts) does:
 * `restore()` applies the cached entries unless Consul already answered, and
 * every live answer replaces them and is saved. With neither (first start,
 * Consul down) every call is denied: KvIntentions cannot know yet whether a
 * deny exists.
 */
import { type DiscoveryClient, watchKeyPrefix, type WatchOptions } from '../../discovery/index.js';
import { type InboundCache, type IntentionEntry, INTENTIONS_PREFIX, KvIntentions, type Subscription } from '../../proxy/index.js';
import type { Logger } from '../../base/log.js';

/** A live IntentionSource and its watch. */
export interface WatchedIntentions {
  readonly intentions: KvIntentions;
  readonly subscription: Subscription;
  /** Applies the cache's entries if Consul has not answered yet (call once, after `cache.load()`); true if applied. */
  restore(): boolean;
}

/** Starts the intentions watch. Refused documents are logged (they already deny their pair). */
export function watchIntentions(
  client: DiscoveryClient,
  opts: { defaultAction: 'allow' | 'deny'; logger: Logger; watch?: WatchOptions | undefined; cache?: InboundCache | undefined },
): WatchedIntentions {
  const { logger, cache } = opts;
  const intentions = new KvIntentions({ defaultAction: opts.defaultAction });
  const apply = (entries: readonly IntentionEntry[], from: 'consul' | 'cache'): void => {
    const refused = intentions.update(entries);
    for (const err of refused) logger.warn({ code: err.code, key: err.key, err: err.message }, 'intention refused');
    logger.info({ entries: entries.length, refused: refused.length, from }, 'intentions loaded');
  };
  const watch = watchKeyPrefix(client, INTENTIONS_PREFIX, opts.watch ?? {});
  watch.on('change', (entries) => {
    apply(entries, 'consul');
    cache?.setIntentions(entries);
  });
  return {
    intentions,
    subscription: { close: () => watch.close() },
    restore: () => {
      const cached = cache?.intentions;
      if (intentions.loaded || cached === undefined) return false;
      apply(cached, 'cache');
      return true;
    },
  };
}
