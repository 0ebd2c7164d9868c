/**
 * HTTP/1.1 responses read off a raw socket, byte by byte as a client would
 * frame them (RFC 9112 6.3): for the framing tests, where what matters is
 * exactly which bytes came back on one connection (pipelined answers in
 * order, no stray body after a HEAD, 204 or 304, a close-delimited body).
 * Deliberately independent of the proxy's own parser.
 * (Not a *.test.ts file, so tap does not run it.)
 */
import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { until } from './inbound/fixtures.js';

/** One response (interim ones included) as it came over the wire. */
export interface WireResponse {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/**
 * Splits `data` into complete responses. `heads[i]` says the i-th final
 * response answers a HEAD (no body, whatever it declares). A response with
 * neither Content-Length nor chunked is complete only once `closed`.
 * Throws on bytes that are not a response (a desynchronised connection).
 */
export function parseResponses(data: Buffer, heads: readonly boolean[], closed: boolean): WireResponse[] {
  const out: WireResponse[] = [];
  let at = 0;
  let finals = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]!);
    if (m === null) throw new Error(`not a status line at byte ${at}: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    let next = end + 4;
    if (status < 200) {
      out.push({ status, headers, body: Buffer.alloc(0) });
      at = next;
      continue;
    }
    let body: Buffer;
    if (heads[finals] === true || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const eol = data.indexOf('\r\n', next);
        if (eol === -1) break;
        const size = Number.parseInt(data.subarray(next, eol).toString('latin1').split(';')[0]!, 16);
        if (Number.isNaN(size)) throw new Error(`bad chunk size at byte ${next}`);
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n\r\n', eol);
          // No trailers: the last chunk's line is followed by the empty line.
          const last = data.subarray(eol, eol + 4).toString('latin1') === '\r\n\r\n' ? eol + 4 : trailerEnd === -1 ? -1 : trailerEnd + 4;
          if (last !== -1) {
            next = last;
            complete = true;
          }
          break;
        }
        if (eol + 2 + size + 2 > data.length) break;
        parts.push(data.subarray(eol + 2, eol + 2 + size));
        next = eol + 2 + size + 2;
      }
      if (!complete) break;
      body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (next + length > data.length) break;
      body = data.subarray(next, next + length);
      next += length;
    } else {
      if (!closed) break;
      body = data.subarray(next);
      next = data.length;
    }
    out.push({ status, headers, body });
    finals++;
    at = next;
  }
  return out;
}

/** A client connection that keeps every byte it receives. */
export class Wire {
  readonly socket: Socket | TLSSocket;
  readonly #chunks: Buffer[] = [];
  /** The server sent FIN (it closes the connection; a half-open client can still send). */
  ended = false;
  closed = false;
  error: string | undefined;

  constructor(socket: Socket | TLSSocket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.#chunks.push(d));
    socket.on('error', (err) => {
      this.error = err.message;
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Neither closed nor closing. */
  get open(): boolean {
    return !this.ended && !this.closed;
  }

  /** Everything received so far. */
  get data(): Buffer {
    if (this.#chunks.length > 1) this.#chunks.splice(0, this.#chunks.length, Buffer.concat(this.#chunks));
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** The complete responses received so far (`heads` as for parseResponses). */
  responses(heads: readonly boolean[] = []): WireResponse[] {
    return parseResponses(this.data, heads, this.ended || this.closed);
  }

  /**
   * Waits until `count` final responses are complete (or the connection
   * closed, or `limitMs` passed) and returns all responses, interim included.
   */
  async read(count: number, heads: readonly boolean[] = [], limitMs = 5000): Promise<WireResponse[]> {
    await until(() => this.ended || this.closed || this.responses(heads).filter((r) => r.status >= 200).length >= count, limitMs);
    return this.responses(heads);
  }
}

/**
 * A plain TCP client connection (to an outbound listener on 127.0.0.1),
 * destroyed at teardown. `allowHalfOpen`: it can still send after the
 * server's FIN (as a client busy uploading does before it reads the answer).
 */
export async function connectPlain(t: { teardown(fn: () => unknown): void }, port: number, opts: { allowHalfOpen?: boolean } = {}): Promise<Wire> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: opts.allowHalfOpen === true });
  t.teardown(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return new Wire(socket);
}

/** Waits until the exposition of `registry` matches `re` (at most `limitMs`). */
export async function metricsMatch(registry: { metrics(): Promise<string> }, re: RegExp, limitMs = 3000): Promise<boolean> {
  for (let waited = 0; waited < limitMs; waited += 20) {
    if (re.test(await registry.metrics())) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return re.test(await registry.metrics());
}

/** The final responses' bodies as text. */
export function bodies(responses: readonly WireResponse[]): string[] {
  return responses.filter((r) => r.status >= 200).map((r) => r.body.toString());
}
