/**
 * Limits every proxy listener applies (h1/server.ts enforces them and
 * answers). Node's parser (llhttp, strict: no lenient flags) refuses request
 * smuggling: Content-Length with
 * Transfer-Encoding, a Transfer-Encoding whose last coding is not chunked
 * (`chunked, identity`), duplicated chunked codings, a space before the colon
 * (`Transfer-Encoding : chunked`), bare LF line ends, bad chunk sizes. We
 * answer 400 (431 for headers over `maxHeaderSize`,
 * 408 for the slowloris timeouts: a slow head, a stalled body) and close the
 * connection, because after a
 * framing error nothing later on that connection can be trusted. The request
 * never reaches routing, so the app never sees it.
 *
 * `maxConnections` bounds the connections of one listener (HAProxy's
 * `maxconn`): beyond it a new connection is closed at accept (Node's
 * `server.maxConnections`, which emits 'drop'), before TLS or HTTP cost
 * anything; the proxy counts it (`weft_proxy_connections_refused_total`).
 */
import { numberOption } from '../options.js';

/** Sizes and timeouts of a listener. */
export interface HttpLimits {
  /** Largest request head (request line + headers) in bytes; more is 431. Default 16 KiB (Node's). */
  readonly maxHeaderSizeBytes: number;
  /** Time to receive the complete request head; slower is 408 (slowloris). Default 10 s. */
  readonly headersTimeoutMs: number;
  /** Time to receive the complete request including its body. Default 300 s (Node's). */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. Default 60 s. */
  readonly keepAliveTimeoutMs: number;
  /**
   * TLS handshake deadline (HTTPS listeners): the first TLS record must
   * arrive whole within it from accept, then the handshake must finish
   * within it; otherwise the connection is closed. Default 10 s.
   */
  readonly handshakeTimeoutMs: number;
  /**
   * Longest gap between request-body reads while the body is unfinished; then
   * 408 and close (HAProxy's `timeout http-request`, Envoy's
   * `stream_idle_timeout`). Time the proxy itself stops reading (backpressure)
   * does not count. Default 10 s.
   */
  readonly bodyIdleTimeoutMs: number;
  /** Open connections per listener, TLS handshakes included; more are closed at accept. Default 10,000. */
  readonly maxConnections: number;
}

/** Connections per listener (`HttpLimits.maxConnections`); proxy.maxConnections in the configuration. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** Longest gap in a request body (`HttpLimits.bodyIdleTimeoutMs`); proxy.timeouts.bodyIdleMs in the configuration. */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 10_000;

/** Time to receive a complete request head (`HttpLimits.headersTimeoutMs`); proxy.timeouts.headMs in the configuration. */
export const DEFAULT_HEAD_TIMEOUT_MS = 10_000;

/** TLS handshake deadline (`HttpLimits.handshakeTimeoutMs`); proxy.timeouts.handshakeMs in the configuration. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Defaults, in the one place they are decided. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  maxHeaderSizeBytes: 16 * 1024,
  headersTimeoutMs: DEFAULT_HEAD_TIMEOUT_MS,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 60_000,
  handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
  bodyIdleTimeoutMs: DEFAULT_BODY_IDLE_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
});

/** Fills and checks limits (WEFT_ERR_CONFIG_INVALID names the bad knob). */
export function httpLimits(opts: Partial<HttpLimits> = {}): HttpLimits {
  const d = DEFAULT_HTTP_LIMITS;
  const ms = { min: 1, integer: true };
  const limits: HttpLimits = {
    maxHeaderSizeBytes: numberOption('maxHeaderSizeBytes', opts.maxHeaderSizeBytes, d.maxHeaderSizeBytes, { min: 1024, max: 1024 * 1024, integer: true }),
    headersTimeoutMs: numberOption('headersTimeoutMs', opts.headersTimeoutMs, d.headersTimeoutMs, ms),
    requestTimeoutMs: numberOption('requestTimeoutMs', opts.requestTimeoutMs, d.requestTimeoutMs, { min: 0, integer: true }),
    keepAliveTimeoutMs: numberOption('keepAliveTimeoutMs', opts.keepAliveTimeoutMs, d.keepAliveTimeoutMs, ms),
    handshakeTimeoutMs: numberOption('handshakeTimeoutMs', opts.handshakeTimeoutMs, d.handshakeTimeoutMs, ms),
    bodyIdleTimeoutMs: numberOption('bodyIdleTimeoutMs', opts.bodyIdleTimeoutMs, d.bodyIdleTimeoutMs, ms),
    maxConnections: numberOption('maxConnections', opts.maxConnections, d.maxConnections, { min: 1, integer: true }),
  };
  // Node requires headersTimeout <= requestTimeout (0 disables the latter).
  if (limits.requestTimeoutMs !== 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    return { ...limits, headersTimeoutMs: limits.requestTimeoutMs };
  }
  return limits;
}
