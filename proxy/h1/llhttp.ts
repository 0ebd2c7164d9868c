/**
 * Node's own HTTP/1 parser (llhttp, the one `http.Server` and `http.request`
 * run), used directly on raw sockets. `_http_common` is how Node's http
 * modules reach it; it is requirable from user land and stable across Node
 * 20's releases (the callback indices below are read from the class, not
 * hard-coded). Same parser, same strictness: every request-smuggling vector
 * `http.Server` refuses is refused here (test/proxy/http/smuggling.test.ts).
 *
 * Why not http.Server and a client library: per request they build an
 * IncomingMessage, a ServerResponse, a header object or two, streams and
 * their events; for a proxy that only relays bytes that was most of its
 * CPU (proxy/README.md, "The data path").
 */
import { createRequire } from 'node:module';

/** llhttp's callbacks, as Node's binding calls them. */
export interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  close(): void;
  free(): void;
  remove(): void;
  [key: number]: unknown;
}

interface ParserClass {
  new (): Parser;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly kOnMessageBegin: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kOnExecute: number;
  readonly kOnTimeout: number;
  readonly kLenientNone: number;
}

const common = createRequire(import.meta.url)('node:_http_common') as { HTTPParser: ParserClass; methods: string[] };

export const HTTPParser: ParserClass = common.HTTPParser;
/** Method names by llhttp's index. */
export const METHODS: readonly string[] = common.methods;

/**
 * kOnHeadersComplete's arguments: (versionMajor, versionMinor, headers
 * [name, value, ...] or undefined when they came through kOnHeaders, method
 * index, url, statusCode, statusMessage, upgrade, shouldKeepAlive). Return 1
 * to tell the parser the message has no body (a response to HEAD).
 */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number,
  url: string | undefined,
  statusCode: number,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number | undefined;

/** A complete head: what kOnHeadersComplete gives, with headers and url assembled when they came in pieces. */
export type OnHead = (
  versionMinor: number,
  headers: string[],
  method: number,
  url: string,
  statusCode: number,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number;

/**
 * Installs `onHead` on `parser`. llhttp hands over a long head (more than
 * 32 header lines) in pieces through kOnHeaders, then kOnHeadersComplete
 * without headers and url; this joins them.
 */
export function onHeadComplete(parser: Parser, onHead: OnHead): void {
  let pendingHeaders: string[] | undefined;
  let pendingUrl = '';
  parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
    if (pendingHeaders === undefined) pendingHeaders = [];
    pendingHeaders.push(...headers);
    pendingUrl += url;
  };
  parser[HTTPParser.kOnHeadersComplete] = ((_maj, minor, headers, method, url, status, text, upgrade, keepAlive) => {
    const h = headers ?? pendingHeaders ?? [];
    const u = url ?? pendingUrl;
    pendingHeaders = undefined;
    pendingUrl = '';
    return onHead(minor, h, method, u, status, text, upgrade, keepAlive);
  }) satisfies OnHeadersComplete;
}

/** A parser of `type` with no header-size limit beyond `maxHeaderSize` (0: Node's default, 16 KiB). */
export function newParser(type: number, maxHeaderSize: number): Parser {
  const parser = new HTTPParser();
  parser.initialize(type, {}, maxHeaderSize, HTTPParser.kLenientNone);
  return parser;
}

/** How bytes get from a socket to its parser, and how reading is paused. */
export interface Feed {
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** The bytes of the read being parsed now (for what follows an upgrade head). */
  current(chunk: Buffer | undefined): Buffer;
  /** Hands the socket back to JavaScript reads (before it becomes a tunnel); no more parsing. */
  detach(): void;
}

interface StreamHandle {
  isStreamBase?: boolean;
  _consumed?: boolean;
  reading?: boolean;
  readStop(): number;
  readStart(): number;
}

/**
 * Connects `socket` to `parser`. Where the socket's handle allows it (TCP
 * and TLS both do), the parser reads straight from the handle in C++, as
 * Node's own server does (`parser.consume`): no Buffer, 'data' event or
 * stream bookkeeping per read. `onExecute(ret, chunk)` runs after each
 * read was parsed (`chunk` only when reads go through 'data' events).
 * Reading is paused on the handle itself, since a consumed stream never
 * fills the stream buffer that would otherwise stop it.
 */
export function feed(parser: Parser, socket: import('node:net').Socket, onExecute: (ret: number | (Error & { code?: string }), chunk: Buffer | undefined) => void): Feed {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  let paused = false;
  if (handle?.isStreamBase === true && handle._consumed !== true) {
    handle._consumed = true;
    (parser as unknown as { consume(h: StreamHandle): void }).consume(handle);
    parser[HTTPParser.kOnExecute] = (ret: number | Error) => onExecute(ret, undefined);
    // Reading starts when the stream flows; the handle then hands every read to the parser.
    socket.resume();
    let attached = true;
    return {
      pause() {
        if (paused || !attached) return;
        paused = true;
        handle.reading = false;
        handle.readStop();
      },
      resume() {
        if (!paused || !attached) return;
        paused = false;
        handle.reading = true;
        handle.readStart();
      },
      get paused() {
        return paused;
      },
      current() {
        return (parser as unknown as { getCurrentBuffer(): Buffer }).getCurrentBuffer();
      },
      detach() {
        if (!attached) return;
        attached = false;
        (parser as unknown as { unconsume(): void }).unconsume();
        handle._consumed = false;
        if (paused) {
          paused = false;
          handle.reading = true;
          handle.readStart();
        }
      },
    };
  }
  const onData = (chunk: Buffer): void => onExecute(parser.execute(chunk), chunk);
  socket.on('data', onData);
  return {
    pause() {
      paused = true;
      socket.pause();
    },
    resume() {
      paused = false;
      socket.resume();
    },
    get paused() {
      return paused;
    },
    current(chunk) {
      return chunk ?? Buffer.alloc(0);
    },
    detach() {
      socket.off('data', onData);
    },
  };
}
