/**
 * Options of the inbound listener, with defaults decided here once. The
 * collaborators (TLS, intentions, local instances, metrics) come in as the
 * ports of proxy/ports.ts, so this stack never imports certs/ or discovery/.
 */
import { type Logger, silentLogger } from '../../base/log.js';
import { type HttpLimits, httpLimits } from '../http/server-limits.js';
import type { ProxyMetrics } from '../metrics.js';
import { numberOption } from '../options.js';
import type { InboundTls, IntentionSource, LocalServices } from '../ports.js';

/** The inbound mTLS port (ARCHITECTURE.md, Ports). */
export const DEFAULT_INBOUND_PORT = 15443;

/** Header naming the instance the outbound side picked; consumed here, never forwarded. */
export const INSTANCE_HEADER = 'x-weft-instance';

/** Header carrying the caller's verified SPIFFE ID to the app; always set by inbound, never trusted from callers. */
export const SOURCE_HEADER = 'x-weft-source';

/** What `startInbound` takes. */
export interface InboundOptions {
  /** The host's address to listen on (127.0.0.x in tests). */
  host: string;
  /** Default 15443; 0 picks a free port. */
  port?: number;
  tls: InboundTls;
  intentions: IntentionSource;
  local: LocalServices;
  metrics: ProxyMetrics;
  logger?: Logger;
  /** Header sizes and timeouts (proxy/http/server-limits.ts). */
  limits?: Partial<HttpLimits>;
  /** Time the local app has to answer a WebSocket/Upgrade handshake. Default 10 s. */
  upgradeTimeoutMs?: number;
  /**
   * A full garbage collection, run once a flood of connections that
   * never finished their TLS handshake has ended (at least
   * `FLOOD_CONNECTIONS` of them, then a quiet second): what they cost is
   * garbage V8 would otherwise keep until its next full collection. The
   * process wiring passes `collectAllGarbage` (server.ts); none by default.
   */
  collectGarbage?: (() => unknown) | undefined;
}

/** Unfinished handshakes that make a flood (`InboundOptions.collectGarbage`). */
export const FLOOD_CONNECTIONS = 1000;

/** Options after defaults and checks. */
export interface ResolvedInboundOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: InboundTls;
  readonly intentions: IntentionSource;
  readonly local: LocalServices;
  readonly metrics: ProxyMetrics;
  readonly logger: Logger;
  readonly limits: HttpLimits;
  readonly upgradeTimeoutMs: number;
  readonly collectGarbage: (() => unknown) | undefined;
}

/** Applies defaults; WEFT_ERR_CONFIG_INVALID names a bad knob. */
export function resolveInboundOptions(opts: InboundOptions): ResolvedInboundOptions {
  return {
    host: opts.host,
    port: numberOption('proxy.inbound.port', opts.port, DEFAULT_INBOUND_PORT, { min: 0, max: 65535, integer: true }),
    tls: opts.tls,
    intentions: opts.intentions,
    local: opts.local,
    metrics: opts.metrics,
    logger: opts.logger ?? silentLogger,
    limits: httpLimits(opts.limits),
    upgradeTimeoutMs: numberOption('proxy.inbound.upgradeTimeoutMs', opts.upgradeTimeoutMs, 10_000, { min: 1, integer: true }),
    collectGarbage: opts.collectGarbage,
  };
}
