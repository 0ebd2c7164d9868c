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
 *
 * Every entry passes the signature gate first (proxy-signed-state.ts): one the
 * scheduler did not sign for its key is replaced by the last verified document
 * of that key, or, without one, denies its pair. The cache keeps the values as
 * they were in KV (signed), so they are verified again when restored; a change
 * of keys admits the last entries again.
 */
import { type DiscoveryClient, watchKeyPrefix, type WatchOptions } from '../../discovery/index.js';
import { type InboundCache, type IntentionEntry, INTENTIONS_PREFIX, KvIntentions, type Subscription } from '../../proxy/index.js';
import type { Logger } from '../../base/log.js';
import type { ProxySignedState } from './proxy-signed-state.js';

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
  opts: { defaultAction: 'allow' | 'deny'; logger: Logger; signed: ProxySignedState; watch?: WatchOptions | undefined; cache?: InboundCache | undefined },
): WatchedIntentions {
  const { logger, cache } = opts;
  const intentions = new KvIntentions({ defaultAction: opts.defaultAction });
  const gate = opts.signed.gate('intention');
  let last: { entries: readonly IntentionEntry[]; from: 'consul' | 'cache' } | undefined;
  const apply = (entries: readonly IntentionEntry[], from: 'consul' | 'cache'): void => {
    last = { entries, from };
    const admitted: IntentionEntry[] = [];
    for (const e of entries) {
      if (e.key.endsWith('/') && (e.value === null || e.value === '')) continue; // a folder placeholder
      const a = gate.admit(e.key, e.value);
      admitted.push(a.doc !== undefined ? { key: e.key, value: a.doc } : { key: e.key, value: null, refused: `${a.refused?.reason}: ${a.refused?.detail}` });
    }
    gate.retain(entries.map((e) => e.key));
    const refused = intentions.update(admitted);
    // Signature refusals were logged by the gate, once per value.
    for (const err of refused) if (err.code !== 'WEFT_ERR_SIGNED_STATE') logger.warn({ code: err.code, key: err.key, err: err.message }, 'intention refused');
    logger.info({ entries: entries.length, refused: refused.length, from }, 'intentions loaded');
  };
  const unsubscribe = opts.signed.onChange(() => {
    if (last !== undefined) apply(last.entries, last.from);
  });
  const watch = watchKeyPrefix(client, INTENTIONS_PREFIX, opts.watch ?? {});
  watch.on('change', (entries) => {
    apply(entries, 'consul');
    cache?.setIntentions(entries);
  });
  return {
    intentions,
    subscription: {
      close: () => {
        unsubscribe();
        return watch.close();
      },
    },
    restore: () => {
      const cached = cache?.intentions;
      if (intentions.loaded || cached === undefined) return false;
      apply(cached, 'cache');
      return true;
    },
  };
}
