/**
 * The inbound listener: one TLS server for every local service of the host.
 *
 *   accept   at most `limits.maxConnections` open (handshakes included); beyond, closed at
 *            accept and counted (weft_proxy_connections_refused_total{listener="inbound"});
 *            a plain TCP socket until its first TLS record arrived whole: no TLS state for a
 *            connection that sends nothing or a few bytes, closed after
 *            `limits.handshakeTimeoutMs` (counted as a timeout)
 *   TLS      SNI = destination service -> its certificate (InboundTls.contextFor);
 *            no SNI or a service not on this host fails the handshake;
 *            client certificate required, chain checked by OpenSSL against the bundle,
 *            then the SPIFFE ID by the guard (InboundTls.guard) before HTTP sees the socket;
 *            a handshake not done within `limits.handshakeTimeoutMs`, or failed, closes the socket
 *   HTTP     h1/server.ts: llhttp, strict; smuggling 400, big heads 431, slow heads 408,
 *            all with a closed connection
 *   route    handler.ts: intentions -> local instance -> forward / upgrade
 *   close    stop accepting, finish in flight (Connection: close), cut at the deadline
 */
import net, { type Socket } from 'node:net';
import tls, { type SecureContext, type TLSSocket } from 'node:tls';
import { H1Server } from '../h1/server.js';
import { timeoutPhase, tlsFailureReason } from '../metrics.js';
import { AppPools } from './app-pools.js';
import { InboundHandler } from './handler.js';
import { FLOOD_CONNECTIONS, type InboundOptions, type ResolvedInboundOptions, resolveInboundOptions } from './options.js';

/** What a drain did. */
export interface DrainResult {
  /** Requests and tunnels still open at the deadline, and cut. */
  readonly forced: number;
}

/** A running inbound listener. Start with `InboundProxy.start`. */
export class InboundProxy {
  /** The TLS side; it never listens: `accept` hands it each connection once its first TLS record arrived. */
  readonly server: tls.Server;
  /** The listening socket. */
  private readonly listener: net.Server;
  private readonly o: ResolvedInboundOptions;
  private readonly h1: H1Server;
  private readonly pools: AppPools;
  private readonly removePoolSource: () => void;
  /** Accepted TCP connections not yet closed, TLS handshakes in progress included. */
  private open = 0;
  /** Connections whose first TLS record has not arrived yet (closed at once by `close`). */
  private readonly beforeTls = new Set<Socket>();
  /** Connections closed without a finished handshake since the last quiet second. */
  private unfinished = 0;
  /** Fires a second after the last of them (`collectGarbage`). */
  private quiet: NodeJS.Timeout | undefined;

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
    this.listener = net.createServer();
    this.h1 = new H1Server(
      this.listener,
      {
        onRequest: handler.onRequest,
        onUpgrade: handler.onUpgrade,
        onClientError: (status, code) => {
          if (status !== 0) metrics.protocolErrors.inc({ direction: 'inbound', code: String(status) });
          const phase = timeoutPhase(code);
          if (phase !== undefined) metrics.clientTimeouts.inc({ direction: 'inbound', phase });
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
      // Node leaves the socket open after a failed or timed-out handshake (it only reports it):
      // a connection that stops mid-handshake would hold its descriptor and TLS state forever.
      socket.destroy();
      this.noteUnfinished();
    });
    // Node counts connections from accept (server._connections, handshakes included) and closes
    // the one over the limit at once ('drop'), before anything is allocated for it.
    this.listener.maxConnections = limits.maxConnections;
    this.listener.on('drop', () => {
      metrics.connectionsRefused.inc({ listener: 'inbound', reason: 'max_connections' });
    });
    this.listener.on('connection', (raw: Socket) => this.accept(raw));
    this.server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.destroyed) return;
      handler.accept(socket);
      this.h1.accept(socket);
    });
    this.removePoolSource = metrics.addPoolSource('inbound', () => this.pools.samples());
  }

  /**
   * A new TCP connection. Until its first TLS record (the ClientHello) has
   * arrived whole it is only a socket and the bytes it sent: TLS state (a
   * TLSSocket, OpenSSL's SSL object and buffers, ~50 KB a connection, much
   * of which glibc keeps after it is freed) is created for a connection that
   * has shown it speaks TLS, so a flood of connections that send nothing or
   * a few bytes costs little and leaves little behind. One without that
   * record within the handshake timeout (absolute, from accept: trickling
   * bytes does not extend it) is closed and counted as a handshake timeout;
   * then the TLS handshake has the same time again (Node's
   * `handshakeTimeout`, ending in 'tlsClientError'). Bytes that are not a
   * TLS handshake record (plain HTTP, say) go to TLS at once, which refuses
   * them with its own reason.
   */
  private accept(raw: Socket): void {
    const { metrics, logger } = this.o;
    this.open++;
    this.beforeTls.add(raw);
    metrics.connections.inc({ direction: 'inbound' });
    const chunks: Buffer[] = [];
    let size = 0;
    const deadline = setTimeout(() => {
      metrics.tlsFailures.inc({ direction: 'inbound', reason: 'timeout' });
      logger.debug({ remote: raw.remoteAddress, bytes: size }, 'inbound connection sent no whole TLS record in time: closed');
      raw.destroy();
      this.noteUnfinished();
    }, this.o.limits.handshakeTimeoutMs);
    deadline.unref();
    raw.once('close', () => {
      clearTimeout(deadline);
      this.open--;
      this.beforeTls.delete(raw);
      metrics.connections.dec({ direction: 'inbound' });
    });
    raw.on('error', noop); // a reset before TLS: 'close' follows; TLS adds its own listener after
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (firstRecordMissing(chunks, size) > 0) return;
      clearTimeout(deadline);
      raw.off('data', onData);
      raw.pause();
      this.beforeTls.delete(raw);
      // The TLS socket reads what is buffered first (Node replays a wrapped socket's buffer).
      raw.unshift(chunks.length === 1 ? chunk : Buffer.concat(chunks, size));
      this.server.emit('connection', raw);
    };
    raw.on('data', onData);
  }

  /**
   * Counts a connection closed without a finished handshake; a second after
   * the last of at least FLOOD_CONNECTIONS, the flood is over and V8 is asked
   * to collect what it left (one full collection per flood: a pause of tens
   * of ms, against ~15 MB per 5,000 connections kept until V8's next one).
   */
  private noteUnfinished(): void {
    const collect = this.o.collectGarbage;
    if (collect === undefined) return;
    this.unfinished++;
    if (this.quiet !== undefined) {
      this.quiet.refresh();
      return;
    }
    this.quiet = setTimeout(() => {
      this.quiet = undefined;
      const n = this.unfinished;
      this.unfinished = 0;
      if (n < FLOOD_CONNECTIONS) return;
      this.o.logger.info({ connections: n }, 'inbound: a flood of unfinished handshakes ended, collecting the memory it left');
      collect();
    }, 1000);
    this.quiet.unref();
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

  /** TCP connections open on the listener, TLS handshakes in progress included. */
  get openConnections(): number {
    return this.open;
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
    // Connections that never spoke would otherwise hold the listener's close until their timeout.
    for (const raw of this.beforeTls) raw.destroy();
    if (this.quiet !== undefined) clearTimeout(this.quiet);
    const result = await this.h1.close(deadlineMs);
    this.pools.close();
    this.removePoolSource();
    if (result.forced > 0) this.o.logger.warn({ forced: result.forced }, 'inbound proxy cut requests at the drain deadline');
    return result;
  }
}

const noop = (): void => {};

/** TLS's largest record body (2^14) plus the expansion TLS 1.2 allows a ciphertext; a longer "record" is not TLS. */
const MAX_RECORD = 16_384 + 2_048;

/**
 * How many bytes the connection's first TLS record still lacks (0: hand it
 * to TLS now). Not a handshake record (content type 22) or an impossible
 * length: 0, TLS refuses it with its own reason.
 */
export function firstRecordMissing(chunks: readonly Buffer[], size: number): number {
  const at = (i: number): number => {
    for (const c of chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    return -1;
  };
  if (at(0) !== 0x16) return 0;
  if (size < 5) return 5 - size;
  const length = (at(3) << 8) | at(4);
  if (length === 0 || length > MAX_RECORD) return 0;
  return Math.max(0, 5 + length - size);
}

/**
 * A full garbage collection that also gives the freed heap back to the
 * system, for the inbound's clean-up after a flood of unfinished handshakes
 * (`InboundOptions.collectGarbage`): the inspector's
 * HeapProfiler.collectGarbage over an in-process session (no flag, no port;
 * `gc()` of --expose-gc frees the objects but keeps the heap's pages). The
 * module is loaded on first use; a Node built without the inspector skips it.
 * Resolves once the collection ran.
 */
export function collectAllGarbage(): Promise<void> {
  return import('node:inspector').then(
    ({ Session }) =>
      new Promise<void>((resolve) => {
        const session = new Session();
        session.connect();
        // Disconnecting inside the callback deadlocks the process (the agent still holds its lock there): next turn.
        session.post('HeapProfiler.collectGarbage', () =>
          setImmediate(() => {
            session.disconnect();
            resolve();
          }),
        );
      }),
    () => {},
  );
}
