/**
 * Keep-alive connection pools for the upstream leg, so mTLS handshakes are
 * rare: a handshake costs ~3.5 ms of CPU (certs/README.md), a reused
 * connection nothing.
 *
 * One undici Pool per (host proxy address:port, calling service, SNI =
 * destination service). The caller is in the key because its identity is
 * the client certificate; the destination because the server identity
 * verified at the handshake is the destination's, so a connection checked as
 * `backend` is never reused for `payments`. undici rather than node:https
 * because the upstream leg costs about half as much CPU per request
 * (proxy/README.md, bench/proxy/upstream.ts), and its pools are plain objects
 * we own per key instead of an Agent's internal name format.
 *
 * Idle connections close after `idleMs` (50 s by default, below the
 * inbound's 60 s keepAliveTimeout; 4 s for plain instances, below Node's
 * default 5 s), so the client closes first and no request races the
 * server's FIN. undici takes the first free connection in creation order,
 * which keeps a few connections hot and lets the rest of a burst idle out.
 * TLS sessions are cached per pool (keyed by SNI), so a new connection
 * usually resumes rather than doing a full handshake.
 *
 * Instances outside the mesh (no weft_mesh_port) get a plain pool per address:port.
 */
import type { ConnectionOptions } from 'node:tls';
import { Pool, type PoolOptions } from '../http/pool.js';
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
  readonly pool: Pool;
  readonly protocol: 'http:' | 'https:';
  /** SNI (= destination service) for https targets; undici must be told per request or it derives one from Host. */
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
  readonly #retired = new Set<Pool>();
  #generation: number;

  constructor(tls: OutboundTls, opts: { idleMs: number; plainIdleMs: number; maxSockets: number }) {
    this.#tls = tls;
    this.#opts = opts;
    this.#generation = tls.generation?.() ?? 0;
  }

  /**
   * The pool for `caller` calling `destination` on the host proxy at
   * host:port over mTLS. Undefined when the caller has no identity yet.
   */
  mesh(caller: string, destination: string, host: string, port: number): UpstreamTarget | undefined {
    const options = this.#tls.clientOptions(caller, destination);
    if (options === undefined) return undefined;
    this.#rotateIfRenewed();
    const key = `${host}:${port}\0${caller}\0${destination}`;
    let entry = this.#mesh.get(key);
    if (entry === undefined) {
      const pool = this.#pool(`https://${host}:${port}`, this.#opts.idleMs, { ...options, servername: destination });
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
      entry = { target: { pool: this.#pool(`http://${address}`, this.#opts.plainIdleMs), protocol: 'http:', servername: undefined }, address, caller: '', destination: '' };
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
        out.push({ target: e.address, caller: e.caller, destination: e.destination, active: s.connected - s.free, idle: s.free });
      }
    }
    return out;
  }

  /** Drops every pooled connection (graceful shutdown, after in-flight requests ended). */
  close(): void {
    for (const e of [...this.#mesh.values(), ...this.#plain.values()]) void e.target.pool.destroy().catch(() => {});
    for (const pool of this.#retired) void pool.destroy().catch(() => {});
    this.#mesh.clear();
    this.#plain.clear();
    this.#retired.clear();
  }

  #pool(origin: string, idleMs: number, tls?: ConnectionOptions): Pool {
    return new Pool(origin, {
      connections: this.#opts.maxSockets,
      pipelining: 1,
      // The idle timeout, whatever Keep-Alive hint the server sends (a hint can only shorten it).
      keepAliveTimeout: idleMs,
      keepAliveMaxTimeout: idleMs,
      // Per-try and overall deadlines are the proxy's (attempt.ts); responses stream at the client's pace.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(tls === undefined ? {} : { connect: tls as NonNullable<PoolOptions['connect']> }),
    });
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
      const pool = e.target.pool;
      this.#retired.add(pool);
      void pool.close().then(
        () => this.#retired.delete(pool),
        () => this.#retired.delete(pool),
      );
    }
    this.#mesh.clear();
  }
}
