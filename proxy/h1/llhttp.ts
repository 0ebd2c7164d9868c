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
 *
 * This file is the seam: the only one that touches Node internals
 * (test/structure/layering.ts). Node calls them internal and documents
 * `require('node:_http_*')` as deprecated (DEP0199), so `weft proxy` runs
 * `checkParserInternals()` at start and refuses to run, with
 * WEFT_ERR_PROXY_PARSER_UNAVAILABLE, on a Node whose parser lacks what this
 * file uses (proxy/README.md, "The parser seam").
 */
import { createRequire } from 'node:module';
import { WeftError } from '../../base/errors.js';

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

/** What this file takes from Node: two exports of `node:_http_common`, untyped until checked. */
export interface ParserInternals {
  readonly HTTPParser?: unknown;
  readonly methods?: unknown;
}

// Loaded without throwing: a Node without the module must fail in checkParserInternals() with
// the coded error, not with a bare require error when proxy/ is imported.
let loadError: Error | undefined;
const common: ParserInternals | undefined = (() => {
  try {
    return createRequire(import.meta.url)('node:_http_common') as ParserInternals;
  } catch (err) {
    loadError = err as Error;
    return undefined;
  }
})();

/** Stands in for a missing HTTPParser, so a path that skipped the start-up check still fails with the code. */
class MissingParser {
  constructor() {
    throw parserUnavailable([`node:_http_common cannot be loaded (${loadError?.message ?? 'no HTTPParser'})`]);
  }
}

export const HTTPParser: ParserClass = (typeof common?.HTTPParser === 'function' ? common.HTTPParser : MissingParser) as ParserClass;
/** Method names by llhttp's index. */
export const METHODS: readonly string[] = Array.isArray(common?.methods) ? (common.methods as string[]) : [];

/** The callback slots this file installs, by their static name on HTTPParser. */
const CALLBACK_INDICES = ['kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'] as const;
/** Parser methods called here: the first four by every parser, the last three by `feed` on a socket handle. */
const PARSER_METHODS = ['initialize', 'execute', 'finish', 'close', 'consume', 'unconsume', 'getCurrentBuffer'] as const;

function parserUnavailable(problems: readonly string[]): WeftError {
  return new WeftError(
    'WEFT_ERR_PROXY_PARSER_UNAVAILABLE',
    `Node ${process.version}'s internal HTTP parser is not what weft proxy needs: ${problems.join('; ')} (proxy/README.md, "The parser seam")`,
    { key: 'node:_http_common', value: problems },
  );
}

/**
 * What is missing or changed in `internals` (node:_http_common's exports)
 * for this file to work; empty when nothing is. Pure apart from parsing a
 * few heads with the parser it is given, so tests can hand it doctored copies.
 *
 * Shape first (the class, its callback indices, the methods called here),
 * then behaviour, because a renumbered or reordered argument list would
 * pass a shape check and corrupt every request: a short head, a head of 40
 * headers (the kOnHeaders path), an Upgrade with bytes after its head, a
 * malformed head, and a response to HEAD whose body is skipped. The socket
 * side of `consume` needs a live handle and is only checked for presence.
 */
export function parserInternalsProblems(internals: ParserInternals | undefined): string[] {
  if (internals === null || typeof internals !== 'object') return ['node:_http_common exports nothing'];
  const problems: string[] = [];
  const P = internals.HTTPParser as (Record<string, unknown> & (new () => Parser)) | undefined;
  if (typeof P !== 'function') return ['node:_http_common has no HTTPParser class'];
  const methods = internals.methods;
  if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) problems.push('methods is not a list of method names');
  else for (const m of ['GET', 'HEAD', 'POST', 'CONNECT']) if (!methods.includes(m)) problems.push(`methods lacks ${m}`);
  const isIndex = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
  for (const name of ['REQUEST', 'RESPONSE', 'kLenientNone', ...CALLBACK_INDICES]) {
    if (!isIndex(P[name])) problems.push(`HTTPParser.${name} is not an index (got ${String(P[name])})`);
  }
  if (isIndex(P['REQUEST']) && P['REQUEST'] === P['RESPONSE']) problems.push('HTTPParser.REQUEST and RESPONSE are the same');
  const slots = CALLBACK_INDICES.map((k) => P[k]);
  if (new Set(slots).size !== slots.length) problems.push(`HTTPParser's callback indices are not distinct (${slots.join(', ')})`);
  const proto = (P as { prototype?: Record<string, unknown> }).prototype;
  for (const m of PARSER_METHODS) if (typeof proto?.[m] !== 'function') problems.push(`HTTPParser.prototype.${m} is not a function`);
  if (problems.length > 0) return problems;
  try {
    probe(P as unknown as ParserClass, methods as string[], problems);
  } catch (err) {
    problems.push(`parsing a probe head threw: ${(err as Error).message}`);
  }
  return problems;
}

/** What the parser reported for one probe. */
interface Seen {
  heads: Array<{ major: number; minor: number; headers: string[]; method: string; url: string; status: number; text: string | undefined; upgrade: boolean; keepAlive: boolean }>;
  body: string;
  completes: number;
}

function probe(P: ParserClass, methods: readonly string[], problems: string[]): void {
  const run = (type: number, input: string, skipBody: boolean): { seen: Seen; ret: ReturnType<Parser['execute']> } => {
    const parser = new P();
    parser.initialize(type, {}, 0, P.kLenientNone);
    const seen: Seen = { heads: [], body: '', completes: 0 };
    // Heads are assembled as the data path assembles them, so the probe checks that code too.
    assembleHeads(P, parser, (minor, headers, method, url, status, text, upgrade, keepAlive, major) => {
      seen.heads.push({ major, minor, headers, method: methods[method] ?? String(method), url, status, text, upgrade, keepAlive });
      return skipBody ? 1 : 0;
    });
    parser[P.kOnBody] = (chunk: Buffer) => {
      seen.body += Buffer.isBuffer(chunk) ? chunk.toString('latin1') : `<${typeof chunk}>`;
    };
    parser[P.kOnMessageComplete] = () => {
      seen.completes++;
    };
    try {
      return { seen, ret: parser.execute(Buffer.from(input, 'latin1')) };
    } finally {
      // Not inside one of its callbacks here, so the native half can go at once (see releaseParser).
      parser.close();
    }
  };
  const expect = (what: string, got: unknown, want: unknown): void => {
    const a = JSON.stringify(got);
    const b = JSON.stringify(want);
    if (a !== b) problems.push(`${what}: expected ${b}, got ${a}`);
  };

  const small = 'POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok';
  const a = run(P.REQUEST, small, false);
  expect('execute() on a whole request', a.ret, small.length);
  // A request's status and status text are whatever the binding passes (undefined today): not read, not checked.
  expect(
    'kOnHeadersComplete on a small request (major and minor version, headers, method, url, upgrade, keep-alive)',
    a.seen.heads.map((h) => [h.major, h.minor, h.headers, h.method, h.url, h.upgrade, h.keepAlive]),
    [[1, 1, ['Host', 'a', 'Content-Length', '2'], 'POST', '/p?q=1', false, true]],
  );
  expect('kOnBody / kOnMessageComplete', [a.seen.body, a.seen.completes], ['ok', 1]);

  const many: string[] = [];
  for (let i = 0; i < 40; i++) many.push(`X-H${i}`, `v${i}`);
  const big = `GET /many HTTP/1.1\r\n${many.map((v, i) => (i % 2 === 0 ? `${v}: ` : `${v}\r\n`)).join('')}\r\n`;
  const b = run(P.REQUEST, big, false);
  expect('a head of 40 headers (kOnHeaders)', [b.seen.heads[0]?.headers, b.seen.heads[0]?.url, b.seen.completes], [many, '/many', 1]);

  const up = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n';
  const c = run(P.REQUEST, `${up}XYZ`, false);
  expect('an Upgrade head (execute() stops where the tunnel starts)', [c.ret, c.seen.heads[0]?.upgrade], [up.length, true]);

  const d = run(P.REQUEST, 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', false);
  const code = typeof d.ret === 'number' ? undefined : d.ret.code;
  if (typeof code !== 'string' || !code.startsWith('HPE_')) problems.push(`a malformed head: expected an Error with an HPE_ code, got ${JSON.stringify(typeof d.ret === 'number' ? d.ret : { code })}`);

  const e = run(P.RESPONSE, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n', true);
  expect('a response to HEAD (returning 1 skips the body)', [e.seen.heads.map((h) => [h.status, h.text]), e.seen.body, e.seen.completes], [[[200, 'OK'], [204, 'No Content']], '', 2]);
}

let checked = false;

/**
 * The start-up self-check: throws WEFT_ERR_PROXY_PARSER_UNAVAILABLE naming
 * every problem when this Node's internal parser is missing or changed.
 * `weft proxy` calls it before it listens, so an unsupported Node stops the
 * proxy at once instead of failing on its first request.
 */
export function checkParserInternals(): void {
  if (checked) return;
  if (common === undefined) throw parserUnavailable([`node:_http_common cannot be loaded (${loadError?.message ?? 'unknown error'})`]);
  verifyParserInternals(common);
  checked = true;
}

/** `checkParserInternals` on the `internals` given: the pure form, which tests hand doctored copies. */
export function verifyParserInternals(internals: ParserInternals | undefined): void {
  const problems = parserInternalsProblems(internals);
  if (problems.length > 0) throw parserUnavailable(problems);
}

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

/**
 * A complete head: what kOnHeadersComplete gives, with headers and url
 * assembled when they came in pieces. The major version comes last (most
 * callers read the minor only; the server refuses anything but HTTP/1.x).
 */
export type OnHead = (
  versionMinor: number,
  headers: string[],
  method: number,
  url: string,
  statusCode: number,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
  versionMajor: number,
) => number;

/**
 * Installs `onHead` on `parser`. llhttp hands over a long head (more than
 * 32 header lines) in pieces through kOnHeaders, then kOnHeadersComplete
 * without headers and url; this joins them.
 */
export function onHeadComplete(parser: Parser, onHead: OnHead): void {
  assembleHeads(HTTPParser, parser, onHead);
}

/** `onHeadComplete` with the callback slots of `P` (the start-up check runs it on the class it checks). */
function assembleHeads(P: ParserClass, parser: Parser, onHead: OnHead): void {
  let pendingHeaders: string[] | undefined;
  let pendingUrl = '';
  parser[P.kOnHeaders] = (headers: string[], url: string) => {
    if (pendingHeaders === undefined) pendingHeaders = [];
    pendingHeaders.push(...headers);
    pendingUrl += url;
  };
  parser[P.kOnHeadersComplete] = ((major, minor, headers, method, url, status, text, upgrade, keepAlive) => {
    const h = headers ?? pendingHeaders ?? [];
    const u = url ?? pendingUrl;
    pendingHeaders = undefined;
    pendingUrl = '';
    return onHead(minor, h, method, u, status, text, upgrade, keepAlive, major);
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
  /** Hands the socket back to JavaScript reads (before it becomes a tunnel); no more parsing, and the parser is released. */
  detach(): void;
}

/**
 * Deletes the parser's native half once the current call stack (maybe one
 * of its own callbacks) has unwound, as Node's server does. Needed: the
 * native parser holds its JavaScript object strongly, so a parser never
 * closed keeps its callbacks, and through them the connection and its
 * socket, alive for the life of the process.
 */
export function releaseParser(parser: Parser): void {
  setImmediate(() => parser.close());
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
 * fills the stream buffer that would otherwise stop it. The parser is
 * released on `detach()` or when the socket closes, whichever comes first.
 */
export function feed(parser: Parser, socket: import('node:net').Socket, onExecute: (ret: number | (Error & { code?: string }), chunk: Buffer | undefined) => void): Feed {
  const handle = (socket as unknown as { _handle?: StreamHandle | null })._handle;
  let paused = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    releaseParser(parser);
  };
  socket.once('close', () => {
    // Unconsumed first, as Node's server does, so the handle forgets the parser before it is deleted.
    detach(false);
    release();
  });
  /** Stops feeding the parser; `restart` turns JavaScript reads back on (not on a closed socket). */
  let detach: (restart: boolean) => void;
  // The handle's own read controls are checked per socket (they belong to its class, not to
  // _http_common); without them the parser is fed from 'data' events instead.
  if (handle?.isStreamBase === true && handle._consumed !== true && typeof handle.readStop === 'function' && typeof handle.readStart === 'function') {
    handle._consumed = true;
    (parser as unknown as { consume(h: StreamHandle): void }).consume(handle);
    parser[HTTPParser.kOnExecute] = (ret: number | Error) => onExecute(ret, undefined);
    // Reading starts when the stream flows; the handle then hands every read to the parser.
    socket.resume();
    let attached = true;
    detach = (restart) => {
      if (!attached) return;
      attached = false;
      (parser as unknown as { unconsume(): void }).unconsume();
      handle._consumed = false;
      if (paused && restart) {
        paused = false;
        handle.reading = true;
        handle.readStart();
      }
    };
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
        detach(true);
        release();
      },
    };
  }
  const onData = (chunk: Buffer): void => onExecute(parser.execute(chunk), chunk);
  socket.on('data', onData);
  detach = () => {
    socket.off('data', onData);
  };
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
      detach(true);
      release();
    },
  };
}
