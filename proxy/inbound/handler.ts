/**
 * The inbound request path, per request: the caller's identity and the
 * destination come from the TLS connection (peer SPIFFE ID, SNI), both
 * resolved once per connection; then intentions, then the local instance
 * (`x-weft-instance` if the outbound side named one, which must be a local
 * instance of the SNI's service), then forwarding over a keep-alive pool
 * (undici, app-pools.ts; a request with `Expect` goes through node:http,
 * which relays the app's 100 Continue or its early final answer, which
 * undici does not support).
 *
 * X-Forwarded-*: the caller is a peer proxy that proved a mesh identity, and
 * its outbound side overwrote whatever its app claimed, so inbound appends
 * (trustForwarded). `x-weft-source` is always overwritten with the verified
 * SPIFFE ID: that one an app may rely on.
 */
import { type Agent, type IncomingMessage, type OutgoingHttpHeaders, request, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Dispatcher } from 'undici';
import { type ExchangeFailure, UpstreamExchange } from '../http/exchange.js';
import { compileRequestPolicy, downstreamResponseHeaders, hasBody, upstreamRequestHeaders } from '../http/headers.js';
import { rawReplyAndClose, replyWithReason } from '../http/reply.js';
import type { ServerDrain } from '../http/drain.js';
import { forwardUpgrade } from '../http/upgrade.js';
import type { RouteMetrics } from '../metrics.js';
import type { LocalInstance, PeerIdentity } from '../ports.js';
import type { AppPools } from './app-pools.js';
import { INSTANCE_HEADER, type ResolvedInboundOptions, SOURCE_HEADER } from './options.js';

/** What a TLS connection fixes for all its requests. */
interface Connection {
  readonly peer: PeerIdentity;
  readonly destination: string;
  readonly remote: string;
  lastInstance: LocalInstance | undefined;
  lastRoute: RouteMetrics | undefined;
  refused: RouteMetrics | undefined;
}

/** Why a request is answered by the proxy instead of an app. */
interface Refusal {
  readonly status: number;
  readonly reason: string;
}

const NO_CONNECTION: Refusal = { status: 421, reason: 'weft: connection has no verified peer or server name' };

/** Request, upgrade and connection handlers of one inbound listener. */
export class InboundHandler {
  private readonly o: ResolvedInboundOptions;
  private readonly agent: Agent;
  private readonly pools: AppPools;
  private readonly drain: ServerDrain;
  private readonly connections = new WeakMap<TLSSocket, Connection>();
  private readonly policy = compileRequestPolicy({ trustForwarded: true, proto: 'https', drop: [INSTANCE_HEADER, SOURCE_HEADER] });
  /** `address:port` -> service, to label the pool metrics. */
  readonly poolServices = new Map<string, string>();

  /** `agent` serves requests with `Expect`; `pools` every other one. */
  constructor(o: ResolvedInboundOptions, agent: Agent, pools: AppPools, drain: ServerDrain) {
    this.o = o;
    this.agent = agent;
    this.pools = pools;
    this.drain = drain;
  }

  /** Records a connection the TLS guard admitted. */
  accept(socket: TLSSocket): void {
    const peer = this.o.tls.peerOf(socket);
    const servername = socket.servername;
    if (peer === undefined || typeof servername !== 'string' || servername === '') return;
    this.connections.set(socket, {
      peer,
      destination: servername,
      remote: socket.remoteAddress ?? 'unknown',
      lastInstance: undefined,
      lastRoute: undefined,
      refused: undefined,
    });
  }

  /** The 'request' / 'checkContinue' handler. */
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const conn = this.connections.get(req.socket as TLSSocket);
    if (conn === undefined) {
      replyWithReason(res, NO_CONNECTION.status, NO_CONNECTION.reason);
      return;
    }
    const target = this.route(conn, req);
    if (!isInstance(target)) {
      const refused = this.refusedRoute(conn);
      const started = refused.start();
      replyWithReason(res, target.status, target.reason);
      refused.end(started, target.status);
      return;
    }
    this.forward(req, res, conn, target);
  };

  /** The 'upgrade' handler (WebSocket and other HTTP/1.1 upgrades): same checks, then a tunnel. */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const conn = this.connections.get(req.socket as TLSSocket);
    if (conn === undefined) {
      rawReplyAndClose(socket, NO_CONNECTION.status, NO_CONNECTION.reason);
      return;
    }
    const target = this.route(conn, req);
    if (!isInstance(target)) {
      const refused = this.refusedRoute(conn);
      refused.end(refused.start(), target.status);
      rawReplyAndClose(socket, target.status, target.reason);
      return;
    }
    const route = this.routeMetrics(conn, target);
    const started = route.start();
    const headers = upstreamRequestHeaders(req, this.policy, conn.remote);
    headers[SOURCE_HEADER] = conn.peer.uri;
    forwardUpgrade(req, socket, head, { host: target.address, port: target.port, headers, timeoutMs: this.o.upgradeTimeoutMs }, (status) => {
      route.end(started, status);
      if (status === 101 && !socket.destroyed) this.drain.trackTunnel(socket);
    });
  };

  /** Intentions, then the local instance. */
  private route(conn: Connection, req: IncomingMessage): LocalInstance | Refusal {
    const decision = this.o.intentions.decide(conn.peer.service, conn.destination);
    if (decision.action !== 'allow') {
      this.o.metrics.denials.inc({ source: conn.peer.service, destination: conn.destination });
      return { status: 403, reason: decision.reason };
    }
    const named = req.headers[INSTANCE_HEADER];
    if (named === undefined) {
      return this.o.local.pick(conn.destination) ?? { status: 503, reason: `weft: WEFT_ERR_LOCAL_INSTANCE_MISSING: no local instance of ${conn.destination}` };
    }
    const id = Array.isArray(named) ? named.join(',') : named;
    return (
      this.o.local.instance(conn.destination, id) ?? {
        status: 503,
        reason: `weft: WEFT_ERR_LOCAL_INSTANCE_MISSING: ${INSTANCE_HEADER} ${JSON.stringify(id)} is not a local instance of ${conn.destination}`,
      }
    );
  }

  private forward(req: IncomingMessage, res: ServerResponse, conn: Connection, inst: LocalInstance): void {
    const route = this.routeMetrics(conn, inst);
    const started = route.start();
    const headers = upstreamRequestHeaders(req, this.policy, conn.remote);
    headers[SOURCE_HEADER] = conn.peer.uri;
    if (req.headers.expect === undefined) {
      this.dispatch(req, res, inst, headers, route, started);
      return;
    }
    const up = request({ host: inst.address, port: inst.port, method: req.method, path: req.url, headers, agent: this.agent });
    res.once('close', () => {
      // 499 (nginx's "client closed request") when the caller left before any answer.
      route.end(started, res.headersSent ? res.statusCode : 499);
      if (!res.writableFinished) up.destroy();
    });
    up.on('response', (ures: IncomingMessage) => {
      res.writeHead(ures.statusCode ?? 502, ures.statusMessage, downstreamResponseHeaders(ures.headers));
      ures.pipe(res);
      ures.on('error', () => res.destroy());
    });
    up.on('error', (err: Error & { code?: string }) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      this.o.logger.debug({ err, instance: inst.id }, 'local instance did not answer');
      replyWithReason(res, 502, `weft: WEFT_ERR_LOCAL_APP_UNAVAILABLE: local instance ${inst.id} did not answer (${err.code ?? err.message})`);
    });
    if (req.headers.expect !== undefined) up.on('continue', () => res.writeContinue());
    req.on('error', () => up.destroy());
    req.pipe(up);
  }

  /** The usual path: over the instance's undici pool, the response relayed as it is parsed. */
  private dispatch(req: IncomingMessage, res: ServerResponse, inst: LocalInstance, headers: OutgoingHttpHeaders, route: RouteMetrics, started: number): void {
    const exchange = new UpstreamExchange((outcome: UpstreamExchange | ExchangeFailure) => {
      if (outcome instanceof UpstreamExchange) {
        outcome.pipeTo(res);
        return;
      }
      if (outcome.kind === 'aborted' || outcome.kind === 'timeout') return;
      const err = outcome.error as Error & { code?: string };
      this.o.logger.debug({ err, instance: inst.id }, 'local instance did not answer');
      replyWithReason(res, 502, `weft: WEFT_ERR_LOCAL_APP_UNAVAILABLE: local instance ${inst.id} did not answer (${err.code ?? err.message})`);
    });
    res.once('close', () => {
      // 499 (nginx's "client closed request") when the caller left before any answer.
      route.end(started, res.headersSent ? res.statusCode : 499);
      if (!res.writableFinished) exchange.cancel('aborted', 'the caller left');
    });
    const options = { path: req.url ?? '/', method: req.method ?? 'GET', headers, body: hasBody(req) ? req : null, headersTimeout: 0, bodyTimeout: 0 };
    try {
      this.pools.get(inst.address, inst.port, inst.service).dispatch(options as Dispatcher.DispatchOptions, exchange as unknown as Dispatcher.DispatchHandler);
    } catch (err) {
      exchange.onError(err as Error);
    }
  }

  /** Cached per connection: a connection nearly always talks to one instance. */
  private routeMetrics(conn: Connection, inst: LocalInstance): RouteMetrics {
    if (conn.lastInstance === inst && conn.lastRoute !== undefined) return conn.lastRoute;
    const route = this.o.metrics.route({
      direction: 'inbound',
      source: conn.peer.service,
      destination: inst.service,
      version: inst.version,
      instance: inst.id,
    });
    this.poolServices.set(`${inst.address}:${inst.port}`, inst.service);
    conn.lastInstance = inst;
    conn.lastRoute = route;
    return route;
  }

  private refusedRoute(conn: Connection): RouteMetrics {
    conn.refused ??= this.o.metrics.route({ direction: 'inbound', source: conn.peer.service, destination: conn.destination, version: 'none', instance: 'none' });
    return conn.refused;
  }
}

function isInstance(x: LocalInstance | Refusal): x is LocalInstance {
  return (x as LocalInstance).port !== undefined;
}
