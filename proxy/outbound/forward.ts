/**
 * One request through the outbound stack (proxy/README.md, "Pipeline"):
 * route -> admit -> deadline -> choose -> attempt -> record -> retry? -> answer.
 * The balancing and resilience decisions are the pure pieces' (ServicePicker,
 * OutlierDetector, RetryPolicy, PendingLimits, Deadline); this file only
 * feeds them real outcomes and latencies and moves the bytes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { type CompiledRequestPolicy, upstreamRequestHeaders } from '../http/headers.js';
import { replyWithReason } from '../http/reply.js';
import type { InFlight, ProxyMetrics, RouteMetrics } from '../metrics.js';
import { Deadline } from '../resilience/deadline.js';
import type { PendingLimits } from '../resilience/pending-limit.js';
import { type AttemptOutcome, isFailure } from '../resilience/retry-policy.js';
import { type AttemptResult, attempt, ClientLink, inMesh } from './attempt.js';
import { readBody, type RequestBody } from './body.js';
import type { OutboundOptions } from './options.js';
import type { UpstreamPools, UpstreamTarget } from './pool.js';
import type { RouteEndpoint, RouteTable, ServiceRoute } from './routes.js';
import { resolveTarget } from './target.js';

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

/** Handles one request end to end. Never rejects: every failure is an answer. */
export async function forward(ctx: ForwardContext, caller: Caller, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const startedAt = performance.now();
  const target = resolveTarget(req, caller.upstream);
  if ('error' in target) return fail(ctx, res, caller, '', 'WEFT_ERR_PROXY_TARGET_INVALID', `weft: ${target.error}`, startedAt);
  const { service } = target;
  const admission = ctx.limits.tryAcquire(service);
  if (!admission.ok) return fail(ctx, res, caller, service, admission.code, admission.reason, startedAt);
  const inFlight: InFlight | undefined = ctx.metrics?.inFlightOf('outbound', service);
  if (inFlight !== undefined) inFlight.value++;
  // The client may leave mid-request: stop the attempt in flight and do not retry.
  const client = new ClientLink();
  // Only when the client left early. (An AbortController per request cost ~4% of the outbound's
  // CPU: the signal, its listeners, and on abort() a DOMException with a stack capture.)
  res.once('close', () => {
    if (!res.writableFinished) client.leave();
  });
  try {
    const route = ctx.routes.get(service);
    if (!route.known) await route.waitKnown(ctx.options.firstRouteWaitMs);
    let body: RequestBody;
    try {
      body = await readBody(req, ctx.options.maxBufferedBody);
    } catch {
      res.destroy();
      return;
    }
    const headers = upstreamRequestHeaders(req, ctx.headerPolicy, req.socket.remoteAddress);
    headers.host = target.host;
    await attemptLoop(ctx, caller, route, req, res, { path: target.path, headers, body, client, startedAt });
  } finally {
    admission.release();
    if (inFlight !== undefined) inFlight.value--;
  }
}

interface RequestState {
  readonly path: string;
  readonly headers: ReturnType<typeof upstreamRequestHeaders>;
  readonly body: RequestBody;
  readonly client: ClientLink;
  readonly startedAt: number;
}

async function attemptLoop(ctx: ForwardContext, caller: Caller, route: ServiceRoute, req: IncomingMessage, res: ServerResponse, state: RequestState): Promise<void> {
  const { options } = ctx;
  const service = route.service;
  const method = req.method ?? 'GET';
  const deadline = Deadline.start(options.timeouts, options.now);
  const retryReq = { method, headers: req.headers, bodyBuffered: state.body.kind === 'buffered' };
  route.retry.onRequest();
  for (let retries = 0; ; retries++) {
    const endpoint = route.picker.pick();
    if (endpoint === undefined) {
      return fail(ctx, res, caller, service, 'WEFT_ERR_NO_INSTANCES', `weft: no instances of service ${service}`, state.startedAt);
    }
    const upstream = targetFor(ctx, caller, service, endpoint);
    if (upstream === undefined) {
      return fail(ctx, res, caller, service, 'WEFT_ERR_NO_IDENTITY', `weft: service ${caller.service} has no mesh identity yet`, state.startedAt);
    }
    const timeoutMs = deadline.tryTimeoutMs(options.timeouts.tryTimeoutMs);
    if (timeoutMs <= 0) return fail(ctx, res, caller, service, 'WEFT_ERR_UPSTREAM_TIMEOUT', `weft: request timeout calling service ${service}`, state.startedAt);
    route.picker.onStart(endpoint);
    const sentAt = options.now();
    const result = await attempt({ endpoint, target: upstream, method, path: state.path, headers: state.headers, body: state.body, timeoutMs, client: state.client });
    const ok = result.kind === 'response' && result.status < 500;
    route.picker.onEnd(endpoint, { latencyMs: options.now() - sentAt, ok });
    if (result.kind === 'aborted') return;
    const ejection = route.outlier.onResult(endpoint.id, ok);
    if (ejection !== undefined) {
      options.logger.warn({ service, instance: endpoint.id, durationMs: ejection.durationMs, ejections: ejection.ejections }, 'instance ejected');
      ctx.metrics?.ejections.inc({ destination: service, instance: endpoint.id });
    }
    const outcome = toOutcome(result);
    if (ok || !isFailure(outcome)) return respond(ctx, caller, service, endpoint, result, res, state.startedAt);
    const decision = route.retry.decide(retryReq, outcome, retries, deadline);
    if (!decision.retry) {
      ctx.metrics?.retriesSkipped.inc({ destination: service, reason: decision.reason });
      return respond(ctx, caller, service, endpoint, result, res, state.startedAt);
    }
    ctx.metrics?.retries.inc({ destination: service, reason: retryReason(result) });
    options.logger.debug({ service, instance: endpoint.id, outcome: retryReason(result), delayMs: decision.delayMs }, 'retrying');
    // Drain the failed response so its connection goes back to the pool.
    if (result.kind === 'response') result.res.discard();
    if (decision.delayMs > 0) await sleep(decision.delayMs);
    if (state.client.left) return;
  }
}

function targetFor(ctx: ForwardContext, caller: Caller, service: string, endpoint: RouteEndpoint): UpstreamTarget | undefined {
  const inst = endpoint.instance;
  return inMesh(endpoint) ? ctx.pools.mesh(caller.service, service, inst.address, inst.meshPort!) : ctx.pools.plain(inst.address, inst.port);
}

function toOutcome(result: Exclude<AttemptResult, { kind: 'aborted' }>): AttemptOutcome {
  return result.kind === 'response' ? { kind: 'response', status: result.status } : { kind: result.kind };
}

function retryReason(result: AttemptResult): string {
  return result.kind === 'response' ? String(result.status) : result.kind === 'connect-error' ? 'connect' : result.kind;
}

/** Sends the final outcome to the client: the instance's response, or the proxy's own answer. */
function respond(
  ctx: ForwardContext,
  caller: Caller,
  service: string,
  endpoint: RouteEndpoint,
  result: Exclude<AttemptResult, { kind: 'aborted' }>,
  res: ServerResponse,
  startedAt: number,
): void {
  if (result.kind !== 'response') {
    const timeout = result.kind === 'timeout';
    const reason = timeout
      ? `weft: timeout calling service ${service} (instance ${endpoint.id})`
      : `weft: instance ${endpoint.id} of service ${service} unreachable (${result.kind}: ${result.error.message})`;
    fail(ctx, res, caller, service, timeout ? 'WEFT_ERR_UPSTREAM_TIMEOUT' : 'WEFT_ERR_UPSTREAM_UNAVAILABLE', reason, startedAt, endpoint);
    return;
  }
  const metrics = routeMetrics(ctx, caller, service, endpoint);
  res.once('close', () => record(metrics, startedAt, result.status));
  result.res.pipeTo(res);
}

/** The proxy's own answer: status from the error catalogue, reason in x-weft-reason. */
function fail(
  ctx: ForwardContext,
  res: ServerResponse,
  caller: Caller,
  service: string,
  code: ErrorCode,
  reason: string,
  startedAt: number,
  endpoint?: RouteEndpoint,
): void {
  const status = ERROR_CODES[code].status;
  if (status >= 500) ctx.options.logger.debug({ code, reason, caller: caller.service, service }, 'outbound answered with an error');
  replyWithReason(res, status, reason);
  record(routeMetrics(ctx, caller, service, endpoint), startedAt, status);
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

/**
 * Counts an answered request. forward() keeps the in-flight gauge itself
 * (the instance is not known when a request arrives), so this leaves it alone.
 */
function record(metrics: RouteMetrics | undefined, startedAt: number, status: number): void {
  metrics?.count(startedAt, status);
}
