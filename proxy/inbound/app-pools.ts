/**
 * Keep-alive connections from the inbound to the host's local instances:
 * one pool (h1/client.ts) per instance address:port.
 *
 * Idle connections close after 4 s (Node's default server timeout is 5 s):
 * the proxy closes first, so no request races the app's FIN. Connections
 * are not capped: concurrency is bounded by the callers' pools.
 */
import { ConnPool } from '../h1/client.js';
import type { PoolSample } from '../metrics.js';

/** Idle keep-alive connections to an app close after this (apps are often Node, whose servers close at 5 s). */
export const APP_IDLE_MS = 4_000;

/** The pools of one inbound listener. */
export class AppPools {
  readonly #pools = new Map<string, { pool: ConnPool; service: string }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor() {
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const { pool } of this.#pools.values()) pool.sweep(now);
    }, 1000);
    this.#sweeper.unref();
  }

  /** The pool for the instance at address:port (of `service`, for the metrics label). */
  get(address: string, port: number, service: string): ConnPool {
    const key = `${address}:${port}`;
    let entry = this.#pools.get(key);
    if (entry === undefined) {
      entry = { pool: new ConnPool({ host: address, port }, { maxConnections: 100_000, idleMs: APP_IDLE_MS }), service };
      this.#pools.set(key, entry);
    }
    return entry.pool;
  }

  /** Active and idle connections per destination service, for weft_proxy_pool_connections. */
  samples(): PoolSample[] {
    const counts = new Map<string, { active: number; idle: number }>();
    for (const { pool, service } of this.#pools.values()) {
      const s = pool.stats;
      const c = counts.get(service) ?? { active: 0, idle: 0 };
      counts.set(service, { active: c.active + s.active, idle: c.idle + s.idle });
    }
    return [...counts].map(([destination, c]) => ({ destination, ...c }));
  }

  /** Drops every connection (after the drain). */
  close(): void {
    clearInterval(this.#sweeper);
    for (const { pool } of this.#pools.values()) pool.destroy();
    this.#pools.clear();
  }
}
