/**
 * Answers the proxy gives itself (403 denied, 502 upstream down, 400 bad
 * request...): the status, the reason in `x-weft-reason` for tools and a
 * short text body for people, as raw bytes (h1/server.ts answers with them;
 * tunnels use them on sockets that have left HTTP).
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** The header that carries why the proxy answered instead of the app. */
export const REASON_HEADER = 'x-weft-reason';

/** Replaces anything that is not printable ASCII: a reason may quote caller input (a header, an SNI name). */
export function headerSafe(reason: string): string {
  return reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 512);
}

/** A complete `Connection: close` response as bytes, for a raw socket. */
export function rawResponse(status: number, reason: string): string {
  const safe = headerSafe(reason);
  const body = `${safe}\n`;
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    `${REASON_HEADER}: ${safe}\r\n` +
    'content-type: text/plain; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

/** Writes `rawResponse` and closes the socket once it is flushed (destroyed after 1 s if the peer never reads). */
export function rawReplyAndClose(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawResponse(status, reason));
  setTimeout(() => socket.destroy(), 1000).unref();
}
