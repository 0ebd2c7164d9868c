/**
 * Passes an HTTP/1.1 Upgrade (WebSocket) through to an upstream. The upgrade
 * request goes out on its own connection (an upgraded socket never returns
 * to a keep-alive pool); on 101 the raw sockets are piped both ways, and any
 * bytes that arrived with either head are forwarded first. When the upstream
 * answers anything else, that answer is relayed and the connection closed.
 */
import { type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, request, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { downstreamResponseHeaders } from './headers.js';
import { rawReplyAndClose } from './reply.js';

/** Where to send the upgrade and with which (already cleaned) end-to-end headers. */
export interface UpgradeTarget {
  readonly host: string;
  readonly port: number;
  readonly headers: OutgoingHttpHeaders;
  /** Fails with 504 when the upstream has not answered the handshake in time. */
  readonly timeoutMs: number;
}

/**
 * Forwards the upgrade. `done(status)` is called once: 101 when the tunnel is
 * up (and again nothing when it closes; see `onClose`), or the status answered.
 * `onClose` fires when an established tunnel ends.
 */
export function forwardUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: UpgradeTarget,
  done: (status: number, reason?: string) => void,
  onClose?: () => void,
): ClientRequest {
  const headers: OutgoingHttpHeaders = { ...target.headers, connection: 'upgrade', upgrade: req.headers.upgrade ?? '' };
  const up = request({ host: target.host, port: target.port, method: req.method, path: req.url, headers, agent: false });
  up.setTimeout(target.timeoutMs, () => up.destroy(Object.assign(new Error('upgrade handshake timed out'), { code: 'ETIMEDOUT' })));
  let answered = false;
  const finish = (status: number, reason?: string): void => {
    if (answered) return;
    answered = true;
    done(status, reason);
  };
  socket.on('error', () => up.destroy());

  up.on('upgrade', (res: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
    up.setTimeout(0);
    // For 101 the Connection and Upgrade headers are the point: relay them as the app sent them.
    socket.write(statusLine(res) + rawHeaderLines(res.rawHeaders) + '\r\n');
    if (upHead.length > 0) socket.write(upHead);
    if (head.length > 0) upSocket.write(head);
    upSocket.setNoDelay(true);
    upSocket.pipe(socket).pipe(upSocket);
    const close = (): void => {
      upSocket.destroy();
      socket.destroy();
    };
    let closed = false;
    const onEnd = (): void => {
      if (closed) return;
      closed = true;
      close();
      onClose?.();
    };
    upSocket.on('error', onEnd).on('close', onEnd);
    socket.on('error', onEnd).on('close', onEnd);
    finish(101);
  });

  up.on('response', (res: IncomingMessage) => {
    // The app declined the upgrade: relay its answer, delimited by closing the connection.
    const headers = downstreamResponseHeaders(res.headers);
    headers['connection'] = 'close';
    let lines = '';
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) lines += `${name}: ${one}\r\n`;
    }
    socket.write(statusLine(res) + lines + '\r\n');
    res.pipe(socket);
    res.on('error', () => socket.destroy());
    finish(res.statusCode ?? 502);
  });

  up.on('error', (err: Error & { code?: string }) => {
    const status = err.code === 'ETIMEDOUT' ? 504 : 502;
    const reason = `weft: upstream ${target.host}:${target.port} ${status === 504 ? 'timed out' : 'unreachable'} (${err.code ?? err.message})`;
    if (!answered) rawReplyAndClose(socket, status, reason);
    else socket.destroy();
    finish(status, reason);
  });
  up.end();
  return up;
}

function statusLine(res: IncomingMessage): string {
  const status = res.statusCode ?? 502;
  return `HTTP/1.1 ${status} ${res.statusMessage || STATUS_CODES[status] || ''}\r\n`;
}

function rawHeaderLines(raw: string[]): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return out;
}
