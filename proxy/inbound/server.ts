/**
 * The inbound listener: one HTTPS server for every local service of the host.
 *
 *   TLS      SNI = destination service -> its certificate (InboundTls.contextFor);
 *            no SNI or a service not on this host fails the handshake;
 *            client certificate required, chain checked by OpenSSL against the bundle,
 *            then the SPIFFE ID by the guard (InboundTls.guard) before HTTP sees the socket
 *   HTTP     strict parser and limits (http/server-limits.ts): smuggling 400, big heads 431,
 *            slow heads 408, all with a closed connection
 *   route    handler.ts: intentions -> local instance -> forward / upgrade
 *   close    http/drain.ts: stop accepting, finish in flight, cut at the deadline
 */
import { Agent } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { type DrainResult, ServerDrain } from '../http/drain.js';
import { answerClientErrors, hardenedServerOptions } from '../http/server-limits.js';
import { type PoolSample, tlsFailureReason } from '../metrics.js';
import { AppPools } from './app-pools.js';
import { InboundHandler } from './handler.js';
import { type InboundOptions, type ResolvedInboundOptions, resolveInboundOptions } from './options.js';

/** A running inbound listener. Start with `InboundProxy.start`. */
export class InboundProxy {
  readonly server: Server;
  private readonly o: ResolvedInboundOptions;
  private readonly drain: ServerDrain;
  private readonly agent: Agent;
  private readonly pools: AppPools;
  private readonly removePoolSource: () => void;

  private constructor(o: ResolvedInboundOptions) {
    this.o = o;
    const { metrics, logger, tls } = o;
    this.server = createServer({
      ...tls.serverOptions(),
      ...hardenedServerOptions(o.limits),
      SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => {
        const ctx = tls.contextFor(name);
        if (ctx === undefined) cb(new Error(`no local service for server name ${JSON.stringify(name)}`));
        else cb(null, ctx);
      },
    });
    // The Agent only carries requests with Expect (handler.ts); the pools carry the rest.
    this.agent = new Agent({ keepAlive: true, maxFreeSockets: o.maxIdlePerInstance, scheduling: 'lifo' });
    this.pools = new AppPools();
    this.drain = new ServerDrain(this.server);
    const handler = new InboundHandler(o, this.agent, this.pools, this.drain);

    tls.guard(this.server, (socket, err) => {
      metrics.tlsFailures.inc({ direction: 'inbound', reason: 'identity' });
      logger.debug({ err: err.message, remote: socket.remoteAddress }, 'inbound peer identity refused');
    });
    this.server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      const verify = socket.authorizationError;
      metrics.tlsFailures.inc({ direction: 'inbound', reason: tlsFailureReason(err, verify) });
      logger.debug({ err: err.message, code: err.code, verify: String(verify ?? ''), remote: socket.remoteAddress }, 'inbound TLS handshake failed');
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      handler.accept(socket);
      metrics.connections.inc({ direction: 'inbound' });
      socket.once('close', () => metrics.connections.dec({ direction: 'inbound' }));
    });
    const onRequest = this.drain.wrap(handler.onRequest);
    this.server.on('request', onRequest);
    // Handling Expect ourselves lets the app decide (100 or a final answer such as 417/401) before the body moves.
    this.server.on('checkContinue', onRequest);
    this.server.on('upgrade', handler.onUpgrade);
    answerClientErrors(this.server, (status, err) => {
      if (status !== 0) metrics.protocolErrors.inc({ direction: 'inbound', code: String(status) });
      logger.debug({ err: err.message, code: err.code, status }, 'inbound client error');
    });
    this.removePoolSource = metrics.addPoolSource('inbound', () => [...this.pools.samples(), ...poolSamples(this.agent, handler.poolServices)]);
  }

  /** Creates the listener and waits until it listens (rejects on EADDRINUSE and the like). */
  static async start(opts: InboundOptions): Promise<InboundProxy> {
    const proxy = new InboundProxy(resolveInboundOptions(opts));
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(proxy.o.port, proxy.o.host, () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    proxy.o.logger.info({ address: proxy.address }, 'inbound proxy listening');
    return proxy;
  }

  /** Where it listens. */
  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** True once `close` began. */
  get draining(): boolean {
    return this.drain.draining;
  }

  /**
   * Graceful shutdown: stop accepting, let in-flight requests (and open
   * tunnels) finish for up to `deadlineMs`, then cut the rest and drop the
   * pooled connections to the apps.
   */
  async close(deadlineMs = 10_000): Promise<DrainResult> {
    const result = await this.drain.close(deadlineMs);
    this.agent.destroy();
    this.pools.close();
    this.removePoolSource();
    if (result.forced > 0) this.o.logger.warn({ forced: result.forced }, 'inbound proxy cut requests at the drain deadline');
    return result;
  }
}

function poolSamples(agent: Agent, services: ReadonlyMap<string, string>): PoolSample[] {
  const counts = new Map<string, { active: number; idle: number }>();
  const add = (pools: NodeJS.ReadOnlyDict<unknown[]>, field: 'active' | 'idle'): void => {
    for (const name in pools) {
      // Agent pool names are `host:port:` (plus local address/family when set).
      const [host, port] = name.split(':');
      const service = services.get(`${host}:${port}`) ?? 'unknown';
      let c = counts.get(service);
      if (c === undefined) {
        c = { active: 0, idle: 0 };
        counts.set(service, c);
      }
      c[field] += pools[name]?.length ?? 0;
    }
  };
  add(agent.sockets, 'active');
  add(agent.freeSockets, 'idle');
  return [...counts].map(([destination, c]) => ({ destination, ...c }));
}
