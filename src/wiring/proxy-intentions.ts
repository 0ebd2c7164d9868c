/**
 * Intentions for the inbound side: discovery's `watchKeyPrefix` on
 * `weft/intentions/` (a blocking query: a new deny is pushed, and applies to
 * the next request, keep-alive connections included) feeding the proxy's
 * KvIntentions. Until the first answer every call is denied (KvIntentions
 * cannot know yet whether a deny exists); through an outage the watch keeps
 * the last good entries.
 */
import type { DiscoveryClient } from '../../discovery/client.js';
import { type WatchOptions, watchKeyPrefix } from '../../discovery/watch.js';
import { INTENTIONS_PREFIX, KvIntentions } from '../../proxy/inbound/intentions.js';
import type { Subscription } from '../../proxy/ports.js';
import type { Logger } from '../log.js';

/** A live IntentionSource and its watch. */
export interface WatchedIntentions {
  readonly intentions: KvIntentions;
  readonly subscription: Subscription;
}

/** Starts the intentions watch. Refused documents are logged (they already deny their pair). */
export function watchIntentions(
  client: DiscoveryClient,
  opts: { defaultAction: 'allow' | 'deny'; logger: Logger; watch?: WatchOptions | undefined },
): WatchedIntentions {
  const intentions = new KvIntentions({ defaultAction: opts.defaultAction });
  const watch = watchKeyPrefix(client, INTENTIONS_PREFIX, opts.watch ?? {});
  watch.on('change', (entries) => {
    const refused = intentions.update(entries);
    for (const err of refused) opts.logger.warn({ code: err.code, key: err.key, err: err.message }, 'intention refused');
    opts.logger.info({ entries: entries.length, refused: refused.length }, 'intentions loaded');
  });
  return { intentions, subscription: { close: () => watch.close() } };
}
