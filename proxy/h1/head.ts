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

/** Why a request head is refused before it goes anywhere: the status, a code for logs, the reason for `x-weft-reason`. */
export interface HeadRefusal {
  readonly status: number;
  readonly code: string;
  readonly reason: string;
}

/** `uri-host [":" port]` (RFC 9112 3.2, RFC 3986 3.2.2): an IP literal in brackets or a reg-name; no userinfo, path or space. */
const HOST_VALUE = /^(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?$/;
/** `scheme "://"` of an absolute-form target. */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

const malformed = (code: string): HeadRefusal => ({ status: 400, code, reason: `weft: malformed request (${code})` });
const badRequest = (code: string, reason: string): HeadRefusal => ({ status: 400, code, reason: `weft: ${reason}` });

/**
 * What RFC 9112 makes a server refuse in a request head that llhttp lets
 * through, checked on every listener before the request is queued, so a
 * refused head never reaches a handler, let alone an upstream (llhttp
 * refuses some framing only after it has handed the head over, and accepts
 * other framing the proxy cannot relay):
 *
 * - the version: HTTP/1.0 or 1.1 only; a request line without one (llhttp
 *   reads it as HTTP/0.9) is 400, HTTP/2.0 and the like 505;
 * - the target: origin-form, `*` for OPTIONS, authority-form for CONNECT
 *   (which the listeners then refuse), or absolute-form without userinfo
 *   (RFC 9110 4.2.4); which forms a listener serves is its handler's call;
 * - Host: exactly one for HTTP/1.1, at most one for 1.0, a valid
 *   `host[:port]` (RFC 9112 3.2);
 * - framing: Transfer-Encoding only in HTTP/1.1, never with Content-Length,
 *   chunked exactly once and last (else 400, RFC 9112 6.1); a coding before
 *   it is 501, since the proxy relays chunked only and would otherwise pass
 *   the body on without its coding; Content-Length once, digits only.
 */
export function requestHeadRefusal(major: number, minor: number, method: string, url: string, headers: readonly string[]): HeadRefusal | undefined {
  if (major !== 1 || minor > 1) {
    if (major === 0) return badRequest('BAD_VERSION', 'request line without an HTTP/1.x version');
    return { status: 505, code: 'BAD_VERSION', reason: `weft: HTTP/${major}.${minor} is not served on an HTTP/1.1 connection` };
  }
  if (url.charCodeAt(0) !== 47 /* / */) {
    if (url === '*') {
      if (method !== 'OPTIONS') return badRequest('BAD_TARGET', `"*" is a request target for OPTIONS only, not ${method}`);
    } else if (method !== 'CONNECT') {
      if (!ABSOLUTE_FORM.test(url)) return badRequest('BAD_TARGET', `bad request target ${JSON.stringify(url.slice(0, 100))}`);
      const start = url.indexOf('//') + 2;
      const authority = url.slice(start, end(url, start));
      if (authority.includes('@')) return badRequest('BAD_TARGET', 'a request target with userinfo');
    }
  }
  let hosts = 0;
  let host = '';
  let te: string | undefined;
  let lengths = 0;
  let length = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 4) {
      if (name.toLowerCase() !== 'host') continue;
      hosts++;
      host = headers[i + 1]!;
    } else if (name.length === 17) {
      if (name.toLowerCase() === 'transfer-encoding') te = te === undefined ? headers[i + 1]! : `${te},${headers[i + 1]!}`;
    } else if (name.length === 14 && name.toLowerCase() === 'content-length') {
      lengths++;
      length = headers[i + 1]!;
    }
  }
  if (hosts > 1) return badRequest('BAD_HOST', `${hosts} Host headers`);
  if (hosts === 0 && minor === 1) return badRequest('BAD_HOST', 'an HTTP/1.1 request without Host');
  if (hosts === 1 && !HOST_VALUE.test(host)) return badRequest('BAD_HOST', `invalid Host ${JSON.stringify(host.slice(0, 100))}`);
  if (lengths > 1) return malformed('HPE_UNEXPECTED_CONTENT_LENGTH');
  if (lengths === 1 && (!/^[0-9]{1,15}$/.test(length) || Number(length) > Number.MAX_SAFE_INTEGER)) return malformed('HPE_INVALID_CONTENT_LENGTH');
  if (te === undefined) return undefined;
  if (lengths > 0) return malformed('HPE_UNEXPECTED_CONTENT_LENGTH');
  if (minor === 0) return malformed('HPE_INVALID_TRANSFER_ENCODING');
  const codings: string[] = [];
  for (const element of te.split(',')) {
    const coding = element.split(';')[0]!.trim().toLowerCase();
    if (coding !== '') codings.push(coding);
  }
  const chunked = codings.indexOf('chunked');
  if (chunked === -1 || chunked !== codings.length - 1) return malformed('HPE_INVALID_TRANSFER_ENCODING');
  if (codings.length > 1) {
    return { status: 501, code: 'UNSUPPORTED_TRANSFER_CODING', reason: `weft: transfer coding ${JSON.stringify(codings[0]!.slice(0, 40))} is not implemented (only chunked is relayed)` };
  }
  return undefined;
}

/** Where the authority of an absolute-form target that starts at `from` ends. */
function end(url: string, from: number): number {
  for (let i = from; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 35 /* # */) return i;
  }
  return url.length;
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
