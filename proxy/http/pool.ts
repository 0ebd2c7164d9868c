/**
 * undici's Pool class for both stacks' upstream legs. Loaded on its own:
 * the package index also loads fetch, WebSocket, the cache store and more,
 * ~9 MB of RSS a proxy has no use for. undici is pinned exactly in
 * package.json, so the path inside the package is stable.
 */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

/** undici's Pool (constructor). */
export const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as typeof UndiciPool;

/** An undici Pool instance. */
export type Pool = UndiciPool;

/** undici Pool options. */
export type PoolOptions = UndiciPool.Options;
