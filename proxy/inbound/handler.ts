/**
 * The inbound request path, per request: the caller's identity and the
 * destination come from the TLS connection (peer SPIFFE ID, SNI), both
 * resolved once per connection; then intentions, then the local instance
 * (`x-weft-instance` if the outbound side named one, which must be a local
 * instance of the SNI's service), then forwarding over a keep-alive pool to
 * the app (h1/client.ts), the response relayed as it is parsed. `Expect` is
 * forwarded: the app's 100 Continue (or its early final answer) is relayed.
 *
 * X-Forwarded-*: the caller is a peer proxy that proved a mesh identity, and
 * its outbound side overwrote whatever its app claimed, so inbound appends
 * (trustForwarded). `x-weft-source` is always overwritten with the verified
 * SPIFFE ID: that one an app may rely on.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Call, Exchange } from '../h1/client.js';
import { Framing, headerValue, requestLines, responseFraming, responseLines } from '../h1/head.js';
import type { H1Request, H1Server } from '../h1/server.js';
import { tunnel } from '../h1/tunnel.js';
import { compileRequestPolicy } from '../http/headers.js';
import { rawReplyAndClose } from '../http/reply.js';
import type { RouteMetrics } from '../metrics.js';
import type { LocalInstance, PeerIdentity } from '../ports.js';
import type { AppPools } from './app-pools.js';
import { INSTANCE_HEADER, type ResolvedInboundOptions, SOURCE_HEADER } from './options.js';

/** What a TLS connection fixes for all its requests. */
interface PeerConnection {
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
  private readonly pools: AppPools;
  private readonly connections = new WeakMap<Socket, PeerConnection>();
  private readonly policy = compileRequestPolicy({ trustForwarded: true, proto: 'https', drop: [INSTANCE_HEADER, SOURCE_HEADER] });
  /** Set by the server once built (tunnels are tracked for the drain). */
  server: H1Server | undefined;

  constructor(o: ResolvedInboundOptions, pools: AppPools) {
    this.o = o;
    this.pools = pools;
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

  /** A request's head arrived. */
  readonly onRequest = (req: H1Request): void => {
    const conn = this.connections.get(req.conn.socket);
    if (conn === undefined) {
      req.reply(NO_CONNECTION.status, NO_CONNECTION.reason);
      return;
    }
    const bad = targetRefusal(req);
    if (bad !== undefined) {
      const refused = this.refusedRoute(conn);
      const started = refused.start();
      req.refuse(bad.status, bad.reason);
      refused.end(started, bad.status);
      return;
    }
    const target = this.route(conn, req);
    if (!isInstance(target)) {
      const refused = this.refusedRoute(conn);
      const started = refused.start();
      req.reply(target.status, target.reason);
      refused.end(started, target.status);
      return;
    }
    new InboundRequest(this.o, req, target, this.routeMetrics(conn, target), this.head(req, conn, target, 'connection: keep-alive\r\n')).start(this.pools);
  };

  /** An upgrade (WebSocket and other HTTP/1.1 upgrades): same checks, then a tunnel. */
  readonly onUpgrade = (req: H1Request, socket: Socket, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    const conn = this.connections.get(socket);
    if (conn === undefined) {
      rawReplyAndClose(socket, NO_CONNECTION.status, NO_CONNECTION.reason);
      return;
    }
    const target = targetRefusal(req) ?? this.route(conn, req);
    if (!isInstance(target)) {
      const refused = this.refusedRoute(conn);
      refused.end(refused.start(), target.status);
      rawReplyAndClose(socket, target.status, target.reason);
      return;
    }
    const route = this.routeMetrics(conn, target);
    const started = route.start();
    const upgrade = `connection: Upgrade\r\nupgrade: ${headerValue(req.headers, 'upgrade') ?? ''}\r\n\r\n`;
    tunnel({
      socket,
      head,
      target: { host: target.address, port: target.port },
      requestHead: this.head(req, conn, target, upgrade),
      timeoutMs: this.o.upgradeTimeoutMs,
      describe: (err, timedOut) => {
        const status = timedOut ? 504 : 502;
        return { status, reason: `weft: upstream ${target.address}:${target.port} ${status === 504 ? 'timed out' : 'unreachable'} (${err.code ?? err.message})` };
      },
      done: (status) => {
        route.end(started, status);
        if (status === 101 && !socket.destroyed) this.server?.trackTunnel(socket);
      },
    });
  };

  /** The request head for the app, up to (not including) framing and the blank line. */
  private head(req: H1Request, conn: PeerConnection, inst: LocalInstance, extra: string): string {
    // HTTP/1.1 requires Host; an HTTP/1.0 caller may have sent none.
    const host = headerValue(req.headers, 'host') ?? `${inst.address}:${inst.port}`;
    return `${req.method} ${req.url} HTTP/1.1\r\nhost: ${host}\r\n${requestLines(req.headers, this.policy, conn.remote)}${SOURCE_HEADER}: ${conn.peer.uri}\r\n${extra}`;
  }

  /** Intentions, then the local instance. */
  private route(conn: PeerConnection, req: H1Request): LocalInstance | Refusal {
    const decision = this.o.intentions.decide(conn.peer.service, conn.destination);
    if (decision.action !== 'allow') {
      this.o.metrics.denials.inc({ source: conn.peer.service, destination: conn.destination });
      return { status: 403, reason: decision.reason };
    }
    const id = headerValue(req.headers, INSTANCE_HEADER);
    if (id === undefined) {
      return this.o.local.pick(conn.destination) ?? { status: 503, reason: `weft: WEFT_ERR_LOCAL_INSTANCE_MISSING: no local instance of ${conn.destination}` };
    }
    return (
      this.o.local.instance(conn.destination, id) ?? {
        status: 503,
        reason: `weft: WEFT_ERR_LOCAL_INSTANCE_MISSING: ${INSTANCE_HEADER} ${JSON.stringify(id)} is not a local instance of ${conn.destination}`,
      }
    );
  }

  /** Cached per connection: a connection nearly always talks to one instance. */
  private routeMetrics(conn: PeerConnection, inst: LocalInstance): RouteMetrics {
    if (conn.lastInstance === inst && conn.lastRoute !== undefined) return conn.lastRoute;
    const route = this.o.metrics.route({
      direction: 'inbound',
      source: conn.peer.service,
      destination: inst.service,
      version: inst.version,
      instance: inst.id,
    });
    conn.lastInstance = inst;
    conn.lastRoute = route;
    return route;
  }

  private refusedRoute(conn: PeerConnection): RouteMetrics {
    conn.refused ??= this.o.metrics.route({ direction: 'inbound', source: conn.peer.service, destination: conn.destination, version: 'none', instance: 'none' });
    return conn.refused;
  }
}

/** One request forwarded to a local instance: the exchange of its call. */
class InboundRequest implements Exchange {
  readonly #o: ResolvedInboundOptions;
  readonly #req: H1Request;
  readonly #inst: LocalInstance;
  readonly #route: RouteMetrics;
  readonly #head: string;
  readonly #started: number;
  #call: Call | undefined;
  #status = 0;
  #done = false;

  constructor(o: ResolvedInboundOptions, req: H1Request, inst: LocalInstance, route: RouteMetrics, head: string) {
    this.#o = o;
    this.#req = req;
    this.#inst = inst;
    this.#route = route;
    this.#head = head;
    this.#started = route.start();
  }

  start(pools: AppPools): void {
    const req = this.#req;
    req.onAbort = this.#onAbort;
    const inst = this.#inst;
    const framing = req.framing === Framing.Chunked ? 'transfer-encoding: chunked\r\n' : req.framing === Framing.Length ? `content-length: ${req.contentLength}\r\n` : '';
    const call = pools.get(inst.address, inst.port, inst.service).request(this, `${this.#head}${framing}\r\n`, undefined, req.complete, req.method === 'HEAD');
    this.#call = call;
    if (req.framing === Framing.None) return;
    const chunked = req.framing === Framing.Chunked;
    req.setSink({ onData: (chunk: Buffer) => call.writeBody(chunk, chunked, req), onEnd: () => call.endBody(chunked) });
  }

  readonly #onAbort = (): void => {
    this.#call?.abort();
    // 499 (nginx's "client closed request") when the caller left before any answer.
    this.#finish(this.#status === 0 ? 499 : this.#status);
  };

  onInterim(status: number, text: string | undefined, headers: string[]): void {
    this.#req.writeInterim(status, text, responseLines(headers));
  }

  onHead(status: number, text: string | undefined, headers: string[]): void {
    this.#status = status;
    const f = responseFraming(headers, status, this.#req.method === 'HEAD');
    this.#req.writeHead(status, text, responseLines(headers), f.framing, f.length, f.length);
  }

  onData(chunk: Buffer): boolean {
    return this.#req.relay(chunk, this.#call);
  }

  onEnd(): void {
    this.#req.end();
    this.#finish(this.#status);
  }

  onError(_kind: 'connect-error' | 'reset', err: Error & { code?: string }): void {
    if (this.#req.headersSent) {
      this.#req.destroy();
      this.#finish(this.#status);
      return;
    }
    this.#o.logger.debug({ err, instance: this.#inst.id }, 'local instance did not answer');
    this.#req.reply(502, `weft: WEFT_ERR_LOCAL_APP_UNAVAILABLE: local instance ${this.#inst.id} did not answer (${err.code ?? err.message})`);
    this.#finish(502);
  }

  cork(): void {
    this.#req.conn.socket.cork();
  }

  uncork(): void {
    this.#req.conn.socket.uncork();
  }

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#route.end(this.#started, status);
  }
}

/**
 * What the inbound refuses before routing (h1/server.ts has already refused
 * bad versions, Host headers and framing on every listener): the caller is
 * a peer's outbound, which always sends origin-form (`*` for OPTIONS) and
 * never CONNECT; anything else would reach the app as a target it never
 * expects from the mesh (an absolute URI, an authority, a tunnel).
 */
function targetRefusal(req: H1Request): Refusal | undefined {
  if (req.method === 'CONNECT') return { status: 400, reason: 'weft: CONNECT is not served by the inbound listener' };
  const url = req.url;
  if (url.charCodeAt(0) === 47 /* / */ || (url === '*' && req.method === 'OPTIONS')) return undefined;
  return { status: 400, reason: `weft: the inbound listener takes origin-form request targets only (got ${JSON.stringify(url.slice(0, 100))})` };
}

function isInstance(x: LocalInstance | Refusal): x is LocalInstance {
  return (x as LocalInstance).port !== undefined;
}
