/**
 * The scheduler's HTTP API on fastify: bearer-token auth on every route but
 * /v1/health, the contract's JSON Schemas (base/contracts/scheduler-api.ts) on
 * every route, and one error shape `{ code, message, key?, value? }` for
 * everything that goes wrong, including schema failures, unknown routes and
 * bodies fastify cannot parse. Routes live in scheduler-routes-*.ts.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { ROUTE_SCHEMAS, ROUTES, type RouteSchema, routeOf } from '../../base/contracts/scheduler-api.js';
import { isWeftError, WeftError } from '../../base/errors.js';
import type { Logger } from '../../base/log.js';
import { registry } from '../../base/metrics.js';
import { authenticate, type Caller } from './scheduler-token.js';

/** A route handler: gets the request and who called. */
export type Handler = (req: FastifyRequest, caller: Caller | undefined) => Promise<unknown>;

/** The handlers, one per contract route (metrics and health are built in). */
export type Handlers = Record<Exclude<keyof typeof ROUTES, 'metrics'>, Handler>;

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** Largest request body: job specs may carry files. */
const BODY_LIMIT = 4 * 1024 * 1024;

/** Builds the server (not listening). */
export function buildApi(opts: { token: string; logger: Logger; handlers: Handlers }): FastifyInstance {
  const app = Fastify({
    // fastify's logger would print request bodies' neighbours; weft logs what matters itself.
    logger: false,
    bodyLimit: BODY_LIMIT,
    // Extra fields are errors, not silently dropped: a typo must not pass as "accepted".
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, strict: false } },
  });
  // YAML (or any text) bodies are job specs: the contract's `{ spec: text }`.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => {
    done(null, { spec: body });
  });

  app.addHook('onRequest', async (req) => {
    if (req.url === '/v1/health' || req.url.startsWith('/v1/health?')) return;
    const header = req.headers.authorization;
    const presented = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const caller = authenticate(opts.token, presented);
    if (caller === undefined) {
      throw new WeftError('WEFT_ERR_API_UNAUTHORIZED', presented === undefined ? 'missing bearer token (Authorization: Bearer <token>; $WEFT_TOKEN)' : 'unknown bearer token', {
        key: 'authorization',
      });
    }
    req.caller = caller;
  });

  app.setErrorHandler((err, req, reply) => sendError(reply, toWeftError(err, opts.logger, req)));
  app.setNotFoundHandler((req, reply) => {
    sendError(reply, new WeftError('WEFT_ERR_API_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { key: 'route', value: `${req.method} ${req.url.split('?')[0]}` }));
  });

  app.get('/metrics', { schema: { response: { 200: { type: 'string' } } } }, async (req, reply) => {
    if (req.caller?.kind !== 'operator') throw forbidden();
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });

  for (const name of Object.keys(opts.handlers) as Array<keyof Handlers>) {
    const { method, path } = routeOf(ROUTES[name]);
    const s = ROUTE_SCHEMAS[name] as RouteSchema;
    const schema: Record<string, unknown> = { response: { [s.status ?? 200]: s.response } };
    if (s.params !== undefined) schema['params'] = s.params;
    if (s.querystring !== undefined) schema['querystring'] = s.querystring;
    if (s.body !== undefined) schema['body'] = s.body;
    const handler = opts.handlers[name];
    app.route({
      method: method as 'GET',
      url: path,
      schema,
      handler: async (req, reply) => {
        if (name !== 'health' && req.caller?.kind !== 'operator' && s.agent !== true) throw forbidden();
        reply.code(s.status ?? 200);
        return handler(req, req.caller);
      },
    });
  }
  return app;
}

function forbidden(): WeftError {
  return new WeftError('WEFT_ERR_API_FORBIDDEN', 'an agent token may not call this route (operator token only)', { key: 'authorization' });
}

function sendError(reply: FastifyReply, err: WeftError): void {
  if (err.code === 'WEFT_ERR_CSR_RATE_LIMITED') {
    const after = (err.value as { retryAfterMs?: number } | undefined)?.retryAfterMs;
    if (after !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(after / 1000))));
  }
  void reply.code(err.statusCode).type('application/json').send(JSON.stringify(err.toJSON()));
}

/** Any error -> a WeftError. Schema failures name the field; unknown errors are logged and answered without details. */
function toWeftError(err: unknown, logger: Logger, req: FastifyRequest): WeftError {
  if (isWeftError(err)) return err;
  const e = err as { validation?: Array<{ instancePath: string; message?: string; params?: Record<string, unknown> }>; validationContext?: string; statusCode?: number; code?: string; message: string };
  if (e.validation !== undefined) {
    const v = e.validation[0];
    const extra = v?.params?.['additionalProperty'];
    const field = [e.validationContext, ...(v?.instancePath ?? '').split('/').filter(Boolean), ...(typeof extra === 'string' ? [extra] : [])].filter(Boolean).join('.');
    const reason = typeof extra === 'string' ? 'unknown field' : (v?.message ?? 'is invalid');
    return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${field}: ${reason}`, { key: field });
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${e.message}${e.code === undefined ? '' : ` (${e.code})`}`, { key: 'body' });
  }
  logger.error({ err, method: req.method, url: req.url.split('?')[0] }, 'API request failed');
  return new WeftError('WEFT_ERR_API_INTERNAL', 'internal error; see the scheduler log', {});
}
