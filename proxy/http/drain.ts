/**
 * Graceful shutdown of a proxy listener: stop accepting, let requests in
 * flight finish (their responses carry `Connection: close`, so keep-alive
 * callers move to another connection instead of being cut mid-request), close
 * idle connections at once, and at the deadline cut whatever is left,
 * upgraded tunnels included.
 */
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

/** What a drain did. */
export interface DrainResult {
  /** Requests and tunnels still open at the deadline, and cut. */
  readonly forced: number;
}

/**
 * Counts a server's requests (through `wrap`) and tunnels (`trackTunnel`),
 * and closes the server gracefully.
 */
export class ServerDrain {
  private readonly server: HttpServer | HttpsServer;
  private inFlight = 0;
  private readonly tunnels = new Set<Duplex>();
  private isDraining = false;
  private wake: (() => void) | undefined;
  // Bound once: per-request listeners then cost no closure allocation.
  private readonly onResponseClose = (): void => {
    this.inFlight--;
    if (this.wake !== undefined && this.idle) this.wake();
  };

  constructor(server: HttpServer | HttpsServer) {
    this.server = server;
  }

  /**
   * Wraps a request handler so the drain counts its requests and, while
   * draining, answers them with `Connection: close`. Register the result for
   * 'request' and, if the server handles Expect itself, for 'checkContinue'
   * (Node emits that instead of 'request' when it has a listener).
   */
  wrap(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      this.inFlight++;
      res.once('close', this.onResponseClose);
      if (this.isDraining) res.setHeader('connection', 'close');
      handler(req, res);
    };
  }

  /** True once `close` was called. */
  get draining(): boolean {
    return this.isDraining;
  }

  /** Requests not yet answered. */
  get requestsInFlight(): number {
    return this.inFlight;
  }

  /** Upgraded connections currently open. */
  get openTunnels(): number {
    return this.tunnels.size;
  }

  private get idle(): boolean {
    return this.inFlight === 0 && this.tunnels.size === 0;
  }

  /** Registers an upgraded socket so a drain waits for it (and cuts it at the deadline). */
  trackTunnel(socket: Duplex): void {
    this.tunnels.add(socket);
    socket.once('close', () => {
      this.tunnels.delete(socket);
      if (this.wake !== undefined && this.idle) this.wake();
    });
  }

  /** Stops accepting and waits up to `deadlineMs` for in-flight work; then cuts the rest. */
  async close(deadlineMs: number): Promise<DrainResult> {
    this.isDraining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    if (!this.idle) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadlineMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    const forced = this.inFlight + this.tunnels.size;
    for (const socket of this.tunnels) socket.destroy();
    // Responses just finished may leave keep-alive sockets idle; anything else is cut.
    this.server.closeAllConnections();
    await closed;
    return { forced };
  }
}
