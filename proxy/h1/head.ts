/**
 * Request and response heads as the raw-socket data path handles them:
 * headers stay the flat [name, value, name, value, ...] list llhttp gives,
 * names as the sender wrote them, and an outgoing head is built as one
 * string. The hygiene rules are those of http/headers.ts (hop-by-hop and
 * Connection-nominated headers dropped, X-Forwarded-* per trust), applied in
 * one pass without an object per request.
 */
import { STATUS_CODES } from 'node:http';
import { connectionNominated, type CompiledRequestPolicy, HOP_BY_HOP } from '../http/headers.js';

/** How a message's body is delimited. */
export const Framing = {
  /** No body. */
  None: 0,
  /** Content-Length bytes. */
  Length: 1,
  /** Chunked transfer coding. */
  Chunked: 2,
  /** Until the connection closes (responses only). */
  Eof: 3,
} as const;
export type Framing = (typeof Framing)[keyof typeof Framing];

/** The value of header `lower` (a lower-case name), repeated values joined with ", "; undefined when absent. */
export function headerValue(headers: readonly string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== lower.length || name.toLowerCase() !== lower) continue;
    out = out === undefined ? headers[i + 1]! : `${out}, ${headers[i + 1]!}`;
  }
  return out;
}

/** How a request's body is framed (llhttp has already refused ambiguous framings). */
export function requestFraming(headers: readonly string[]): { framing: Framing; length: number } {
  let length = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return { framing: Framing.Chunked, length: -1 };
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(headers[i + 1]);
  }
  return length > 0 ? { framing: Framing.Length, length } : { framing: Framing.None, length: 0 };
}

/**
 * How a response's body is framed, given the request method and status
 * (RFC 9112 6.3): HEAD, 1xx, 204 and 304 have none whatever they declare.
 */
export function responseFraming(headers: readonly string[], status: number, head: boolean): { framing: Framing; length: number } {
  let length = -1;
  let chunked = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') chunked = true;
    else if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(headers[i + 1]);
  }
  if (head || status < 200 || status === 204 || status === 304) return { framing: Framing.None, length };
  if (chunked) return { framing: Framing.Chunked, length: -1 };
  if (length >= 0) return { framing: Framing.Length, length };
  return { framing: Framing.Eof, length: -1 };
}

/**
 * The end-to-end header lines of a request ("name: value\r\n" each): the
 * policy's skip set, Connection-nominated names, framing headers (the caller
 * writes its own) and `host` (ditto) left out, X-Forwarded-For / -Proto set
 * per the policy. `client` is the caller's address as this proxy saw it.
 */
export function requestLines(headers: readonly string[], policy: CompiledRequestPolicy, client: string): string {
  const nominated = nominatedIn(headers);
  const skip = policy.skip;
  let lines = '';
  let xff: string | undefined;
  let xfp: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const lower = name.toLowerCase();
    if (lower === 'host' || lower === 'content-length') continue;
    if (policy.trustForwarded) {
      if (lower === 'x-forwarded-for') {
        xff = xff === undefined ? headers[i + 1]! : `${xff}, ${headers[i + 1]!}`;
        continue;
      }
      if (lower === 'x-forwarded-proto') {
        xfp ??= headers[i + 1]!;
        continue;
      }
    }
    if (skip.has(lower) || nominated?.has(lower)) continue;
    lines += `${name}: ${headers[i + 1]!}\r\n`;
  }
  if (policy.trustForwarded) {
    lines += `x-forwarded-for: ${xff === undefined || xff === '' ? client : `${xff}, ${client}`}\r\nx-forwarded-proto: ${xfp === undefined || xfp === '' ? policy.proto : xfp}\r\n`;
  } else {
    lines += `x-forwarded-for: ${client}\r\nx-forwarded-proto: ${policy.proto}\r\n`;
  }
  return lines;
}

/** The end-to-end header lines of a response, framing headers left out (the writer adds its own). */
export function responseLines(headers: readonly string[]): string {
  const nominated = nominatedIn(headers);
  let lines = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const lower = name.toLowerCase();
    if (lower === 'content-length' || HOP_BY_HOP.has(lower) || nominated?.has(lower)) continue;
    lines += `${name}: ${headers[i + 1]!}\r\n`;
  }
  return lines;
}

/** All header lines as they came (a 101's Connection and Upgrade are the point of it). */
export function allLines(headers: readonly string[]): string {
  let lines = '';
  for (let i = 0; i < headers.length; i += 2) lines += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
  return lines;
}

function nominatedIn(headers: readonly string[]): Set<string> | undefined {
  const connection = headerValue(headers, 'connection');
  return connection === undefined ? undefined : connectionNominated(connection);
}

/** `HTTP/1.1 <status> <text>\r\n`; an empty or unsafe text becomes the standard one. */
export function statusLine(status: number, text: string | undefined): string {
  const safe = text !== undefined && text !== '' && /^[\t\x20-\x7e\x80-\xff]*$/.test(text) ? text : (STATUS_CODES[status] ?? '');
  return `HTTP/1.1 ${status} ${safe}\r\n`;
}

export const CRLF = Buffer.from('\r\n');
/** The last chunk of a chunked body (no trailers). */
export const CHUNK_END = Buffer.from('0\r\n\r\n');

/** The size line of a chunk of `length` bytes. */
export function chunkHead(length: number): Buffer {
  return Buffer.from(`${length.toString(16)}\r\n`, 'latin1');
}

/** The framing header line for a body of `framing` (and `length`). */
export function framingLine(framing: Framing, length: number): string {
  if (framing === Framing.Length) return `content-length: ${length}\r\n`;
  if (framing === Framing.Chunked) return 'transfer-encoding: chunked\r\n';
  return '';
}
