/**
 * Keep-alive connections from the inbound to the host's local instances:
 * one undici Pool per instance address:port. undici rather than an
 * http.Agent because the Agent's bookkeeping and ClientRequest cost more
 * CPU than the parsing itself on this leg (proxy/README.md, "Runtime and
 * hot path").
 *
 * Idle connections close after 4 s, or earlier when the app's Keep-Alive
 * hint says so (Node's default server timeout is 5 s): the proxy closes
 * first, so no request races the app's FIN. Connections are not capped, as
 * with the Agent before: concurrency is bounded by the callers' pools.
 */
import { Pool, type Pool as PoolInstance } from '../http/pool.js';
import type { PoolSample } from '../metrics.js';

/** Idle keep-alive connections to an app close after this (apps are often Node, whose servers close at 5 s). */
export const APP_IDLE_MS = 4_000;

/** The pools of one inbound listener. */
export class AppPools {
  readonly #pools = new Map<string, { pool: PoolInstance; service: string }>();

  /** The pool for the instance at address:port (of `service`, for the metrics label). */
  get(address: string, port: number, service: string): PoolInstance {
    const key = `${address}:${port}`;
    let entry = this.#pools.get(key);
    if (entry === undefined) {
      entry = {
        pool: new Pool(`http://${key}`, { pipelining: 1, keepAliveTimeout: APP_IDLE_MS, headersTimeout: 0, bodyTimeout: 0 }),
        service,
      };
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
      counts.set(service, { active: c.active + s.connected - s.free, idle: c.idle + s.free });
    }
    return [...counts].map(([destination, c]) => ({ destination, ...c }));
  }

  /** Drops every connection (after the drain). */
  close(): void {
    for (const { pool } of this.#pools.values()) void pool.destroy().catch(() => {});
    this.#pools.clear();
  }
}
