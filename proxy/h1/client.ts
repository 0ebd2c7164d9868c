/**
 * The connecting side of the raw-socket data path: keep-alive connection
 * pools to an upstream (a peer proxy over mTLS, or a local app over plain
 * TCP), responses parsed by llhttp and handed to an `Exchange` as they
 * arrive.
 *
 * A pool hands out its most recently used idle connection first (LIFO), so
 * a few connections stay hot and the rest of a burst idles out; idle ones
 * close after `idleMs` (below the server's keep-alive timeout, so the
 * client closes first and no request races the server's FIN). Beyond
 * `maxConnections` requests wait in order. TLS sessions are reused for new
 * connections of the same pool.
 *
 * How far a failed exchange got matters to the retry policy: `connect-error`
 * means nothing was sent (a fresh connection that never connected);
 * `reset` means the request may have reached the app.
 */
import net, { type Socket } from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { Framing } from './head.js';
import { onceDrained } from './drain.js';
import { CHUNK_END, chunkHead, CRLF } from './head.js';
import { type Feed, feed, HTTPParser, newParser, onHeadComplete } from './llhttp.js';

/** What a request's exchange is told, in order: maybe interim heads, one head, body, end; or an error. */
export interface Exchange {
  /** The request is written on a connected socket: from here a failure may have reached the app. */
  onSent?(): void;
  /** A 1xx other than 101 (e.g. 100 Continue). */
  onInterim?(status: number, text: string | undefined, headers: string[]): void;
  onHead(status: number, text: string | undefined, headers: string[], keepAlive: boolean): void;
  /** Body bytes; return false to pause the connection until `call.resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  onError(kind: 'connect-error' | 'reset', err: Error): void;
  /** Around each batch of upstream bytes, so what they produce leaves in one write. */
  cork?(): void;
  uncork?(): void;
}

/** A request in a pool: queued, then on a connection. */
export class Call {
  readonly exchange: Exchange;
  readonly #head: string;
  readonly #isHead: boolean;
  #body: Buffer[] | undefined;
  #ended: boolean;
  #conn: UpstreamConn | undefined;
  #done = false;
  #pool: ConnPool;

  constructor(pool: ConnPool, exchange: Exchange, head: string, body: Buffer | undefined, ended: boolean, isHead: boolean) {
    this.#pool = pool;
    this.exchange = exchange;
    this.#head = head;
    this.#isHead = isHead;
    this.#body = body === undefined || body.length === 0 ? undefined : [body];
    this.#ended = ended;
  }

  /** More body (a streamed request); false when the upstream's buffer is full. */
  write(chunk: Buffer): boolean {
    if (this.#done) return true;
    if (this.#conn === undefined) {
      if (this.#body === undefined) this.#body = [];
      this.#body.push(chunk);
      return true;
    }
    return this.#conn.socket.write(chunk);
  }

  /** The body is complete. */
  end(): void {
    this.#ended = true;
  }

  /**
   * Relays one chunk of a streamed request body (chunk-encoded when
   * `chunked`); when the upstream's buffer is full, pauses `source` until it drains.
   */
  writeBody(chunk: Buffer, chunked: boolean, source: { pause(): void; resume(): void }): void {
    if (chunked) this.write(chunkHead(chunk.length));
    const ok = this.write(chunk);
    if (chunked) this.write(CRLF);
    if (ok || this.#conn === undefined) return;
    source.pause();
    onceDrained(this.#conn.socket, () => source.resume());
  }

  /** The streamed body is complete. */
  endBody(chunked: boolean): void {
    if (chunked) this.write(CHUNK_END);
    this.end();
  }

  /** Restarts reading a response paused by `onData` returning false. */
  resume(): void {
    // A finished call's connection may already carry another exchange (released connections are resumed by the pool).
    if (!this.#done) this.#conn?.feed.resume();
  }

  /** Stops the exchange: a queued call leaves the queue, a running one's connection is closed (never reused). */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#conn === undefined) this.#pool._dequeue(this);
    else this.#conn.socket.destroy();
  }

  get done(): boolean {
    return this.#done;
  }

  /** @internal */
  _start(conn: UpstreamConn): void {
    this.#conn = conn;
    const socket = conn.socket;
    socket.cork();
    socket.write(this.#head);
    if (this.#body !== undefined) for (const b of this.#body) socket.write(b);
    this.#body = undefined;
    socket.uncork();
    conn.expectHead = this.#isHead;
  }
  /** @internal */
  _finish(): void {
    this.#done = true;
  }
  get _ended(): boolean {
    return this.#ended;
  }
}

/** One connection of a pool. */
class UpstreamConn {
  readonly socket: Socket;
  readonly feed: Feed;
  /** The exchange whose client socket is corked until this read is parsed (one write per read). */
  #corked: Exchange | undefined;
  readonly #pool: ConnPool;
  call: Call | undefined;
  expectHead = false;
  /** It has carried a request before (a failure now may be a stale keep-alive race, or may have reached the app). */
  reused = false;
  connected = false;
  keepAlive = false;
  idleSince = 0;
  #responded = false;
  /** An exchange ended during the current read: the pool gets the connection back once the read is parsed (true: reusable). */
  #release: boolean | undefined;
  /** A response began with no request in flight: what the upstream sends can no longer be matched to requests. */
  #outOfStep = false;
  /** The upstream answered in a way no pooled request allows (a 101): the exchange gets a reset, the connection closes. */
  #refused: Error | undefined;

  constructor(pool: ConnPool, socket: Socket) {
    this.#pool = pool;
    this.socket = socket;
    const parser = newParser(HTTPParser.RESPONSE, 0);
    parser[HTTPParser.kOnMessageBegin] = () => {
      // A second answer to one request, or bytes past the end of a body that parse as one: never
      // handed to the next request (that would answer it with another request's response).
      if (this.call === undefined) this.#outOfStep = true;
    };
    onHeadComplete(parser, (_minor, h, _m, _u, status, text, _up, keepAlive) => {
      if (this.call === undefined || this.#refused !== undefined) return 0;
      if (status === 101) {
        // A pooled request never asks to upgrade (tunnel.ts does, on a connection of its own): an
        // unsolicited 101 would hand the client a connection in another protocol. Never relayed.
        this.#refused = new Error('upstream switched protocols (101) on a request that asked for no upgrade');
        return 1;
      }
      const ex = this.call.exchange;
      this.#cork(ex);
      if (status < 200) {
        ex.onInterim?.(status, text, h);
        return 0;
      }
      this.#responded = true;
      this.keepAlive = keepAlive;
      ex.onHead(status, text, h, keepAlive);
      return this.expectHead ? 1 : 0;
    });
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const ex = this.call?.exchange;
      if (ex === undefined || this.#refused !== undefined) return;
      this.#cork(ex);
      if (!ex.onData(chunk)) this.feed.pause();
    };
    parser[HTTPParser.kOnMessageComplete] = () => {
      const call = this.call;
      if (!this.#responded || call === undefined) return; // an interim answer ended (the final one follows), or out of step
      this.call = undefined;
      this.#responded = false;
      call._finish();
      call.exchange.onEnd();
      // Not released here: the rest of this read may hold bytes past the response, which must
      // poison this connection, not reach a request the pool would start on it right now.
      this.#release = this.keepAlive && call._ended;
    };
    this.feed = feed(parser, socket, (ret) => {
      const corked = this.#corked;
      if (corked !== undefined) {
        this.#corked = undefined;
        corked.uncork?.();
      }
      this.#afterRead(ret);
    });
    socket.on('end', () => {
      this.#afterRead(parser.finish() ?? 0);
      socket.end();
    });
    socket.on('error', (err: Error) => this.#broken(err));
    socket.on('close', () => {
      this.#broken(new Error('upstream closed the connection'));
    });
  }

  /** A read (or the end of input) was parsed: a parse error or a stray response breaks the connection, else an exchange that ended hands it back. */
  #afterRead(ret: number | (Error & { code?: string })): void {
    const release = this.#release;
    this.#release = undefined;
    if (this.#refused !== undefined) this.#broken(this.#refused);
    else if (typeof ret !== 'number') this.#broken(ret);
    else if (this.#outOfStep) this.#broken(new Error('upstream sent a response with no request in flight'));
    else if (release !== undefined) this.#pool._release(this, release);
  }

  /** Corks the exchange's client socket until the current read is parsed, so a head and its body leave in one write. */
  #cork(ex: Exchange): void {
    if (this.#corked !== undefined || ex.cork === undefined) return;
    this.#corked = ex;
    ex.cork();
  }

  #broken(err: Error): void {
    const call = this.call;
    this.call = undefined;
    this.#pool._gone(this);
    this.socket.destroy();
    if (call === undefined || call.done) return;
    call._finish();
    call.exchange.onError(this.connected || this.reused ? 'reset' : 'connect-error', err);
  }
}

/** How a pool makes its connections. */
export interface PoolTarget {
  readonly host: string;
  readonly port: number;
  /** TLS options (SNI included); undefined for plain TCP. */
  readonly tls?: ConnectionOptions | undefined;
}

/** Keep-alive connections to one upstream. */
export class ConnPool {
  readonly target: PoolTarget;
  readonly #max: number;
  readonly #idleMs: number;
  readonly #idle: UpstreamConn[] = [];
  readonly #all = new Set<UpstreamConn>();
  readonly #waiting: Call[] = [];
  #session: Buffer | undefined;
  #closing = false;

  constructor(target: PoolTarget, opts: { maxConnections: number; idleMs: number }) {
    this.target = target;
    this.#max = opts.maxConnections;
    this.#idleMs = opts.idleMs;
  }

  /**
   * Sends a request: `head` (request line, headers, blank line), then
   * `body` if given; `ended` false means more body follows through
   * `call.write()` / `call.end()`. `isHead` for a HEAD request (no body in the answer).
   */
  request(exchange: Exchange, head: string, body: Buffer | undefined, ended: boolean, isHead: boolean): Call {
    const call = new Call(this, exchange, head, body, ended, isHead);
    const conn = this.#idle.pop();
    if (conn !== undefined) this.#run(conn, call);
    else if (this.#all.size < this.#max) this.#run(this.#connect(), call);
    else this.#waiting.push(call);
    return call;
  }

  /** Connections carrying a request, and idle ones. */
  get stats(): { active: number; idle: number } {
    return { active: this.#all.size - this.#idle.length, idle: this.#idle.length };
  }

  /** Closes idle connections past the idle timeout (called by the owner's interval). */
  sweep(now: number): void {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const conn = this.#idle[i]!;
      if (now - conn.idleSince > this.#idleMs) {
        this.#idle.splice(i, 1);
        this.#all.delete(conn);
        conn.socket.destroy();
      }
    }
  }

  /** Gracefully: idle connections close now, busy ones after their exchange. */
  close(): void {
    this.#closing = true;
    for (const conn of this.#idle.splice(0)) {
      this.#all.delete(conn);
      conn.socket.destroy();
    }
  }

  /** At once. */
  destroy(): void {
    this.#closing = true;
    for (const call of this.#waiting.splice(0)) call.exchange.onError('connect-error', new Error('pool closed'));
    for (const conn of [...this.#all]) conn.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
  }

  get empty(): boolean {
    return this.#all.size === 0 && this.#waiting.length === 0;
  }

  #connect(): UpstreamConn {
    const t = this.target;
    let socket: Socket;
    if (t.tls === undefined) {
      socket = net.connect(t.port, t.host);
    } else {
      socket = tls.connect({ ...t.tls, host: t.host, port: t.port, session: this.#session });
      socket.on('session', (session: Buffer) => {
        this.#session = session;
      });
    }
    socket.setNoDelay(true);
    const conn = new UpstreamConn(this, socket);
    socket.once(t.tls === undefined ? 'connect' : 'secureConnect', () => {
      conn.connected = true;
    });
    this.#all.add(conn);
    return conn;
  }

  #run(conn: UpstreamConn, call: Call): void {
    conn.call = call;
    conn.idleSince = 0;
    call._start(conn);
    call.exchange.onSent?.();
  }

  /** @internal an exchange ended; `reusable` when the connection may carry another. */
  _release(conn: UpstreamConn, reusable: boolean): void {
    if (conn.feed.paused) conn.feed.resume();
    if (!reusable || this.#closing || conn.socket.destroyed) {
      this.#all.delete(conn);
      conn.socket.destroy();
      this.#next();
      return;
    }
    conn.reused = true;
    const call = this.#waiting.shift();
    if (call !== undefined) {
      this.#run(conn, call);
      return;
    }
    conn.idleSince = performance.now();
    this.#idle.push(conn);
  }

  /** @internal a connection died. */
  _gone(conn: UpstreamConn): void {
    if (!this.#all.delete(conn)) return;
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#next();
  }

  /** @internal */
  _dequeue(call: Call): void {
    const i = this.#waiting.indexOf(call);
    if (i !== -1) this.#waiting.splice(i, 1);
  }

  #next(): void {
    if (this.#closing || this.#waiting.length === 0 || this.#all.size >= this.#max) return;
    this.#run(this.#connect(), this.#waiting.shift()!);
  }
}

export { Framing };
