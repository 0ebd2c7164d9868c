/**
 * HTTP Upgrade (WebSocket) through outbound: the upgrade request goes to one
 * instance like any request (same routing, admission, identity and mTLS hop),
 * and once the instance answers 101 the two sockets are spliced together.
 *
 * Never retried (the handshake is not replayable once the app accepted it)
 * and never pooled: an upgraded connection leaves HTTP for good, so it gets
 * its own TLS connection (`agent: false`) instead of taking one from a
 * keep-alive pool. A non-101 answer is passed back as is.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { upstreamRequestHeaders } from '../http/headers.js';
import { rawReplyAndClose } from '../http/reply.js';
import { HEADER_INSTANCE, inMesh } from './attempt.js';
import type { Caller, ForwardContext } from './forward.js';
import { resolveTarget } from './target.js';

/** Handles a server 'upgrade' event. */
export async function forwardUpgrade(ctx: ForwardContext, caller: Caller, req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  socket.on('error', () => socket.destroy());
  const target = resolveTarget(req, caller.upstream);
  if ('error' in target) return rawReplyAndClose(socket, 400, `weft: ${target.error}`);
  const service = target.service;
  const admission = ctx.limits.tryAcquire(service);
  if (!admission.ok) return rawReplyAndClose(socket, admission.status, admission.reason);
  // The slot is held for the handshake only: a long-lived WebSocket is not a pending request.
  try {
    const route = ctx.routes.get(service);
    if (!route.known) await route.waitKnown(ctx.options.firstRouteWaitMs);
    const endpoint = route.picker.pick();
    if (endpoint === undefined) return rawReplyAndClose(socket, 503, `weft: no instances of service ${service}`);
    const inst = endpoint.instance;
    const mesh = inMesh(endpoint);
    const tls = mesh ? ctx.pools.meshTls(caller.service, service) : undefined;
    if (mesh && tls === undefined) return rawReplyAndClose(socket, 503, `weft: service ${caller.service} has no mesh identity yet`);
    const headers: OutgoingHttpHeaders = upstreamRequestHeaders(req, ctx.headerPolicy, req.socket.remoteAddress);
    // Hop-by-hop, but they are the point of an upgrade: forward them explicitly.
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade;
    headers.host = target.host;
    if (mesh) headers[HEADER_INSTANCE] = inst.id;
    const options: https.RequestOptions = {
      ...tls,
      host: inst.address,
      port: mesh ? inst.meshPort : inst.port,
      method: req.method,
      path: target.path,
      headers,
      agent: false,
      timeout: ctx.options.timeouts.tryTimeoutMs ?? ctx.options.timeouts.requestTimeoutMs,
    };
    const upstreamReq = mesh ? https.request(options) : http.request(options);
    await new Promise<void>((resolve) => {
      upstreamReq.on('upgrade', (res, upstream, upstreamHead) => {
        upstream.setTimeout(0); // the handshake timeout must not cut an idle WebSocket
        socket.write(rawHead(res));
        if (upstreamHead.length > 0) socket.write(upstreamHead);
        if (head.length > 0) upstream.write(head);
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
        upstream.pipe(socket).on('close', () => upstream.destroy());
        socket.pipe(upstream).on('close', () => socket.destroy());
        resolve();
      });
      upstreamReq.on('response', (res) => {
        socket.write(rawHead(res, true));
        res.pipe(socket);
        resolve();
      });
      upstreamReq.on('timeout', () => upstreamReq.destroy(new Error('upgrade timed out')));
      upstreamReq.on('error', (err) => {
        rawReplyAndClose(socket, 502, `weft: upgrade to instance ${inst.id} of service ${service} failed (${err.message})`);
        resolve();
      });
      upstreamReq.end();
    });
  } finally {
    admission.release();
  }
}

/** The status line and headers of `res` as raw bytes (the client socket has left the HTTP server). */
function rawHead(res: IncomingMessage, close = false): string {
  let out = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`;
  for (let i = 0; i < res.rawHeaders.length; i += 2) {
    const name = res.rawHeaders[i]!;
    // The body is piped decoded and ended by closing: framing headers would lie.
    const lower = name.toLowerCase();
    if (close && (lower === 'connection' || lower === 'transfer-encoding')) continue;
    out += `${name}: ${res.rawHeaders[i + 1]}\r\n`;
  }
  if (close) out += 'connection: close\r\n';
  return `${out}\r\n`;
}
