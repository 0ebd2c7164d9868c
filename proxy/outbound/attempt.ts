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
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { RequestBody } from './body.js';
import { type ExchangeFailure, type UpstreamResponse, UpstreamExchange } from '../http/exchange.js';
import type { UpstreamTarget } from './pool.js';
import type { RouteEndpoint } from './routes.js';

/** Header naming the instance the destination host proxy must forward to. */
export const HEADER_INSTANCE = 'x-weft-instance';

/** How an attempt ended (retry-policy's AttemptOutcome, plus the response itself). */
export type AttemptResult =
  | { readonly kind: 'response'; readonly status: number; readonly res: UpstreamResponse }
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
  /** Request headers, hop-by-hop ones (and Expect, which the outbound answered itself) removed, Host included; x-weft-instance is set here. */
  readonly headers: OutgoingHttpHeaders;
  readonly body: RequestBody;
  readonly timeoutMs: number;
  readonly client: ClientLink;
}

/** The client side of a request as its attempts see it: whether it left, and the exchange to stop when it does. */
export class ClientLink {
  left = false;
  /** The exchange waiting for a response head, if any. */
  current: UpstreamExchange | undefined;

  /** The client went away: stop the attempt in flight; the forward loop stops retrying. */
  leave(): void {
    this.left = true;
    this.current?.cancel('aborted', 'the client left');
  }
}

/** True when the instance is reached through its host proxy (it registered weft_mesh_port). */
export function inMesh(endpoint: RouteEndpoint): boolean {
  return endpoint.instance.meshPort !== undefined;
}

/** Sends the request once. Never rejects. */
export function attempt(input: AttemptInput): Promise<AttemptResult> {
  const mesh = input.target.protocol === 'https:';
  // The request's own header object (built per request by forward.ts): set in place, not copied per attempt.
  const headers = input.headers;
  if (mesh) headers[HEADER_INSTANCE] = input.endpoint.instance.id;
  else delete headers[HEADER_INSTANCE];
  const { client } = input;
  if (client.left) return Promise.resolve({ kind: 'aborted' });
  return new Promise((resolve) => {
    const exchange = new UpstreamExchange((outcome: UpstreamExchange | ExchangeFailure) => {
      clearTimeout(timer);
      if (client.current === exchange) client.current = undefined;
      resolve(outcome instanceof UpstreamExchange ? { kind: 'response', status: outcome.status, res: outcome } : outcome);
    });
    const timer = setTimeout(() => exchange.cancel('timeout', `no response within ${input.timeoutMs} ms`), input.timeoutMs);
    client.current = exchange;
    const options = {
      path: input.path,
      method: input.method as Dispatcher.HttpMethod,
      headers: headers as Record<string, string | string[]>,
      body: bodyOf(input.body),
      servername: input.target.servername,
      headersTimeout: 0,
      bodyTimeout: 0,
    };
    try {
      input.target.pool.dispatch(options as Dispatcher.DispatchOptions, exchange as unknown as Dispatcher.DispatchHandler);
    } catch (err) {
      exchange.onError(err as Error);
    }
  });
}

function bodyOf(body: RequestBody): Buffer | AsyncIterable<Buffer> | null {
  if (body.kind === 'buffered') return body.bytes.length === 0 ? null : body.bytes;
  return streamed(body.head, body.source);
}

/** What was read while deciding to stream, then the rest of the request. */
async function* streamed(head: readonly Buffer[], source: IncomingMessage): AsyncIterable<Buffer> {
  yield* head;
  for await (const chunk of source) yield chunk as Buffer;
}
