/**
 * The inbound listener: one TLS server for every local service of the host.
 *
 *   TLS      SNI = destination service -> its certificate (InboundTls.contextFor);
 *            no SNI or a service not on this host fails the handshake;
 *            client certificate required, chain checked by OpenSSL against the bundle,
 *            then the SPIFFE ID by the guard (InboundTls.guard) before HTTP sees the socket
 *   HTTP     h1/server.ts: llhttp, strict; smuggling 400, big heads 431, slow heads 408,
 *            all with a closed connection
 *   route    handler.ts: intentions -> local instance -> forward / upgrade
 *   close    stop accepting, finish in flight (Connection: close), cut at the deadline
 */
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { H1Server } from '../h1/server.js';
import { tlsFailureReason } from '../metrics.js';
import { AppPools } from './app-pools.js';
import { InboundHandler } from './handler.js';
import { type InboundOptions, type ResolvedInboundOptions, resolveInboundOptions } from './options.js';

/** What a drain did. */
export interface DrainResult {
  /** Requests and tunnels still open at the deadline, and cut. */
  readonly forced: number;
}

/** A running inbound listener. Start with `InboundProxy.start`. */
export class InboundProxy {
  readonly server: tls.Server;
  private readonly o: ResolvedInboundOptions;
  private readonly h1: H1Server;
  private readonly pools: AppPools;
  private readonly removePoolSource: () => void;

  private constructor(o: ResolvedInboundOptions) {
    this.o = o;
    const { metrics, logger, tls: inboundTls, limits } = o;
    this.server = tls.createServer({
      ...inboundTls.serverOptions(),
      handshakeTimeout: limits.handshakeTimeoutMs,
      SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
        const ctx = inboundTls.contextFor(name);
        if (ctx === undefined) cb(new Error(`no local service for server name ${JSON.stringify(name)}`));
        else cb(null, ctx);
      },
    });
    this.pools = new AppPools();
    const handler = new InboundHandler(o, this.pools);
    this.h1 = new H1Server(
      this.server,
      {
        onRequest: handler.onRequest,
        onUpgrade: handler.onUpgrade,
        onClientError: (status, code) => {
          if (status !== 0) metrics.protocolErrors.inc({ direction: 'inbound', code: String(status) });
          logger.debug({ code, status }, 'inbound client error');
        },
      },
      limits,
    );
    handler.server = this.h1;

    inboundTls.guard(this.server, (socket, err) => {
      metrics.tlsFailures.inc({ direction: 'inbound', reason: 'identity' });
      logger.debug({ err: err.message, remote: socket.remoteAddress }, 'inbound peer identity refused');
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      const verify = socket.authorizationError;
      metrics.tlsFailures.inc({ direction: 'inbound', reason: tlsFailureReason(err, verify) });
      logger.debug({ err: err.message, code: err.code, verify: String(verify ?? ''), remote: socket.remoteAddress }, 'inbound TLS handshake failed');
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.destroyed) return;
      handler.accept(socket);
      this.h1.accept(socket);
      metrics.connections.inc({ direction: 'inbound' });
      socket.once('close', () => metrics.connections.dec({ direction: 'inbound' }));
    });
    this.removePoolSource = metrics.addPoolSource('inbound', () => this.pools.samples());
  }

  /** Creates the listener and waits until it listens (rejects on EADDRINUSE and the like). */
  static async start(opts: InboundOptions): Promise<InboundProxy> {
    const proxy = new InboundProxy(resolveInboundOptions(opts));
    await proxy.h1.listen(proxy.o.port, proxy.o.host);
    proxy.o.logger.info({ address: proxy.address }, 'inbound proxy listening');
    return proxy;
  }

  /** Where it listens. */
  get address(): { host: string; port: number } {
    const a = this.h1.address;
    return { host: a.address, port: a.port };
  }

  /** True once `close` began. */
  get draining(): boolean {
    return this.h1.draining;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests (and open
   * tunnels) finish for up to `deadlineMs`, then cut the rest and drop the
   * pooled connections to the apps.
   */
  async close(deadlineMs = 10_000): Promise<DrainResult> {
    const result = await this.h1.close(deadlineMs);
    this.pools.close();
    this.removePoolSource();
    if (result.forced > 0) this.o.logger.warn({ forced: result.forced }, 'inbound proxy cut requests at the drain deadline');
    return result;
  }
}
