/**
 * One attempt of a request against one instance: to its host proxy's inbound
 * over mTLS (SNI = destination service, `x-weft-instance` naming the
 * instance), or plain HTTP straight to the instance when it is outside the
 * mesh. The result says how far it got, because the retry policy treats a
 * request that never left (connect error) differently from one that may have
 * reached the app (reset, timeout).
 *
 * The per-try timeout runs until the response head: once the head is here,
 * the body streams to the client at whatever pace the two ends keep.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { RequestBody } from './body.js';
import type { UpstreamTarget } from './pool.js';
import type { RouteEndpoint } from './routes.js';

/** Header naming the instance the destination host proxy must forward to. */
export const HEADER_INSTANCE = 'x-weft-instance';

/** How an attempt ended (retry-policy's AttemptOutcome, plus the response itself). */
export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number; readonly res: IncomingMessage }
  | { readonly kind: 'connect-error'; readonly error: Error }
  | { readonly kind: 'reset'; readonly error: Error }
  | { readonly kind: 'timeout' }
  /** The client went away: nothing to answer. */
  | { readonly kind: 'aborted' };

/** What one attempt sends. */
export interface AttemptInput {
  readonly endpoint: RouteEndpoint;
  readonly target: UpstreamTarget;
  readonly method: string;
  readonly path: string;
  /** Request headers, hop-by-hop ones already removed, Host included. */
  readonly headers: OutgoingHttpHeaders;
  readonly body: RequestBody;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** True when the instance is reached through its host proxy (it registered weft_mesh_port). */
export function inMesh(endpoint: RouteEndpoint): boolean {
  return endpoint.instance.meshPort !== undefined;
}

/** Sends the request once. Never rejects. */
export function attempt(input: AttemptInput): Promise<AttemptResult> {
  const inst = input.endpoint.instance;
  const mesh = input.target.protocol === 'https:';
  const headers: OutgoingHttpHeaders = mesh ? { ...input.headers, [HEADER_INSTANCE]: inst.id } : input.headers;
  const options: https.RequestOptions = {
    ...input.target.tls,
    host: inst.address,
    port: mesh ? inst.meshPort : inst.port,
    method: input.method,
    path: input.path,
    headers,
    agent: input.target.agent,
    signal: input.signal,
  };
  return new Promise((resolve) => {
    let connected = false;
    let timedOut = false;
    let settled = false;
    const finish = (result: AttemptResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = mesh ? https.request(options) : http.request(options);
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error(`no response within ${input.timeoutMs} ms`));
    }, input.timeoutMs);
    req.on('socket', (socket) => {
      // A pooled socket is already connected: the request may reach the app.
      if (req.reusedSocket) connected = true;
      else socket.once(mesh ? 'secureConnect' : 'connect', () => (connected = true));
    });
    req.on('response', (res) => finish({ kind: 'response', status: res.statusCode ?? 502, res }));
    req.on('error', (error) => {
      if (input.signal.aborted) finish({ kind: 'aborted' });
      else if (timedOut) finish({ kind: 'timeout' });
      else finish(connected ? { kind: 'reset', error } : { kind: 'connect-error', error });
    });
    writeBody(req, input.body);
  });
}

function writeBody(req: http.ClientRequest, body: RequestBody): void {
  if (body.kind === 'buffered') {
    req.end(body.bytes.length === 0 ? undefined : body.bytes);
    return;
  }
  for (const chunk of body.head) req.write(chunk);
  body.source.pipe(req);
  body.source.resume();
}
