/**
 * An HTTP/1.1 Upgrade (WebSocket) passed through to an upstream on its own
 * connection (an upgraded connection never returns to a keep-alive pool).
 * On 101 the two sockets are spliced, the bytes that came with either head
 * forwarded first; any other answer is relayed and the connection closed.
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { rawReplyAndClose } from '../http/reply.js';
import type { PoolTarget } from './client.js';
import { allLines, responseLines, statusLine } from './head.js';
import { HTTPParser, newParser, onHeadComplete, releaseParser } from './llhttp.js';

/** One upgrade to pass through. */
export interface TunnelRequest {
  /** The client's socket (already out of the HTTP server) and the bytes that followed its head. */
  readonly socket: Socket;
  readonly head: Buffer;
  readonly target: PoolTarget;
  /** The complete request head to send (request line, headers with Connection/Upgrade, blank line). */
  readonly requestHead: string;
  /** The upstream must answer the handshake within this; else 504. */
  readonly timeoutMs: number;
  /** What to say when the upstream cannot be reached (a status and reason go in the raw reply). */
  readonly describe: (err: Error & { code?: string }, timedOut: boolean) => { status: number; reason: string };
  /** Called once: 101 when the tunnel is up, or the status answered. */
  readonly done: (status: number) => void;
}

/** Opens the upstream connection and relays the handshake. */
export function tunnel(t: TunnelRequest): void {
  const { socket, target } = t;
  const up: Socket = target.tls === undefined ? net.connect(target.port, target.host) : tls.connect({ ...target.tls, host: target.host, port: target.port });
  up.setNoDelay(true);
  let answered = false;
  let timedOut = false;
  const finish = (status: number): void => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    t.done(status);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    up.destroy(Object.assign(new Error('upgrade handshake timed out'), { code: 'ETIMEDOUT' }));
  }, t.timeoutMs);
  socket.on('error', () => up.destroy());
  socket.on('close', () => {
    if (!answered) up.destroy();
  });
  const parser = newParser(HTTPParser.RESPONSE, 0);
  // Only the handshake is parsed, but the parser lives until it is released (llhttp.ts).
  up.once('close', () => releaseParser(parser));
  let mode: 'head' | 'tunnel' | 'relay' = 'head';
  onHeadComplete(parser, (_minor, h, _m, _u, status, text) => {
    if (status === 101) {
      // Connection and Upgrade are the point of a 101: relayed as the app sent them.
      socket.write(`${statusLine(status, text)}${allLines(h)}\r\n`);
      mode = 'tunnel';
      return 0;
    }
    if (status < 200) return 0;
    // The app declined the upgrade: relay its answer, delimited by closing the connection.
    socket.write(`${statusLine(status, text)}${responseLines(h)}connection: close\r\n\r\n`);
    mode = 'relay';
    finish(status);
    return 0;
  });
  parser[HTTPParser.kOnBody] = (chunk: Buffer) => {
    if (mode === 'relay') socket.write(chunk);
  };
  parser[HTTPParser.kOnMessageComplete] = () => {
    if (mode === 'relay') {
      socket.end();
      up.destroy();
    }
  };
  const onData = (chunk: Buffer): void => {
    const ret = parser.execute(chunk);
    if (typeof ret !== 'number') {
      up.destroy(ret);
      return;
    }
    if (mode !== 'tunnel') return;
    up.off('data', onData);
    const rest = chunk.subarray(ret);
    if (rest.length > 0) socket.write(rest);
    if (t.head.length > 0) up.write(t.head);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      up.destroy();
      socket.destroy();
    };
    up.on('close', close);
    socket.on('close', close);
    up.pipe(socket);
    socket.pipe(up);
    finish(101);
  };
  up.on('data', onData);
  up.on('end', () => {
    if (mode === 'relay') socket.end();
  });
  up.on('error', (err: Error & { code?: string }) => {
    if (!answered) {
      const { status, reason } = t.describe(err, timedOut);
      rawReplyAndClose(socket, status, reason);
      finish(status);
    } else socket.destroy();
  });
  up.on('close', () => {
    if (!answered) {
      rawReplyAndClose(socket, 502, 'weft: upstream closed the connection during the upgrade');
      finish(502);
    }
  });
  up.write(t.requestHead);
}
