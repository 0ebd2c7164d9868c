/**
 * The listening side of the raw-socket data path: HTTP/1.1 over a net or TLS
 * server, parsed by llhttp (llhttp.ts), with the limits of
 * http/server-limits.ts (431 for big heads, 408 for slow ones, 400 and a
 * closed connection for anything malformed) and a graceful drain.
 *
 * A request is an `H1Request`: its head, its body as it arrives, and the
 * methods to answer it. Pipelined requests queue on their connection and
 * are handed to the handler one at a time, so answers keep their order. A
 * head `requestHeadRefusal` (head.ts) refuses, a parse error or a timeout is
 * answered in its turn, after the requests read before it, and closes the
 * connection; it never reaches the handler.
 * Timeouts are checked by one interval per server, not a timer per
 * request, as Node's own server does.
 */
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { HttpLimits } from '../http/server-limits.js';
import { rawResponse } from '../http/reply.js';
import { CHUNK_END, chunkHead, CRLF, Framing, framingLine, type HeadRefusal, requestFraming, requestHeadRefusal, statusLine } from './head.js';
import { onceDrained } from './drain.js';
import { type Feed, feed, HTTPParser, METHODS, newParser, onHeadComplete } from './llhttp.js';

/** Where a response is. */
const Res = { None: 0, Head: 1, Done: 2 } as const;

/** Receives body bytes of a request. */
export interface BodySink {
  onData(chunk: Buffer): void;
  onEnd(): void;
}

/** What a server does with its requests. */
export interface H1Handler {
  /** A request's head is complete (its body may still be arriving: `setSink`). */
  onRequest(req: H1Request): void;
  /** An Upgrade (or CONNECT) request: the socket leaves HTTP; `head` is what came after the request head. */
  onUpgrade(req: H1Request, socket: Socket, head: Buffer): void;
  /** A connection was refused for malformed input (status 400/431/408) or died (0). */
  onClientError?(status: number, code: string): void;
}

/** One request on a connection, and its answer. */
export class H1Request {
  readonly method: string;
  readonly url: string;
  /** [name, value, ...] as received. */
  readonly headers: string[];
  readonly versionMinor: number;
  readonly keepAlive: boolean;
  readonly upgrade: boolean;
  readonly framing: Framing;
  readonly contentLength: number;
  readonly conn: Connection;
  /** performance.now() when the head was complete. */
  readonly startedAt: number;
  /** The whole body has been received. */
  complete = false;
  /** The client went away (or the connection was cut) before the answer ended. */
  aborted = false;
  /** Called once if the client goes away before the answer has ended. */
  onAbort: (() => void) | undefined;
  #sink: BodySink | undefined;
  #queued: Buffer[] | undefined;
  #res: number = Res.None;
  #resFraming: Framing = Framing.None;
  #close = false;

  constructor(conn: Connection, method: string, url: string, headers: string[], versionMinor: number, keepAlive: boolean, upgrade: boolean) {
    this.conn = conn;
    this.method = method;
    this.url = url;
    this.headers = headers;
    this.versionMinor = versionMinor;
    this.keepAlive = keepAlive;
    this.upgrade = upgrade;
    const f = requestFraming(headers);
    this.framing = f.framing;
    this.contentLength = f.length;
    this.complete = f.framing === Framing.None;
    this.startedAt = performance.now();
  }

  /** The caller's address. */
  get remoteAddress(): string {
    return this.conn.socket.remoteAddress ?? 'unknown';
  }

  /** True once the response head was written. */
  get headersSent(): boolean {
    return this.#res !== Res.None;
  }

  /** True once the answer has ended. */
  get finished(): boolean {
    return this.#res === Res.Done;
  }

  /** Where body bytes go; those that came before are delivered at once. */
  setSink(sink: BodySink): void {
    this.#sink = sink;
    const queued = this.#queued;
    this.#queued = undefined;
    if (queued !== undefined) for (const chunk of queued) sink.onData(chunk);
    if (this.complete) sink.onEnd();
  }

  /** Stop / restart reading from the client (backpressure from the upstream). */
  pause(): void {
    this.conn.feed.pause();
  }
  resume(): void {
    this.conn.feed.resume();
  }

  /** @internal parser callbacks */
  _body(chunk: Buffer): void {
    if (this.#sink !== undefined) this.#sink.onData(chunk);
    else {
      if (this.#queued === undefined) this.#queued = [];
      this.#queued.push(chunk);
    }
  }
  _end(): void {
    this.complete = true;
    this.#sink?.onEnd();
  }
  _abort(): void {
    if (this.#res === Res.Done || this.aborted) return;
    this.aborted = true;
    this.onAbort?.();
  }

  /** `100 Continue`, for a client that sent `Expect: 100-continue`. */
  writeContinue(): void {
    if (this.#res === Res.None && !this.aborted) this.conn.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** An interim (1xx) response head, relayed as is. */
  writeInterim(status: number, text: string | undefined, lines: string): void {
    if (this.#res === Res.None && !this.aborted) this.conn.socket.write(`${statusLine(status, text)}${lines}\r\n`);
  }

  /**
   * Writes the response head: status, the end-to-end `lines`, and framing
   * the client can read (chunked becomes close-delimited for an HTTP/1.0
   * client). `declaredLength` is a HEAD/304 answer's Content-Length, passed on.
   */
  writeHead(status: number, text: string | undefined, lines: string, framing: Framing, length: number, declaredLength = -1): void {
    if (this.#res !== Res.None) return;
    let f = framing;
    if (f === Framing.Chunked && this.versionMinor === 0) f = Framing.Eof;
    const close = f === Framing.Eof || !this.keepAlive || this.conn.closing || !this.complete;
    this.#close = close;
    this.#resFraming = f;
    this.#res = Res.Head;
    const extra = f === Framing.None && declaredLength >= 0 ? `content-length: ${declaredLength}\r\n` : framingLine(f, length);
    this.conn.socket.write(`${statusLine(status, text)}${lines}${extra}${close ? 'connection: close\r\n' : ''}\r\n`);
  }

  /** Writes body bytes; false when the client's buffer is full (wait for `onDrain`). */
  write(chunk: Buffer): boolean {
    if (this.#res !== Res.Head || chunk.length === 0) return true;
    const socket = this.conn.socket;
    if (this.#resFraming !== Framing.Chunked) return socket.write(chunk);
    socket.write(chunkHead(chunk.length));
    socket.write(chunk);
    return socket.write(CRLF);
  }

  /**
   * Relays a chunk of the upstream's response body; false when the client's
   * buffer is full, and `source` (the upstream call) is resumed once it drained.
   */
  relay(chunk: Buffer, source: { resume(): void } | undefined): boolean {
    if (this.write(chunk)) return true;
    onceDrained(this.conn.socket, () => source?.resume());
    return false;
  }

  /** Ends the response; the connection serves the next request or closes. */
  end(): void {
    if (this.#res === Res.Done) return;
    if (this.#res === Res.None) this.writeHead(200, undefined, '', Framing.Length, 0);
    if (this.#resFraming === Framing.Chunked) this.conn.socket.write(CHUNK_END);
    this.#res = Res.Done;
    this.conn._finished(this, this.#close || this.#resFraming === Framing.Eof);
  }

  /** The proxy's own answer (status, `x-weft-reason`, a text body); cut the connection if a head was already sent. */
  reply(status: number, reason: string): void {
    if (this.#res !== Res.None) {
      this.destroy();
      return;
    }
    const raw = rawResponse(status, reason);
    // rawResponse closes; keep the connection when the request was read whole.
    const keep = this.keepAlive && this.complete && !this.conn.closing;
    this.#res = Res.Done;
    this.conn.socket.write(keep ? raw.replace('connection: close\r\n', '') : raw);
    this.conn._finished(this, !keep);
  }

  /**
   * The proxy's refusal of a request it will not route (a bad target, say):
   * `reply`, but the connection always closes after it, so nothing the
   * client pipelined behind it is processed (RFC 9112 9.3.2).
   */
  refuse(status: number, reason: string): void {
    if (this.#res !== Res.None) {
      this.destroy();
      return;
    }
    this.#res = Res.Done;
    this.conn.socket.write(rawResponse(status, reason));
    this.conn._finished(this, true);
  }

  /** Cuts the connection (a response that cannot be completed). */
  destroy(): void {
    this.#res = Res.Done;
    this.conn.socket.destroy();
  }
}

/** One client connection. */
export class Connection {
  readonly socket: Socket;
  readonly server: H1Server;
  readonly feed: Feed;
  /** Requests received and not answered; the first is being answered. */
  readonly #queue: H1Request[] = [];
  /** The request whose body the parser is reading. */
  #parsing: H1Request | undefined;
  /** A request that came into an empty queue during the current read: handed to the handler at the end of it. */
  #dispatch: H1Request | undefined;
  #upgrade: H1Request | undefined;
  /** performance.now() when the current head began (0: not reading a head). */
  headStartedAt: number;
  /** performance.now() when the connection last went idle. */
  idleSince = 0;
  /** Body bytes were read since the last check (the body-idle timeout's progress mark). */
  #bodyRead = false;
  /** When the unfinished body last made progress, as the checks saw it. */
  #bodySince = 0;
  #dead = false;
  /** The answer that ends the connection once the requests before it are answered (`#refuse`). */
  #last: HeadRefusal | undefined;
  #lastSent = false;
  /** The connection closes after the answer in progress (drain). */
  closing = false;
  /** Free for the handler (inbound keeps the peer identity here). */
  data: unknown;

  constructor(server: H1Server, socket: Socket) {
    this.server = server;
    this.socket = socket;
    this.headStartedAt = performance.now();
    const parser = newParser(HTTPParser.REQUEST, server.limits.maxHeaderSizeBytes);
    parser[HTTPParser.kOnMessageBegin] = () => {
      this.headStartedAt = performance.now();
    };
    onHeadComplete(parser, (minor, h, method, u, _s, _t, upgrade, keepAlive, major) => {
      this.headStartedAt = 0;
      if (this.#dead) {
        // An answer said `connection: close`: what the client sent after it is read and dropped,
        // never processed (RFC 9112 9.6), since no answer could reach it.
        this.#parsing = undefined;
        return 0;
      }
      const name = METHODS[method] ?? 'GET';
      const refusal = requestHeadRefusal(major, minor, name, u, h);
      if (refusal !== undefined) {
        // Never queued, so never handed to the handler: answered in its turn, then the connection closes.
        this.#refuse(refusal);
        return 0;
      }
      const req = new H1Request(this, name, u, h, minor, keepAlive, upgrade);
      if (upgrade) {
        this.#upgrade = req;
        return 0;
      }
      this.#parsing = req;
      this.#bodySince = req.startedAt;
      this.#queue.push(req);
      if (this.#queue.length === 1) this.#dispatch = req;
      else if (this.#queue.length > 8) this.feed.pause();
      return 0;
    });
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      this.#bodyRead = true;
      this.#parsing?._body(chunk);
    };
    parser[HTTPParser.kOnMessageComplete] = () => {
      const req = this.#parsing;
      this.#parsing = undefined;
      if (req !== undefined && !req.complete) req._end();
    };
    this.feed = feed(parser, socket, this.#onExecute);
    socket.on('close', this.#onClose);
    socket.on('error', noop);
    socket.on('end', this.#onEnd);
  }

  readonly #onExecute = (ret: number | (Error & { code?: string }), chunk: Buffer | undefined): void => {
    if (this.#last !== undefined) {
      // A head was refused in this read: nothing after it is parsed (llhttp may also have failed on it).
      this.#detach();
      this.headStartedAt = 0;
    } else if (!this.#dead && typeof ret !== 'number') {
      this.#fail(ret.code ?? 'HPE_INVALID');
    }
    // The first request of this read reaches the handler only now that the whole read is parsed:
    // one whose body turned out malformed in the same read was dropped by #refuse, never sent on.
    const first = this.#dispatch;
    if (first !== undefined) {
      this.#dispatch = undefined;
      if (this.#queue[0] === first && !this.socket.destroyed) this.server.handler.onRequest(first);
    }
    if (this.#dead || typeof ret !== 'number') return;
    const up = this.#upgrade;
    if (up !== undefined) {
      this.#upgrade = undefined;
      const rest = this.feed.current(chunk).subarray(ret);
      this.#detach();
      if (this.#queue.length > 0) {
        // An upgrade pipelined behind requests still in flight: not worth the trouble.
        this.socket.destroy();
        return;
      }
      this.server._untrack(this);
      this.server.handler.onUpgrade(up, this.socket, rest);
    }
  };

  readonly #onEnd = (): void => {
    // The client finished sending. A request still being answered may complete; otherwise close.
    if (this.#queue.length === 0) this.socket.end();
  };

  readonly #onClose = (): void => {
    this.#dead = true;
    this.#detach();
    for (const req of this.#queue.splice(0)) req._abort();
    this.server._untrack(this);
  };

  #detach(): void {
    this.feed.detach();
    this.socket.off('end', this.#onEnd);
  }

  /** True when no request is being answered or read. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.headStartedAt === 0;
  }

  /** The request being answered (for timeouts). */
  get current(): H1Request | undefined {
    return this.#queue[0];
  }

  /** A malformed request (or a timeout): nothing more is read; answered in its turn (`#refuse`), then close. */
  #fail(code: string): void {
    this.#detach();
    this.headStartedAt = 0;
    if (this.#last !== undefined) return;
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'HPE_HEADERS_TIMEOUT' || code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === BODY_TIMEOUT ? 408 : 400;
    const reason = `weft: ${status === 431 ? 'request headers too large' : code === BODY_TIMEOUT ? 'request body timeout' : status === 408 ? 'request timeout' : `malformed request (${code})`}`;
    this.#refuse({ status, code, reason });
  }

  /**
   * Ends the connection with `last` (a parse error, a timeout, a refused
   * head). The requests read whole before it were accepted: they are
   * answered first, in order, then `last`, then the connection closes
   * (RFC 9112 9.3.2); nothing after it is processed. The request whose body
   * was being read cannot be completed: it is dropped, and if it was the one
   * being answered, `last` answers it now (or the connection is cut, when
   * its response head is already out).
   */
  #refuse(last: HeadRefusal): void {
    if (this.#last !== undefined) return;
    this.server.handler.onClientError?.(last.status, last.code);
    this.#last = last;
    this.#dead = true;
    this.headStartedAt = 0;
    const broken = this.#parsing;
    this.#parsing = undefined;
    if (broken !== undefined && broken === this.#queue[this.#queue.length - 1]) {
      this.#queue.pop();
      broken._abort();
      if (this.#queue.length === 0 && broken.headersSent) {
        this.socket.destroy();
        return;
      }
    }
    if (this.#queue.length === 0) this.#answerLast();
  }

  /** Writes the answer that ends the connection (once), and closes. */
  #answerLast(): void {
    const last = this.#last;
    if (last === undefined || this.#lastSent) return;
    this.#lastSent = true;
    this.socket.end(rawResponse(last.status, last.reason));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** @internal the interval's check. */
  _check(now: number): void {
    const limits = this.server.limits;
    if (this.headStartedAt !== 0 && now - this.headStartedAt > limits.headersTimeoutMs) {
      this.#fail('HPE_HEADERS_TIMEOUT');
      return;
    }
    // A body that stopped arriving: what the client does not send is not waited for (time the
    // proxy itself stopped reading, backpressure or a long pipeline, counts as progress).
    const body = this.#parsing;
    if (body !== undefined && !body.complete) {
      if (this.#bodyRead || this.feed.paused) {
        this.#bodyRead = false;
        this.#bodySince = now;
      } else if (now - this.#bodySince > limits.bodyIdleTimeoutMs) {
        this.#fail(BODY_TIMEOUT);
        return;
      }
    }
    const current = this.#queue[0];
    if (current !== undefined) {
      if (limits.requestTimeoutMs > 0 && !current.complete && now - current.startedAt > limits.requestTimeoutMs) this.#fail('ERR_HTTP_REQUEST_TIMEOUT');
      return;
    }
    if (this.idleSince !== 0 && this.headStartedAt === 0 && now - this.idleSince > limits.keepAliveTimeoutMs) this.socket.destroy();
  }

  /** @internal an answer ended. */
  _finished(req: H1Request, close: boolean): void {
    if (this.#queue[0] === req) this.#queue.shift();
    else if (this.#last !== undefined) return; // the request `#refuse` dropped
    // Ending with `#last`: the requests before it are still answered, then it.
    if (close || this.closing || (this.#dead && this.#last === undefined)) {
      this.#dead = true;
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
      return;
    }
    const next = this.#queue[0];
    if (next !== undefined) {
      if (this.#queue.length <= 8) this.feed.resume();
      this.server.handler.onRequest(next);
      return;
    }
    if (this.#last !== undefined) {
      this.#answerLast();
      return;
    }
    this.idleSince = performance.now();
    if (this.feed.paused) this.feed.resume();
    // A client that half-closed after its last request.
    if (this.socket.readableEnded) this.socket.end();
  }

  /** Drain: close now if idle, else after the answer in progress. */
  _drain(): void {
    this.closing = true;
    if (this.idle) this.socket.end();
  }
}

const noop = (): void => {};

/** The client error code of a stalled request body (408; `timeoutPhase` in metrics.ts says 'body'). */
const BODY_TIMEOUT = 'ERR_HTTP_BODY_TIMEOUT';

/** A listening HTTP/1.1 server on raw sockets. */
export class H1Server {
  readonly server: NetServer;
  readonly handler: H1Handler;
  readonly limits: HttpLimits;
  readonly #connections = new Set<Connection>();
  readonly #tunnels = new Set<Socket>();
  readonly #timer: NodeJS.Timeout;
  #draining = false;
  #wake: (() => void) | undefined;

  /**
   * `server` is a net.Server or tls.Server without a connection listener;
   * call `accept(socket)` from its 'connection' / 'secureConnection' event.
   */
  constructor(server: NetServer, handler: H1Handler, limits: HttpLimits) {
    this.server = server;
    this.handler = handler;
    this.limits = limits;
    const every = Math.max(10, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.keepAliveTimeoutMs, limits.bodyIdleTimeoutMs) / 4)));
    this.#timer = setInterval(() => {
      const now = performance.now();
      for (const c of this.#connections) c._check(now);
    }, every);
    this.#timer.unref();
  }

  /** Serves HTTP on `socket`. */
  accept(socket: Socket): Connection {
    socket.setNoDelay(true);
    const conn = new Connection(this, socket);
    this.#connections.add(conn);
    if (this.#draining) conn.closing = true;
    return conn;
  }

  /** @internal */
  _untrack(conn: Connection): void {
    this.#connections.delete(conn);
    if (this.#wake !== undefined && this.#busy === 0) this.#wake();
  }

  /** Keeps an upgraded socket in the drain's count (cut at the deadline). */
  trackTunnel(socket: Socket): void {
    this.#tunnels.add(socket);
    socket.once('close', () => {
      this.#tunnels.delete(socket);
      if (this.#wake !== undefined && this.#busy === 0) this.#wake();
    });
  }

  get #busy(): number {
    return this.#connections.size + this.#tunnels.size;
  }

  /** Requests being answered now. */
  get inFlight(): number {
    let n = 0;
    for (const c of this.#connections) if (c.current !== undefined) n++;
    return n;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Where it listens. */
  get address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /** Binds. */
  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * Stops accepting; idle connections close now, busy ones after their
   * answer (which says `Connection: close`); at `graceMs` the rest is cut.
   * Resolves with how many connections and tunnels were cut.
   */
  async close(graceMs: number): Promise<{ forced: number }> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.#connections) c._drain();
    if (this.#busy > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    let forced = 0;
    for (const c of this.#connections) {
      if (c.current !== undefined) forced++;
      c.socket.destroy();
    }
    forced += this.#tunnels.size;
    for (const s of this.#tunnels) s.destroy();
    clearInterval(this.#timer);
    await closed;
    return { forced };
  }
}
