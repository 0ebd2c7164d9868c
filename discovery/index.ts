/**
 * weft's Consul client: connection, KV with CAS and fences, session locks, registration with the Meta contract, blocking watches. The embedded agent has its own surface, discovery/dev-agent/index.ts.
 *
 * The public surface of discovery/: other modules and the application import only
 * this file (test/structure/layers.test.ts enforces it); everything else in
 * the folder is internal.
 */
export { createDiscoveryClient, parseConsulAddress } from './client.js';
export type { DiscoveryClient } from './client.js';
export { KvChangeReader } from './kv-changes.js';
export type { KvChange, KvChanges } from './kv-changes.js';
export { deleteKey, fencedTxn, getEntry, getJSON, list, listEntries, putJSON, update } from './kv.js';
export type { Fence, KvEntry, TxnOp } from './kv.js';
export { LEADER_KEY, SessionLock } from './lock.js';
export { buildServiceRegistration, deregisterInstance, registerInstance, serviceId } from './registry.js';
export type { Instance } from './registry.js';
export { BlockingWatch, watchKey, watchKeyPrefix, watchService } from './watch.js';
export type { WatchOptions } from './watch.js';
