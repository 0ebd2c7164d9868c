/**
 * The proxy's admin listener: `/metrics` (the process registry of
 * base/metrics.ts: weft_proxy_* plus Node's process metrics) and `/healthz`
 * (what the `weft-proxy` Consul check probes; 503 once shutdown began, so
 * Consul and Prometheus see a draining proxy before it disappears). Plain
 * node:http: two routes do not need a framework on the proxy's memory budget.
 * At most `maxConnections` connections, like the proxy's other listeners;
 * more are closed at accept and reported to `onDrop`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from '../../base/log.js';

/** A running admin listener. */
export interface MetricsServer {
  readonly address: { host: string; port: number };
  /** From now on /healthz answers 503. */
  setDraining(): void;
  close(): Promise<void>;
}

/** Starts the listener on bind:port. */
export async function startMetricsServer(
  registry: Registry,
  opts: { bind: string; port: number; logger: Logger; maxConnections?: number | undefined; onDrop?: (() => void) | undefined },
): Promise<MetricsServer> {
  let draining = false;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: unknown) => {
          opts.logger.error({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(draining ? 503 : 200, { 'content-type': 'text/plain' }).end(draining ? 'draining\n' : 'ok\n');
    } else {
      res.writeHead(404).end();
    }
  });
  // Scrapers keep connections open; never let one hold shutdown.
  server.keepAliveTimeout = 5_000;
  if (opts.maxConnections !== undefined) server.maxConnections = opts.maxConnections;
  const onDrop = opts.onDrop;
  if (onDrop !== undefined) server.on('drop', () => onDrop());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.bind, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  opts.logger.info({ address: `${a.address}:${a.port}` }, 'metrics listening');
  return {
    address: { host: a.address, port: a.port },
    setDraining: () => {
      draining = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
