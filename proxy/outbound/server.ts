/**
 * The outbound proxy: one loopback listener per local service (its outbound
 * port, assigned by the agent), all sharing one routing table, one set of
 * connection pools and one pending-request bound per destination.
 *
 * Start-up order matters for last-known-good across restarts: the disk cache
 * is loaded and its services subscribed before the first listener accepts,
 * so a proxy restarted while Consul is down routes from the cache at once.
 *
 * Each listener takes at most `httpLimits.maxConnections` connections; more
 * are closed at accept and counted (weft_proxy_connections_refused_total).
 *
 * Shutdown is graceful: stop accepting, close idle app connections, answer
 * what is in flight (with `Connection: close`), and after the grace period
 * cut whatever is left.
 */
import net, { type Socket } from 'node:net';
import { H1Server, type H1Request } from '../h1/server.js';
import { compileRequestPolicy } from '../http/headers.js';
import { type HttpLimits, httpLimits } from '../http/server-limits.js';
import { type ProxyMetrics, timeoutPhase } from '../metrics.js';
import type { OutboundTls, RouteSource } from '../ports.js';
import { PendingLimits } from '../resilience/pending-limit.js';
import type { Activator } from './activation.js';
import { checkListeners, type OutboundListener, type OutboundOptions, type OutboundOptionsInput, outboundOptions } from './options.js';
import { type PoolStats, UpstreamPools } from './pool.js';
import { type Caller, type ForwardContext, forward, HEADER_INSTANCE } from './relay.js';
import { RouteCache, routeCachePath } from './route-cache.js';
import { RouteTable } from './routes.js';
import { forwardUpgrade } from './upgrade.js';

/** What the outbound proxy is built from (the src/ wiring supplies adapters over certs/ and discovery/). */
export interface OutboundDeps {
  readonly source: RouteSource;
  readonly tls: OutboundTls;
  /** Told at once when a request is held for a service at zero (activation.ts); none: requests are held without telling anyone. */
  readonly activator?: Activator | undefined;
  /** The proxy's metrics; none in tests that do not look. */
  readonly metrics?: ProxyMetrics | undefined;
  /** Listener limits (header size and timeouts); proxy/http defaults otherwise. */
  readonly httpLimits?: Partial<HttpLimits> | undefined;
}

/** A bound listener. */
export interface BoundListener extends OutboundListener {
  /** The port actually bound (differs from `port` when that was 0). */
  readonly boundPort: number;
}

/** A running outbound proxy. */
export class OutboundProxy {
  readonly options: OutboundOptions;
  readonly routes: RouteTable;
  readonly pools: UpstreamPools;
  readonly #ctx: ForwardContext;
  readonly #deps: OutboundDeps;
  /** Parallel arrays: listener i is served by server i. */
  readonly #servers: H1Server[] = [];
  readonly #listeners: BoundListener[] = [];
  /** Servers of removed listeners, still finishing their requests; cut at close(). */
  readonly #retired = new Set<H1Server>();
  #closing: Promise<void> | undefined;

  private constructor(options: OutboundOptions, deps: OutboundDeps) {
    this.options = options;
    this.#deps = deps;
    const cache = options.dataDir === undefined ? undefined : new RouteCache(routeCachePath(options.dataDir), { logger: options.logger });
    this.routes = new RouteTable(deps.source, options, cache, deps.activator);
    this.pools = new UpstreamPools(deps.tls, { idleMs: options.poolIdleMs, plainIdleMs: options.plainPoolIdleMs, maxSockets: options.poolMaxSockets });
    this.#ctx = {
      options,
      routes: this.routes,
      pools: this.pools,
      limits: new PendingLimits({ defaultLimit: options.pendingLimit }),
      // Apps are not trusted to set X-Forwarded-*, nor to pick an instance themselves. Expect is
      // answered here (the body is read before an instance is chosen), so it goes no further.
      headerPolicy: compileRequestPolicy({ trustForwarded: false, proto: 'http', drop: [HEADER_INSTANCE, 'expect'] }),
      metrics: deps.metrics,
    };
    deps.metrics?.addPoolSource('outbound', () => poolSamples(this.pools.stats()));
  }

  /** Validates options, loads the route cache, and binds every listener. */
  static async start(input: OutboundOptionsInput, deps: OutboundDeps): Promise<OutboundProxy> {
    const proxy = new OutboundProxy(outboundOptions(input), deps);
    await proxy.routes.start();
    try {
      for (const listener of proxy.options.listeners) await proxy.#listen(listener, deps);
    } catch (err) {
      await proxy.close(0);
      throw err;
    }
    return proxy;
  }

  /**
   * Makes the listeners exactly `next` (the agent's hand-off file changed):
   * binds the new ones and stops accepting on removed ones, whose in-flight
   * requests still finish (cut after the shutdown grace). A listener whose
   * service, port and upstream are unchanged keeps its socket and connections.
   */
  async setListeners(next: readonly OutboundListener[]): Promise<void> {
    checkListeners(next, { allowEmpty: true });
    const key = (l: OutboundListener): string => `${l.service}\0${l.port}\0${l.upstream ?? ''}`;
    const wanted = new Set(next.map(key));
    for (let i = this.#listeners.length - 1; i >= 0; i--) {
      if (wanted.has(key(this.#listeners[i]!))) continue;
      const [server] = this.#servers.splice(i, 1);
      this.#listeners.splice(i, 1);
      this.#retire(server!);
    }
    const bound = new Set(this.#listeners.map(key));
    for (const listener of next) if (!bound.has(key(listener))) await this.#listen(listener, this.#deps);
  }

  #retire(server: H1Server): void {
    this.#retired.add(server);
    void server.close(this.options.shutdownGraceMs).then(() => this.#retired.delete(server));
  }

  /** The listeners with their bound ports. */
  get listeners(): readonly BoundListener[] {
    return this.#listeners;
  }

  /** The bound port of `service`'s listener. */
  portOf(service: string): number {
    const l = this.#listeners.find((x) => x.service === service);
    if (l === undefined) throw new Error(`no outbound listener for service ${service}`);
    return l.boundPort;
  }

  /** Requests being answered now. */
  get inFlight(): number {
    let n = 0;
    for (const s of this.#servers) n += s.inFlight;
    for (const s of this.#retired) n += s.inFlight;
    return n;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`
   * (default options.shutdownGraceMs), then cuts what is left, closes the
   * pools and watches, and writes the route cache.
   */
  close(graceMs: number = this.options.shutdownGraceMs): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    // Answers not yet started close their connection, so apps reconnect (to the next proxy).
    await Promise.all([...this.#servers, ...this.#retired].map((s) => s.close(graceMs)));
    this.pools.close();
    await this.routes.close();
  }

  async #listen(listener: OutboundListener, deps: OutboundDeps): Promise<void> {
    const caller: Caller = { service: listener.service, upstream: listener.upstream };
    const metrics = deps.metrics;
    const ctx = this.#ctx;
    const logger = this.options.logger;
    const limits = httpLimits(deps.httpLimits);
    const h1: H1Server = new H1Server(
      net.createServer(),
      {
        onRequest: (req: H1Request) => {
          try {
            forward(ctx, caller, req);
          } catch (err) {
            logger.error({ err }, 'outbound request failed unexpectedly');
            req.destroy();
          }
        },
        onUpgrade: (req: H1Request, socket: Socket, head: Buffer) => {
          void forwardUpgrade(ctx, caller, req, socket, head, (s) => h1.trackTunnel(s)).catch((err: unknown) => {
            logger.error({ err }, 'outbound upgrade failed unexpectedly');
            socket.destroy();
          });
        },
        onClientError: (status, code) => {
          if (status !== 0) metrics?.protocolErrors.inc({ direction: 'outbound', code: String(status) });
          const phase = timeoutPhase(code);
          if (phase !== undefined) metrics?.clientTimeouts.inc({ direction: 'outbound', phase });
        },
      },
      limits,
    );
    // Beyond the limit Node closes a connection at accept ('drop'), before the parser exists.
    h1.server.maxConnections = limits.maxConnections;
    h1.server.on('drop', () => metrics?.connectionsRefused.inc({ listener: `outbound:${listener.service}`, reason: 'max_connections' }));
    h1.server.on('connection', (socket: Socket) => {
      h1.accept(socket);
      metrics?.connections.inc({ direction: 'outbound' });
      socket.once('close', () => metrics?.connections.dec({ direction: 'outbound' }));
    });
    await h1.listen(listener.port, this.options.host);
    this.#servers.push(h1);
    this.#listeners.push({ ...listener, boundPort: h1.address.port });
  }
}

/** Pool stats summed per destination (the gauge's labels). */
function poolSamples(stats: readonly PoolStats[]): Array<{ destination: string; active: number; idle: number }> {
  const byDestination = new Map<string, { destination: string; active: number; idle: number }>();
  for (const s of stats) {
    const sample = byDestination.get(s.destination) ?? { destination: s.destination, active: 0, idle: 0 };
    byDestination.set(s.destination, { destination: s.destination, active: sample.active + s.active, idle: sample.idle + s.idle });
  }
  return [...byDestination.values()];
}
