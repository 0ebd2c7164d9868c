/**
 * Rig for the codec tests of proxy/h1 over raw sockets on 127.0.0.1
 * (ephemeral ports): an H1Server whose handler the test writes, a raw TCP
 * upstream that answers whatever bytes the test scripts (a hostile app
 * included), and an Exchange that records what ConnPool tells it.
 * (Not a *.test.ts file, so tap does not run it.)
 */
import { createHash } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Call, Exchange } from '../../../proxy/h1/client.js';
import { type H1Handler, H1Server } from '../../../proxy/h1/server.js';
import { httpLimits } from '../../../proxy/http/server-limits.js';

export { until } from '../inbound/fixtures.js';

export const HOST = '127.0.0.1';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An H1Server on 127.0.0.1 with `handler` (plain TCP, so llhttp consumes the socket handle), closed at teardown. */
export async function startH1(t: Teardown, handler: H1Handler): Promise<H1Server> {
  const server = new H1Server(net.createServer(), handler, httpLimits());
  server.server.on('connection', (socket: Socket) => server.accept(socket));
  await server.listen(0, HOST);
  t.teardown(() => server.close(0));
  return server;
}

/** `count` header pairs, [name, value, ...], with names in mixed case and one name repeated, so order and case show. */
export function manyHeaders(count: number, tag = 'h'): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(i % 7 === 3 ? 'X-Repeat' : `X-${tag.toUpperCase()}${i}-${tag}`, `${tag}-value-${i}`);
  return out;
}

/** The header lines of a flat [name, value, ...] list. */
export function lines(headers: readonly string[]): string {
  let out = '';
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
  return out;
}

/** Writes `bytes` cut at `cuts` (offsets), each piece in its own event-loop turn, so the peer reads them one by one. */
export async function writeInPieces(socket: Socket, bytes: Buffer, cuts: readonly number[]): Promise<void> {
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    if (cut <= at) continue;
    socket.write(bytes.subarray(at, cut));
    at = cut;
    // A loopback write is in the peer's receive queue when it returns; the next turn's poll phase reads it alone.
    await new Promise((r) => setImmediate(r));
  }
}

/** One connection accepted by a RawUpstream. */
export class UpstreamConn {
  readonly socket: Socket;
  readonly #chunks: Buffer[] = [];
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.#chunks.push(d));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Every byte received so far, as latin1 text. */
  get received(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }

  /** The number of request heads received so far (each ends with an empty line). */
  get heads(): number {
    return this.received.split('\r\n\r\n').length - 1;
  }
}

/**
 * A raw TCP "app": every connection is recorded, and `onHead(conn, n)` runs
 * when the n-th (0-based) request head on a connection has arrived, so the
 * test writes whatever bytes it wants, well-formed or not.
 */
export class RawUpstream {
  readonly server: net.Server;
  readonly conns: UpstreamConn[] = [];

  constructor(onHead: (conn: UpstreamConn, n: number) => void) {
    this.server = net.createServer((socket) => {
      const conn = new UpstreamConn(socket);
      this.conns.push(conn);
      let seen = 0;
      socket.on('data', () => {
        while (seen < conn.heads) onHead(conn, seen++);
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  static async start(t: Teardown, onHead: (conn: UpstreamConn, n: number) => void): Promise<RawUpstream> {
    const up = new RawUpstream(onHead);
    await new Promise<void>((resolve) => up.server.listen(0, HOST, resolve));
    t.teardown(() => {
      for (const c of up.conns) c.socket.destroy();
      return new Promise<void>((resolve) => up.server.close(() => resolve()));
    });
    return up;
  }
}

/** An Exchange that records what the pool tells it; `done` settles at onEnd or onError. */
export class Recorder implements Exchange {
  readonly interim: number[] = [];
  head: { status: number; text: string | undefined; headers: string[]; keepAlive: boolean } | undefined;
  readonly chunks: Buffer[] = [];
  ended = false;
  error: { kind: string; message: string; code: string | undefined } | undefined;
  /** Return false from onData (pause the connection) while this holds. */
  pauseWhen: ((received: number) => boolean) | undefined;
  received = 0;
  call: Call | undefined;
  readonly done: Promise<void>;
  #settle!: () => void;

  constructor() {
    this.done = new Promise<void>((resolve) => {
      this.#settle = resolve;
    });
  }

  onInterim(status: number): void {
    this.interim.push(status);
  }
  onHead(status: number, text: string | undefined, headers: string[], keepAlive: boolean): void {
    this.head = { status, text, headers, keepAlive };
  }
  onData(chunk: Buffer): boolean {
    // Copied: a chunk may be a view of a buffer the parser reuses.
    this.chunks.push(Buffer.from(chunk));
    this.received += chunk.length;
    return this.pauseWhen === undefined || !this.pauseWhen(this.received);
  }
  onEnd(): void {
    this.ended = true;
    this.#settle();
  }
  onError(kind: 'connect-error' | 'reset', err: Error & { code?: string }): void {
    this.error = { kind, message: err.message, code: err.code };
    this.#settle();
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1');
  }
}

/** Sends a GET for `path` through `pool` and records the exchange. */
export function get(pool: import('../../../proxy/h1/client.js').ConnPool, path: string, extra = ''): Recorder {
  const rec = new Recorder();
  rec.call = pool.request(rec, `GET ${path} HTTP/1.1\r\nhost: upstream\r\n${extra}\r\n`, undefined, true, false);
  return rec;
}
