/**
 * Keep-alive connection pools for the upstream leg, so mTLS handshakes are
 * rare: a handshake costs ~3.5 ms of CPU (certs/README.md), a reused
 * connection nothing.
 *
 * One pool (h1/client.ts) per (host proxy address:port, calling service, SNI =
 * destination service). The caller is in the key because its identity is
 * the client certificate; the destination because the server identity
 * verified at the handshake is the destination's, so a connection checked as
 * `backend` is never reused for `payments`. Raw sockets with llhttp rather
 * than node:https or undici: the upstream leg is where a proxy spends its
 * CPU (proxy/README.md, "The data path").
 *
 * Idle connections close after `idleMs` (50 s by default, below the
 * inbound's 60 s keepAliveTimeout; 4 s for plain instances, below Node's
 * default 5 s), so the client closes first and no request races the
 * server's FIN. The most recently used idle connection goes first, which
 * keeps a few connections hot and lets the rest of a burst idle out. TLS
 * sessions are reused per pool, so a new connection usually resumes rather
 * than doing a full handshake.
 *
 * Instances outside the mesh (no weft_mesh_port) get a plain pool per address:port.
 */
import type { ConnectionOptions } from 'node:tls';
import { ConnPool } from '../h1/client.js';
import type { OutboundTls } from '../ports.js';

/** Sizes of one pool, for metrics. */
export interface PoolStats {
  /** `address:port` of the host proxy (or instance, for plain). */
  readonly target: string;
  readonly caller: string;
  /** SNI = destination service; '' for plain HTTP. */
  readonly destination: string;
  readonly active: number;
  readonly idle: number;
}

/** Where and how one attempt connects. */
export interface UpstreamTarget {
  readonly pool: ConnPool;
  readonly protocol: 'http:' | 'https:';
  /** SNI (= destination service) for https targets. */
  readonly servername: string | undefined;
}

interface Entry {
  readonly target: UpstreamTarget;
  readonly address: string;
  readonly caller: string;
  readonly destination: string;
}

/** The outbound connection pools. */
export class UpstreamPools {
  readonly #tls: OutboundTls;
  readonly #opts: { idleMs: number; plainIdleMs: number; maxSockets: number };
  readonly #mesh = new Map<string, Entry>();
  readonly #plain = new Map<string, Entry>();
  /** Pools replaced after a renewal, finishing their requests; destroyed at close. */
  readonly #retired = new Set<ConnPool>();
  readonly #sweeper: NodeJS.Timeout;
  #generation: number;

  constructor(tls: OutboundTls, opts: { idleMs: number; plainIdleMs: number; maxSockets: number }) {
    this.#tls = tls;
    this.#opts = opts;
    this.#generation = tls.generation?.() ?? 0;
    // One interval closes idle connections of every pool (no timer per connection).
    const every = Math.max(50, Math.min(1000, Math.floor(Math.min(opts.idleMs, opts.plainIdleMs) / 4)));
    this.#sweeper = setInterval(() => {
      const now = performance.now();
      for (const e of this.#mesh.values()) e.target.pool.sweep(now);
      for (const e of this.#plain.values()) e.target.pool.sweep(now);
      for (const pool of this.#retired) {
        pool.sweep(now);
        if (pool.empty) this.#retired.delete(pool);
      }
    }, every);
    this.#sweeper.unref();
  }

  /**
   * The pool for `caller` calling `destination` on the host proxy at
   * host:port over mTLS. Undefined when the caller has no identity yet.
   */
  mesh(caller: string, destination: string, host: string, port: number): UpstreamTarget | undefined {
    this.#rotateIfRenewed();
    const key = `${host}:${port}\0${caller}\0${destination}`;
    let entry = this.#mesh.get(key);
    if (entry === undefined) {
      const options = this.#tls.clientOptions(caller, destination);
      if (options === undefined) return undefined;
      const pool = new ConnPool({ host, port, tls: { ...options, servername: destination } }, { maxConnections: this.#opts.maxSockets, idleMs: this.#opts.idleMs });
      entry = { target: { pool, protocol: 'https:', servername: destination }, address: `${host}:${port}`, caller, destination };
      this.#mesh.set(key, entry);
    }
    return entry.target;
  }

  /** TLS options (SNI set) for a one-off connection, e.g. an upgrade; undefined without an identity. */
  meshTls(caller: string, destination: string): ConnectionOptions | undefined {
    const options = this.#tls.clientOptions(caller, destination);
    return options === undefined ? undefined : { ...options, servername: destination };
  }

  /** The plain HTTP pool of an instance outside the mesh. */
  plain(host: string, port: number): UpstreamTarget {
    const address = `${host}:${port}`;
    let entry = this.#plain.get(address);
    if (entry === undefined) {
      const pool = new ConnPool({ host, port }, { maxConnections: this.#opts.maxSockets, idleMs: this.#opts.plainIdleMs });
      entry = { target: { pool, protocol: 'http:', servername: undefined }, address, caller: '', destination: '' };
      this.#plain.set(address, entry);
    }
    return entry.target;
  }

  /** Connection counts per pool (for the pool-size gauge and tests). */
  stats(): PoolStats[] {
    const out: PoolStats[] = [];
    for (const entries of [this.#mesh, this.#plain]) {
      for (const e of entries.values()) {
        const s = e.target.pool.stats;
        out.push({ target: e.address, caller: e.caller, destination: e.destination, active: s.active, idle: s.idle });
      }
    }
    return out;
  }

  /** Drops every pooled connection (graceful shutdown, after in-flight requests ended). */
  close(): void {
    clearInterval(this.#sweeper);
    for (const e of [...this.#mesh.values(), ...this.#plain.values()]) e.target.pool.destroy();
    for (const pool of this.#retired) pool.destroy();
    this.#mesh.clear();
    this.#plain.clear();
    this.#retired.clear();
  }

  /**
   * A renewed identity or rotated bundle: new pools, so new connections use
   * the new certificate. Old pools finish their requests, then close.
   */
  #rotateIfRenewed(): void {
    const generation = this.#tls.generation?.() ?? 0;
    if (generation === this.#generation) return;
    this.#generation = generation;
    for (const e of this.#mesh.values()) {
      e.target.pool.close();
      this.#retired.add(e.target.pool);
    }
    this.#mesh.clear();
  }
}
