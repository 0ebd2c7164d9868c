/**
 * Limits every proxy listener applies, and what it answers when a caller
 * breaks them. Node's parser (llhttp, strict because `insecureHTTPParser` is
 * false) already refuses request smuggling: Content-Length with
 * Transfer-Encoding, a Transfer-Encoding whose last coding is not chunked
 * (`chunked, identity`), duplicated chunked codings, a space before the colon
 * (`Transfer-Encoding : chunked`), bare LF line ends, bad chunk sizes. It
 * raises `clientError`; we answer 400 (431 for headers over `maxHeaderSize`,
 * 408 for the slowloris timeouts) and close the connection, because after a
 * framing error nothing later on that connection can be trusted. The request
 * never reaches routing, so the app never sees it.
 */
import type { Server as HttpServer, ServerOptions } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { numberOption } from '../options.js';
import { rawReplyAndClose } from './reply.js';

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

/**
 * Options for http.createServer / https.createServer. Node enforces the two
 * timeouts from a periodic check (30 s by default), so the interval is scaled
 * down with them or a 10 s header timeout could take 40 s to fire.
 */
export function hardenedServerOptions(limits: HttpLimits): ServerOptions & { handshakeTimeout: number } {
  return {
    insecureHTTPParser: false,
    maxHeaderSize: limits.maxHeaderSizeBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    noDelay: true,
    handshakeTimeout: limits.handshakeTimeoutMs,
  };
}

/** Status for a `clientError`: 431, 408, 400, or 0 when the socket just died (reset, EPIPE). */
export function clientErrorStatus(err: Error & { code?: string }): number {
  const code = err.code ?? '';
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return 408;
  if (code.startsWith('HPE_')) return 400;
  return 0;
}

/**
 * Installs the `clientError` answer: status + `x-weft-reason` + close, unless
 * a response is already on the wire (then only close: writing would corrupt
 * it). `onError` sees every case, e.g. to count it.
 */
export function answerClientErrors(server: HttpServer | HttpsServer, onError?: (status: number, err: Error & { code?: string }) => void): void {
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    const status = clientErrorStatus(err);
    onError?.(status, err);
    // Node keeps the response in progress on the socket; only when there is none may we write one.
    const current = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (status === 0 || (current !== undefined && current !== null && current.headersSent === true)) {
      socket.destroy();
      return;
    }
    rawReplyAndClose(socket, status, `weft: ${status === 431 ? 'request headers too large' : status === 408 ? 'request timeout' : `malformed request (${err.code})`}`);
  });
}
