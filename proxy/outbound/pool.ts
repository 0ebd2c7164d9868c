/**
 * Keep-alive connection pools for the upstream leg, so mTLS handshakes are
 * rare: a handshake costs ~3.5 ms of CPU (certs/README.md), a reused
 * connection nothing.
 *
 * One https.Agent per calling service (its identity is the client
 * certificate): Node's Agent keys its sockets by host:port and SNI but NOT by
 * `secureContext`, so two callers sharing an Agent would share connections
 * and one would speak with the other's identity. Within a caller's Agent,
 * sockets are pooled per (host proxy address:port, SNI = destination
 * service): the server identity verified at the handshake is the
 * destination's, so a connection checked as `backend` is never reused for
 * `payments`. Hence the pool key is address:port + caller + destination.
 *
 * Idle sockets close after `idleMs` (50 s by default, below the inbound's
 * 60 s keepAliveTimeout; 4 s for plain instances, below Node's default 5 s),
 * so the client closes first and no request races the server's FIN. LIFO scheduling keeps a few connections hot and lets the
 * rest idle out after a burst. TLS sessions are cached per Agent, so a new
 * connection usually resumes rather than doing a full handshake.
 *
 * Instances outside the mesh (no weft_mesh_port) get one plain http.Agent.
 */
import http from 'node:http';
import https from 'node:https';
import type { ConnectionOptions } from 'node:tls';
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
  readonly agent: http.Agent;
  readonly protocol: 'http:' | 'https:';
  /** TLS options for https targets (secureContext, identity check) with SNI set. */
  readonly tls: ConnectionOptions | undefined;
}

/** The outbound connection pools. */
export class UpstreamPools {
  readonly #tls: OutboundTls;
  readonly #agentOptions: https.AgentOptions;
  readonly #mesh = new Map<string, https.Agent>();
  readonly #plain: http.Agent;
  /** Agents replaced after a renewal, still finishing requests; destroyed at close. */
  readonly #retired = new Set<https.Agent>();
  /** Agent pool names -> what they connect to, for stats (Node's names are an internal format). */
  readonly #names = new Map<string, { target: string; destination: string }>();
  #generation: number;

  constructor(tls: OutboundTls, opts: { idleMs: number; plainIdleMs: number; maxSockets: number }) {
    this.#tls = tls;
    this.#agentOptions = {
      keepAlive: true,
      // Free sockets get this timeout (Node's Agent sets it on 'free'): the idle timeout.
      timeout: opts.idleMs,
      maxSockets: opts.maxSockets,
      maxFreeSockets: opts.maxSockets,
      scheduling: 'lifo',
    };
    this.#plain = new http.Agent({ ...this.#agentOptions, timeout: opts.plainIdleMs });
    this.#generation = tls.generation?.() ?? 0;
  }

  /**
   * The pool and TLS options for `caller` calling `destination` on the host
   * proxy at host:port over mTLS. Undefined when the caller has no identity yet.
   */
  mesh(caller: string, destination: string, host: string, port: number): UpstreamTarget | undefined {
    const options = this.#tls.clientOptions(caller, destination);
    if (options === undefined) return undefined;
    this.#rotateIfRenewed();
    let agent = this.#mesh.get(caller);
    if (agent === undefined) {
      agent = new https.Agent(this.#agentOptions);
      this.#mesh.set(caller, agent);
    }
    const tls: ConnectionOptions = { ...options, servername: destination };
    const name = agent.getName({ ...tls, host, port } as http.ClientRequestArgs);
    if (!this.#names.has(name)) this.#names.set(name, { target: `${host}:${port}`, destination });
    return { agent, protocol: 'https:', tls };
  }

  /** TLS options (SNI set) for a one-off connection, e.g. an upgrade; undefined without an identity. */
  meshTls(caller: string, destination: string): ConnectionOptions | undefined {
    const options = this.#tls.clientOptions(caller, destination);
    return options === undefined ? undefined : { ...options, servername: destination };
  }

  /** The plain HTTP pool, for instances outside the mesh. */
  plain(): UpstreamTarget {
    return { agent: this.#plain, protocol: 'http:', tls: undefined };
  }

  /** Socket counts per pool (for the pool-size gauge and tests). */
  stats(): PoolStats[] {
    const out: PoolStats[] = [];
    for (const [caller, agent] of this.#mesh) this.#collect(agent, caller, out);
    this.#collect(this.#plain, '', out);
    return out;
  }

  /** Drops every pooled connection (graceful shutdown, after in-flight requests ended). */
  close(): void {
    for (const agent of [...this.#mesh.values(), ...this.#retired]) agent.destroy();
    this.#mesh.clear();
    this.#retired.clear();
    this.#plain.destroy();
  }

  #collect(agent: http.Agent, caller: string, out: PoolStats[]): void {
    const names = new Set([...Object.keys(agent.sockets), ...Object.keys(agent.freeSockets)]);
    for (const name of names) {
      const known = this.#names.get(name);
      const [host, port] = name.split(':');
      out.push({
        target: known?.target ?? `${host}:${port}`,
        caller,
        destination: known?.destination ?? '',
        active: agent.sockets[name]?.length ?? 0,
        idle: agent.freeSockets[name]?.length ?? 0,
      });
    }
  }

  /**
   * A renewed identity or rotated bundle: new Agents, so new connections use
   * the new certificate. Old Agents' sockets finish their requests and idle out.
   */
  #rotateIfRenewed(): void {
    const generation = this.#tls.generation?.() ?? 0;
    if (generation === this.#generation) return;
    this.#generation = generation;
    const old = [...this.#mesh.values()];
    this.#mesh.clear();
    // Idle sockets of old agents close now; busy ones finish their request, then idle out.
    for (const agent of old) {
      for (const list of Object.values(agent.freeSockets)) for (const s of list ?? []) s.destroy();
      this.#retired.add(agent);
    }
  }
}
