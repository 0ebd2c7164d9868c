/**
 * One request through the outbound stack (proxy/README.md, "Pipeline"):
 * route -> admit -> deadline -> choose -> attempt -> record -> retry? -> answer.
 * The balancing and resilience decisions are the pure pieces' (ServicePicker,
 * OutlierDetector, RetryPolicy, PendingLimits, Deadline); this file feeds
 * them real outcomes and latencies and moves the bytes.
 *
 * Everything is callbacks on one object per request (`OutboundRequest`),
 * which is also the `Exchange` of its current attempt: the retry decision is
 * taken synchronously on the response head, so a response to relay is
 * never held, and nothing is allocated per request beyond the head string,
 * this object and the upstream call.
 *
 * Bodies: up to `maxBufferedBody` (64 KiB) are read whole before an
 * instance is chosen, so the request can be retried; larger (or a declared
 * Content-Length above that) stream to the first instance and are never
 * retried. The per-try timeout runs until the response head; the body then
 * streams at the client's pace. A request counts against its service's
 * pending limit once its body is complete; a stalled body is cut by the
 * listener's body-idle timeout (408, h1/server.ts).
 */
import { ERROR_CODES, type ErrorCode } from '../../base/errors.js';
import type { CompiledRequestPolicy } from '../http/headers.js';
import type { Call, Exchange } from '../h1/client.js';
import { CHUNK_END, CRLF, chunkHead, Framing, headerValue, requestLines, responseFraming, responseLines } from '../h1/head.js';
import type { H1Request } from '../h1/server.js';
import type { InFlight, ProxyMetrics, RouteMetrics } from '../metrics.js';
import { Deadline } from '../resilience/deadline.js';
import type { Admission, PendingLimits } from '../resilience/pending-limit.js';
import { type AttemptOutcome, isFailure, type RetryRequest } from '../resilience/retry-policy.js';
import type { OutboundOptions } from './options.js';
import type { UpstreamPools, UpstreamTarget } from './pool.js';
import type { RouteEndpoint, RouteTable, ServiceRoute } from './routes.js';
import { COLD_START_HEADER, type Held } from './activation.js';
import { resolveTarget } from './target.js';

/** Header naming the instance the destination host proxy must forward to. */
export const HEADER_INSTANCE = 'x-weft-instance';

/** What every request of an outbound proxy shares. */
export interface ForwardContext {
  readonly options: OutboundOptions;
  readonly routes: RouteTable;
  readonly pools: UpstreamPools;
  readonly limits: PendingLimits;
  readonly headerPolicy: CompiledRequestPolicy;
  readonly metrics: ProxyMetrics | undefined;
}

/** The listener a request came in on: who is calling, and maybe a fixed upstream. */
export interface Caller {
  readonly service: string;
  readonly upstream?: string | undefined;
}

/** True when the instance is reached through its host proxy (it registered weft_mesh_port). */
export function inMesh(endpoint: RouteEndpoint): boolean {
  return endpoint.instance.meshPort !== undefined;
}

/** Where a request is. */
const State = { Body: 0, Attempt: 1, Relay: 2, Wait: 3, Done: 4, Held: 5 } as const;
type State = (typeof State)[keyof typeof State];

/** Handles one request end to end. Every failure is an answer. */
export function forward(ctx: ForwardContext, caller: Caller, req: H1Request): void {
  const target = resolveTarget({ method: req.method, url: req.url, headers: { host: headerValue(req.headers, 'host') } }, caller.upstream);
  if ('error' in target) {
    answer(ctx, req, caller, '', undefined, 'WEFT_ERR_PROXY_TARGET_INVALID', `weft: ${target.error}`);
    return;
  }
  // A request whose body is still arriving is admitted uncounted: it holds a slot of the
  // service's limit only once its body is complete (#bodyEnd), so slow uploaders cannot
  // fill the limit for every caller (pending-limit.ts).
  const admission = ctx.limits.tryAcquire(target.service, req.complete);
  if (!admission.ok) {
    answer(ctx, req, caller, target.service, undefined, admission.code, admission.reason);
    return;
  }
  const route = ctx.routes.get(target.service);
  const prefix = `${req.method} ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n${requestLines(req.headers, ctx.headerPolicy, req.remoteAddress)}`;
  new OutboundRequest(ctx, caller, req, route, prefix, admission).start();
}

/**
 * One attempt's view of the upstream call: when the request moves on (a
 * retry, a timeout, the client leaving), the attempt is dropped and what its
 * call still delivers (the rest of a 503 being drained so its connection can
 * be reused) goes nowhere.
 */
class Attempt implements Exchange {
  live = true;
  readonly #owner: OutboundRequest;
  readonly #socket: H1Request['conn']['socket'];

  constructor(owner: OutboundRequest, req: H1Request) {
    this.#owner = owner;
    this.#socket = req.conn.socket;
  }

  onHead(status: number, text: string | undefined, headers: string[]): void {
    if (this.live) this.#owner.onHead(this, status, text, headers);
  }
  onData(chunk: Buffer): boolean {
    return this.live ? this.#owner.relayData(chunk) : true;
  }
  onEnd(): void {
    if (this.live) this.#owner.relayEnd();
  }
  onError(kind: 'connect-error' | 'reset', err: Error): void {
    if (this.live) this.#owner.onError(kind, err);
  }
  cork(): void {
    this.#socket.cork();
  }
  uncork(): void {
    this.#socket.uncork();
  }
}

class OutboundRequest implements Held {
  readonly #ctx: ForwardContext;
  readonly #caller: Caller;
  readonly #req: H1Request;
  readonly #route: ServiceRoute;
  readonly #prefix: string;
  readonly #admission: Admission;
  readonly #inFlight: InFlight | undefined;
  #state: State = State.Body;
  #deadline: Deadline | undefined;
  #retries = 0;
  /** The whole body (buffered). */
  #body: Buffer | undefined;
  /** Body read so far (before the decision to stream, or before the call exists). */
  #chunks: Buffer[] = [];
  #size = 0;
  #streamed = false;
  #sinkSet = false;
  #endpoint: RouteEndpoint | undefined;
  #attemptOf: Attempt | undefined;
  #call: Call | undefined;
  #sentAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #status = 0;
  /** Held while the service was at zero: the answer says so (x-weft-cold-start). */
  #coldStart = false;

  constructor(ctx: ForwardContext, caller: Caller, req: H1Request, route: ServiceRoute, prefix: string, admission: Admission) {
    this.#ctx = ctx;
    this.#caller = caller;
    this.#req = req;
    this.#route = route;
    this.#prefix = prefix;
    this.#admission = admission;
    this.#inFlight = ctx.metrics?.inFlightOf('outbound', route.service);
    if (this.#inFlight !== undefined) this.#inFlight.value++;
    req.onAbort = this.#onAbort;
  }

  start(): void {
    if (!this.#route.known) {
      void this.#route.waitKnown(this.#ctx.options.firstRouteWaitMs).then(() => {
        if (this.#state === State.Body && !this.#req.aborted) this.#readBody();
      });
      return;
    }
    this.#readBody();
  }

  // ---- the request body ----

  #readBody(): void {
    const req = this.#req;
    if (req.framing === Framing.None) {
      this.#begin();
      return;
    }
    // Expect is answered here: the body is read before an instance is chosen.
    if (req.versionMinor === 1 && headerValue(req.headers, 'expect')?.toLowerCase() === '100-continue') req.writeContinue();
    if (req.framing === Framing.Length && req.contentLength > this.#ctx.options.maxBufferedBody) {
      this.#streamed = true;
      // Body bytes that already arrived (a pipelined request, or one that waited for its route)
      // are held in #chunks and sent by #attempt with the head.
      this.#sink();
      this.#begin();
      return;
    }
    this.#sink();
  }

  #sink(): void {
    if (this.#sinkSet) return;
    this.#sinkSet = true;
    this.#req.setSink({ onData: (chunk) => this.#bodyData(chunk), onEnd: () => this.#bodyEnd() });
  }

  #bodyData(chunk: Buffer): void {
    // Answered already (an app that replied before reading the upload): the rest goes nowhere.
    if (this.#state === State.Done) return;
    if (this.#streamed) {
      if (this.#call === undefined) this.#chunks.push(chunk);
      else this.#sendBody(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > this.#ctx.options.maxBufferedBody) {
      this.#streamed = true;
      this.#begin();
    }
  }

  #bodyEnd(): void {
    this.#admission.count();
    if (this.#streamed) {
      const call = this.#call;
      if (call === undefined) return; // #attempt sends the end with the held chunks
      call.endBody(this.#req.framing === Framing.Chunked);
      return;
    }
    this.#body = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#size);
    this.#chunks = [];
    this.#begin();
  }

  #sendBody(chunk: Buffer): void {
    this.#call!.writeBody(chunk, this.#req.framing === Framing.Chunked, this.#req);
  }

  // ---- attempts ----

  #begin(): void {
    this.#deadline = Deadline.start(this.#ctx.options.timeouts, this.#ctx.options.now);
    this.#route.retry.onRequest();
    this.#attempt();
  }

  #attempt(): void {
    const ctx = this.#ctx;
    const route = this.#route;
    const req = this.#req;
    if (req.aborted) {
      this.#finish(499);
      return;
    }
    const endpoint = route.picker.pick();
    if (endpoint === undefined) {
      if (this.#mayHold()) {
        this.#hold();
        return;
      }
      // At zero but not holdable (a streamed body): refused, but the next request should find an instance.
      if (route.activatable && route.healthyCount === 0) route.held.activate();
      this.#fail('WEFT_ERR_NO_INSTANCES', `weft: no instances of service ${route.service}`);
      return;
    }
    const mesh = inMesh(endpoint);
    const inst = endpoint.instance;
    const target: UpstreamTarget | undefined = mesh ? ctx.pools.mesh(this.#caller.service, route.service, inst.address, inst.meshPort!) : ctx.pools.plain(inst.address, inst.port);
    if (target === undefined) {
      this.#fail('WEFT_ERR_NO_IDENTITY', `weft: service ${this.#caller.service} has no mesh identity yet`);
      return;
    }
    const timeoutMs = this.#deadline!.tryTimeoutMs(ctx.options.timeouts.tryTimeoutMs);
    if (timeoutMs <= 0) {
      this.#fail('WEFT_ERR_UPSTREAM_TIMEOUT', `weft: request timeout calling service ${route.service}`);
      return;
    }
    this.#endpoint = endpoint;
    this.#state = State.Attempt;
    route.picker.onStart(endpoint);
    this.#sentAt = ctx.options.now();
    this.#timer = setTimeout(this.#onTimeout, timeoutMs);
    let framing = '';
    let body: Buffer | undefined;
    let ended = true;
    const chunked = req.framing === Framing.Chunked;
    if (this.#streamed) {
      framing = chunked ? 'transfer-encoding: chunked\r\n' : `content-length: ${req.contentLength}\r\n`;
      if (this.#chunks.length > 0) body = chunkedIf(chunked, this.#chunks);
      this.#chunks = [];
      if (req.complete && chunked) body = body === undefined ? CHUNK_END : Buffer.concat([body, CHUNK_END]);
      ended = req.complete;
    } else if (this.#body !== undefined) {
      framing = `content-length: ${this.#body.length}\r\n`;
      body = this.#body;
    }
    const head = `${this.#prefix}${mesh ? `${HEADER_INSTANCE}: ${inst.id}\r\n` : ''}${framing}\r\n`;
    const attempt = new Attempt(this, req);
    this.#attemptOf = attempt;
    this.#call = target.pool.request(attempt, head, body, ended, req.method === 'HEAD');
    if (this.#streamed && !req.complete) this.#sink();
  }

  // ---- activation from zero (activation.ts) ----

  /**
   * A first attempt for a service the scheduler may hold at zero, with no
   * healthy instance now, and a body held whole (a streamed one is not kept).
   */
  #mayHold(): boolean {
    const route = this.#route;
    return route.activatable && route.healthyCount === 0 && this.#retries === 0 && !this.#coldStart && !this.#streamed;
  }

  #hold(): void {
    const route = this.#route;
    const wait = Math.min(this.#ctx.options.activation.maxWaitMs, this.#deadline!.remainingMs());
    if (wait <= 0) {
      this.#fail('WEFT_ERR_COLD_START_TIMEOUT', `weft: service ${route.service} is at zero and the request has no time left to wait`);
      return;
    }
    if (!route.held.add(this)) {
      this.#fail('WEFT_ERR_HOLD_QUEUE_FULL', `weft: service ${route.service} is starting from zero and already has ${route.held.size} requests waiting`);
      return;
    }
    this.#state = State.Held;
    this.#coldStart = true;
    this.#timer = setTimeout(this.#onHoldTimeout, wait);
  }

  /** HoldQueue: an instance is healthy; try again (a fresh pick finds it). */
  release(): void {
    if (this.#state !== State.Held) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = State.Wait;
    if (this.#req.aborted) return;
    this.#attempt();
  }

  readonly #onHoldTimeout = (): void => {
    this.#timer = undefined;
    if (this.#state !== State.Held) return;
    this.#route.held.remove(this);
    this.#fail('WEFT_ERR_COLD_START_TIMEOUT', `weft: no instance of service ${this.#route.service} became healthy in time (cold start)`);
  };

  /** Drops the current attempt: whatever its call still delivers goes nowhere. */
  #drop(abort: boolean): void {
    if (this.#attemptOf !== undefined) this.#attemptOf.live = false;
    this.#attemptOf = undefined;
    const call = this.#call;
    this.#call = undefined;
    if (abort) call?.abort();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #onTimeout = (): void => {
    this.#timer = undefined;
    if (this.#state !== State.Attempt) return;
    this.#drop(true);
    this.#outcome({ kind: 'timeout' });
  };

  readonly #onAbort = (): void => {
    const state = this.#state;
    if (state === State.Done) return;
    if (state === State.Held) this.#route.held.remove(this);
    this.#drop(true);
    if (state === State.Attempt && this.#endpoint !== undefined) this.#route.picker.onEnd(this.#endpoint, { latencyMs: this.#ctx.options.now() - this.#sentAt, ok: false });
    this.#finish(this.#status === 0 ? 499 : this.#status);
  };

  // ---- the upstream call (through Attempt) ----

  onHead(attempt: Attempt, status: number, text: string | undefined, headers: string[]): void {
    if (this.#state !== State.Attempt) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (status >= 500 && !this.#final({ kind: 'response', status }, false)) {
      // Retrying: this response is read to its end and dropped, so its connection can be reused.
      attempt.live = false;
      this.#attemptOf = undefined;
      this.#call = undefined;
      this.#state = State.Wait;
      return;
    }
    if (status < 500) this.#final({ kind: 'response', status }, true);
    this.#state = State.Relay;
    this.#status = status;
    const f = responseFraming(headers, status, this.#req.method === 'HEAD');
    const lines = responseLines(headers);
    this.#req.writeHead(status, text, this.#coldStart ? `${lines}${COLD_START_HEADER}: true\r\n` : lines, f.framing, f.length, f.length);
  }

  relayData(chunk: Buffer): boolean {
    return this.#req.relay(chunk, this.#call);
  }

  relayEnd(): void {
    if (this.#state !== State.Relay) return;
    this.#call = undefined;
    this.#attemptOf = undefined;
    this.#req.end();
    this.#finish(this.#status);
  }

  onError(kind: 'connect-error' | 'reset', err: Error): void {
    if (this.#state === State.Relay) {
      // The response broke mid-body: the client's answer cannot be completed.
      this.#drop(false);
      this.#req.destroy();
      this.#finish(this.#status);
      return;
    }
    if (this.#state !== State.Attempt) return;
    this.#drop(false);
    this.#outcome({ kind }, err);
  }

  /**
   * Feeds the picker and the outlier detector; true when the outcome is
   * final (answer it), false when a retry was scheduled.
   */
  #final(outcome: AttemptOutcome, ok: boolean, err?: Error): boolean {
    const ctx = this.#ctx;
    const route = this.#route;
    const endpoint = this.#endpoint!;
    route.picker.onEnd(endpoint, { latencyMs: ctx.options.now() - this.#sentAt, ok });
    const ejection = route.outlier.onResult(endpoint.id, ok);
    if (ejection !== undefined) {
      ctx.options.logger.warn({ service: route.service, instance: endpoint.id, durationMs: ejection.durationMs, ejections: ejection.ejections }, 'instance ejected');
      ctx.metrics?.ejections.inc({ destination: route.service, instance: endpoint.id });
    }
    if (ok || !isFailure(outcome)) return true;
    const decision = route.retry.decide(this.#retryRequest(), outcome, this.#retries, this.#deadline!);
    if (!decision.retry) {
      ctx.metrics?.retriesSkipped.inc({ destination: route.service, reason: decision.reason });
      return true;
    }
    const why = outcome.kind === 'response' ? String(outcome.status) : outcome.kind === 'connect-error' ? 'connect' : outcome.kind;
    ctx.metrics?.retries.inc({ destination: route.service, reason: why });
    ctx.options.logger.debug({ service: route.service, instance: endpoint.id, outcome: why, err: err?.message, delayMs: decision.delayMs }, 'retrying');
    this.#retries++;
    setTimeout(this.#retry, decision.delayMs);
    return false;
  }

  /** A connect error, reset or timeout: retry, or answer 502/504. */
  #outcome(outcome: AttemptOutcome, err?: Error): void {
    if (!this.#final(outcome, false, err)) {
      this.#state = State.Wait;
      return;
    }
    const service = this.#route.service;
    const id = this.#endpoint!.id;
    if (outcome.kind === 'timeout') this.#fail('WEFT_ERR_UPSTREAM_TIMEOUT', `weft: timeout calling service ${service} (instance ${id})`);
    else this.#fail('WEFT_ERR_UPSTREAM_UNAVAILABLE', `weft: instance ${id} of service ${service} unreachable (${outcome.kind}: ${err?.message ?? 'no answer'})`);
  }

  readonly #retry = (): void => {
    if (this.#state !== State.Wait || this.#req.aborted) return;
    this.#attempt();
  };

  #retryRequest(): RetryRequest {
    const h = this.#req.headers;
    return {
      method: this.#req.method,
      headers: { 'x-weft-retryable': headerValue(h, 'x-weft-retryable'), 'idempotency-key': headerValue(h, 'idempotency-key') },
      bodyBuffered: !this.#streamed,
    };
  }

  #fail(code: ErrorCode, reason: string): void {
    const status = ERROR_CODES[code].status;
    if (status >= 500) this.#ctx.options.logger.debug({ code, reason, caller: this.#caller.service, service: this.#route.service }, 'outbound answered with an error');
    this.#status = status;
    this.#req.reply(status, reason);
    this.#finish(status);
  }

  #finish(status: number): void {
    if (this.#state === State.Done) return;
    this.#state = State.Done;
    this.#admission.release();
    if (this.#inFlight !== undefined) this.#inFlight.value--;
    routeMetrics(this.#ctx, this.#caller, this.#route.service, this.#endpoint)?.count(this.#req.startedAt, status);
  }
}


function chunkedIf(chunked: boolean, chunks: readonly Buffer[]): Buffer {
  if (!chunked) return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const parts: Buffer[] = [];
  for (const c of chunks) parts.push(chunkHead(c.length), c, CRLF);
  return Buffer.concat(parts);
}

/** The proxy's own answer to a request that never reached routing. */
function answer(ctx: ForwardContext, req: H1Request, caller: Caller, service: string, endpoint: RouteEndpoint | undefined, code: ErrorCode, reason: string): void {
  const status = ERROR_CODES[code].status;
  if (status >= 500) ctx.options.logger.debug({ code, reason, caller: caller.service, service }, 'outbound answered with an error');
  // A target that cannot be routed (https://, CONNECT, no Host, not a service name) is refused and
  // the connection closed, as a malformed request is; the others keep it.
  if (code === 'WEFT_ERR_PROXY_TARGET_INVALID') req.refuse(status, reason);
  else req.reply(status, reason);
  routeMetrics(ctx, caller, service, endpoint)?.count(req.startedAt, status);
}

/**
 * The route's handles, cached per caller and endpoint: building the label key
 * per answer cost more than the counting. Endpoints are replaced when their
 * route table changes, so the WeakMaps let old ones go.
 */
const routeCache = new WeakMap<Caller, WeakMap<RouteEndpoint, RouteMetrics>>();

function routeMetrics(ctx: ForwardContext, caller: Caller, service: string, endpoint: RouteEndpoint | undefined): RouteMetrics | undefined {
  if (ctx.metrics === undefined) return undefined;
  let byEndpoint = endpoint === undefined ? undefined : routeCache.get(caller);
  const cached = endpoint === undefined ? undefined : byEndpoint?.get(endpoint);
  if (cached !== undefined) return cached;
  const route = ctx.metrics.route({
    direction: 'outbound',
    source: caller.service,
    destination: service,
    version: endpoint?.version ?? '',
    instance: endpoint?.id ?? '',
  });
  if (endpoint !== undefined) {
    if (byEndpoint === undefined) {
      byEndpoint = new WeakMap();
      routeCache.set(caller, byEndpoint);
    }
    byEndpoint.set(endpoint, route);
  }
  return route;
}
