/**
 * HTTP Upgrade (WebSocket) through outbound: the upgrade request goes to one
 * instance like any request (same routing, admission, identity and mTLS hop),
 * and once the instance answers 101 the two sockets are spliced together
 * (h1/tunnel.ts).
 *
 * Never retried (the handshake is not replayable once the app accepted it)
 * and never pooled: an upgraded connection leaves HTTP for good, so it gets
 * its own TLS connection instead of taking one from a keep-alive pool. A
 * non-101 answer is passed back as is.
 */
import type { Socket } from 'node:net';
import { headerValue, requestLines } from '../h1/head.js';
import type { H1Request } from '../h1/server.js';
import { tunnel } from '../h1/tunnel.js';
import { rawReplyAndClose } from '../http/reply.js';
import { type Caller, type ForwardContext, HEADER_INSTANCE, inMesh } from './relay.js';
import { resolveTarget } from './target.js';

/** Handles an upgrade request; `done` is told when the socket is a tunnel (to cut it at shutdown). */
export async function forwardUpgrade(ctx: ForwardContext, caller: Caller, req: H1Request, socket: Socket, head: Buffer, onTunnel: (socket: Socket) => void): Promise<void> {
  socket.on('error', () => socket.destroy());
  const target = resolveTarget({ method: req.method, url: req.url, headers: { host: headerValue(req.headers, 'host') } }, caller.upstream);
  if ('error' in target) return rawReplyAndClose(socket, 400, `weft: ${target.error}`);
  const service = target.service;
  const admission = ctx.limits.tryAcquire(service);
  if (!admission.ok) return rawReplyAndClose(socket, admission.status, admission.reason);
  // The slot is held for the handshake only: a long-lived WebSocket is not a pending request.
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    admission.release();
  };
  let started = false;
  try {
    const route = ctx.routes.get(service);
    if (!route.known) await route.waitKnown(ctx.options.firstRouteWaitMs);
    const endpoint = route.picker.pick();
    if (endpoint === undefined) return rawReplyAndClose(socket, 503, `weft: no instances of service ${service}`);
    const inst = endpoint.instance;
    const mesh = inMesh(endpoint);
    const tls = mesh ? ctx.pools.meshTls(caller.service, service) : undefined;
    if (mesh && tls === undefined) return rawReplyAndClose(socket, 503, `weft: service ${caller.service} has no mesh identity yet`);
    // Hop-by-hop, but they are the point of an upgrade: sent explicitly.
    const requestHead =
      `${req.method} ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n${requestLines(req.headers, ctx.headerPolicy, req.remoteAddress)}` +
      `connection: Upgrade\r\nupgrade: ${headerValue(req.headers, 'upgrade') ?? ''}\r\n${mesh ? `${HEADER_INSTANCE}: ${inst.id}\r\n` : ''}\r\n`;
    started = true;
    tunnel({
      socket,
      head,
      target: { host: inst.address, port: mesh ? inst.meshPort! : inst.port, tls },
      requestHead,
      timeoutMs: ctx.options.timeouts.tryTimeoutMs ?? ctx.options.timeouts.requestTimeoutMs,
      describe: (err, timedOut) => ({ status: timedOut ? 504 : 502, reason: `weft: upgrade to instance ${inst.id} of service ${service} failed (${err.message})` }),
      done: (status) => {
        release();
        if (status === 101) onTunnel(socket);
      },
    });
  } finally {
    if (!started) release();
  }
}
