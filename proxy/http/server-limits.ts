/**
 * Limits every proxy listener applies (h1/server.ts enforces them and
 * answers). Node's parser (llhttp, strict: no lenient flags) refuses request
 * smuggling: Content-Length with
 * Transfer-Encoding, a Transfer-Encoding whose last coding is not chunked
 * (`chunked, identity`), duplicated chunked codings, a space before the colon
 * (`Transfer-Encoding : chunked`), bare LF line ends, bad chunk sizes. We
 * answer 400 (431 for headers over `maxHeaderSize`,
 * 408 for the slowloris timeouts) and close the connection, because after a
 * framing error nothing later on that connection can be trusted. The request
 * never reaches routing, so the app never sees it.
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
  /** TLS handshake deadline (HTTPS listeners). Default 10 s. */
  readonly handshakeTimeoutMs: number;
}

/** Defaults, in the one place they are decided. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  maxHeaderSizeBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 300_000,
  keepAliveTimeoutMs: 60_000,
  handshakeTimeoutMs: 10_000,
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
  };
  // Node requires headersTimeout <= requestTimeout (0 disables the latter).
  if (limits.requestTimeoutMs !== 0 && limits.headersTimeoutMs > limits.requestTimeoutMs) {
    return { ...limits, headersTimeoutMs: limits.requestTimeoutMs };
  }
  return limits;
}
