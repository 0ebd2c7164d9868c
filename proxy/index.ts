/**
 * The data plane: inbound and outbound proxies, balancing and splits, intentions, metrics. The process is assembled in src/wiring/proxy-process.ts.
 *
 * The public surface of proxy/: other modules and the application import only
 * this file (test/structure/layers.test.ts enforces it); everything else in
 * the folder is internal.
 */
export { ALGORITHMS, DEFAULT_ALGORITHM } from './balance/create.js';
export { SPLIT_KV_PREFIX, splitKey, validateSplit } from './balance/split.js';
export { checkParserInternals } from './h1/llhttp.js';
export { DEFAULT_BODY_IDLE_TIMEOUT_MS, DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_HEAD_TIMEOUT_MS, DEFAULT_MAX_CONNECTIONS } from './http/server-limits.js';
export { InboundCache, inboundCachePath } from './inbound/inbound-cache.js';
export { INTENTIONS_PREFIX, KvIntentions, parseIntentionDocument, parseIntentionKey } from './inbound/intentions.js';
export type { IntentionEntry } from './inbound/intentions.js';
export { LocalInstanceTable } from './inbound/local-services.js';
export { DEFAULT_INBOUND_PORT } from './inbound/options.js';
export { collectAllGarbage, InboundProxy } from './inbound/server.js';
export { ProxyMetrics } from './metrics.js';
export { COLD_START_HEADER, DEFAULT_MAX_HELD, DEFAULT_MAX_HOLD_WAIT_MS } from './outbound/activation.js';
export type { Activator } from './outbound/activation.js';
export { DEFAULT_OUTBOUND_HOST, DEFAULT_SHUTDOWN_GRACE_MS } from './outbound/options.js';
export type { OutboundListener } from './outbound/options.js';
export { OutboundProxy } from './outbound/server.js';
export type { InboundTls, LocalInstance, OutboundTls, RouteInstance, RouteSource, Subscription } from './ports.js';
export { DEFAULT_REQUEST_TIMEOUT_MS } from './resilience/deadline.js';
