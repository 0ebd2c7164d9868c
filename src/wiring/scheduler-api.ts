/**
 * The scheduler's HTTP API on fastify: bearer-token auth on every route but
 * /v1/health, the contract's JSON Schemas (base/contracts/scheduler-api.ts) on
 * every route, and one error shape `{ code, message, key?, value? }` for
 * everything that goes wrong, including schema failures, unknown routes and
 * bodies fastify cannot parse. Routes live in scheduler-routes-*.ts.
 */
import { Ajv } from 'ajv';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
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
  interface FastifyContextConfig {
    /** The route answers without a token (decided by the route matched, never by the URL's text). */
    public?: boolean;
  }
}

/** Routes outside the contract, registered with `config: { public: true }` (the console's page: scheduler-console.ts). */
export interface PublicRoutes {
  register(app: FastifyInstance): void;
}

/** Largest request body: job specs may carry files. */
const BODY_LIMIT = 4 * 1024 * 1024;
/** Longest path parameter: the contract's longest names (nodes, secrets, allocations) have 128 characters. */
const MAX_PARAM_LENGTH = 128;
/** Deepest JSON body (a job spec nests about 10 levels); checked before validation, without recursing. */
const MAX_BODY_DEPTH = 64;
/** Longest piece of the request an error repeats (a value, a key, a path); longer ones are cut, with their length. */
const MAX_ECHO = 200;
/** Longest line of an error message, and longest string inside an error's value: the net under MAX_ECHO. */
const MAX_LINE = 1000;

/** Builds the server (not listening). */
export function buildApi(opts: { token: string; logger: Logger; handlers: Handlers; publicRoutes?: PublicRoutes }): FastifyInstance {
  const app = Fastify({
    // fastify's logger would print request bodies' neighbours; weft logs what matters itself.
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors the router answers before any route or hook (a parameter too long, bad percent-encoding): the API's shape too.
    frameworkErrors: (err, req, reply) => sendError(reply, frameworkError(err, req.url)),
  });
  // Validators. Extra fields are errors, not silently dropped: a typo must not pass as "accepted".
  // A JSON body already has types: nothing is coerced (`{"count":null}` is not 0, `"1"` is not 1,
  // `[true]` is not true). Path parameters and query strings are text by nature: they are coerced
  // to the schema's type by Ajv's rules (for a boolean, exactly "true" or "false"), scalars only,
  // so a repeated query key (an array) is refused.
  const options = { removeAdditional: false, useDefaults: false, allErrors: false, strict: false } as const;
  const bodies = new Ajv({ ...options, coerceTypes: false });
  const texts = new Ajv({ ...options, coerceTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'params' || httpPart === 'querystring' ? texts : bodies).compile(schema));
  // YAML (or any text) bodies are job specs: the contract's `{ spec: text }`.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => {
    done(null, { spec: body });
  });

  app.addHook('onRequest', async (req) => {
    if (req.url === '/v1/health' || req.url.startsWith('/v1/health?')) return;
    if (req.routeOptions.config?.public === true) return;
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

  // Before validation (Ajv recurses per level) and before any handler: a body nested deeper than any
  // request of the contract is refused, found with a loop rather than recursion.
  app.addHook('preValidation', async (req) => {
    const deep = nestedPath(req.body, MAX_BODY_DEPTH);
    if (deep !== undefined) {
      const key = clip(['body', ...deep.map((p) => clip(p))].join('.'));
      throw new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${key}: nested more than ${MAX_BODY_DEPTH} levels deep`, { key });
    }
  });

  app.setErrorHandler((err, req, reply) => sendError(reply, toWeftError(err, opts.logger, req)));
  app.setNotFoundHandler((req, reply) => {
    const route = clip(`${req.method} ${req.url.split('?')[0]}`);
    sendError(reply, new WeftError('WEFT_ERR_API_NOT_FOUND', `no route ${route}`, { key: 'route', value: route }));
  });

  app.get('/metrics', { schema: { response: { 200: { type: 'string' } } } }, async (req, reply) => {
    if (req.caller?.kind !== 'operator') throw forbidden();
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });

  opts.publicRoutes?.register(app);

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
  void reply.code(err.statusCode).type('application/json').send(JSON.stringify(bounded(err).toJSON()));
}

/** One Ajv error, as fastify hands them over (`err.validation`). */
interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Any error -> a WeftError. Schema failures name the field; unknown errors are logged and answered without details. */
function toWeftError(err: unknown, logger: Logger, req: FastifyRequest): WeftError {
  if (isWeftError(err)) return err;
  const e = err as { validation?: AjvError[]; validationContext?: string; statusCode?: number; code?: string; message: string };
  if (e.validation !== undefined) return requestInvalid(e.validation, e.validationContext);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${clip(e.message)}${e.code === undefined ? '' : ` (${e.code})`}`, { key: 'body' });
  }
  logger.error({ err, method: req.method, url: clip(req.url.split('?')[0] ?? '') }, 'API request failed');
  return new WeftError('WEFT_ERR_API_INTERNAL', 'internal error; see the scheduler log', {});
}

/**
 * A schema failure: `body.count: must be integer`, the key naming the field
 * (a missing or unknown one included). A union (`spec`: text or a mapping;
 * `action`: "allow" or "deny") is described whole, not by its first branch.
 */
function requestInvalid(errors: readonly AjvError[], context: string | undefined): WeftError {
  const union = errors.find((v) => v.keyword === 'anyOf');
  const first = union ?? errors[0];
  const extra = first?.params?.['additionalProperty'];
  const missing = first?.params?.['missingProperty'];
  const segments = (first?.instancePath ?? '')
    .split('/')
    .filter(Boolean)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (typeof extra === 'string') segments.push(extra);
  else if (typeof missing === 'string') segments.push(missing);
  const field = [context, ...segments.map((p) => clip(p))].filter(Boolean).join('.');
  let reason: string;
  if (typeof extra === 'string') reason = 'unknown field';
  else if (typeof missing === 'string') reason = 'is required';
  else if (union !== undefined) {
    const branches = errors.filter((v) => v !== union && v.instancePath === union.instancePath);
    // A union of literals says its values ("allow" or "deny"), not their type as well.
    const consts = branches.filter((v) => v.keyword === 'const');
    const parts = [...new Set((consts.length > 0 ? consts : branches).map(describe))];
    reason = parts.every((p) => p.startsWith('must be ')) ? `must be ${parts.map((p) => p.slice('must be '.length)).join(' or ')}` : parts.join(', or ');
  } else reason = first === undefined ? 'is invalid' : describe(first);
  return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${field}: ${reason || 'is invalid'}`, { key: field });
}

/** One Ajv error's reason, without the value (a refused secret value is never repeated). */
function describe(v: AjvError): string {
  if (v.keyword === 'type') return `must be ${String(v.params?.['type'])}`;
  if (v.keyword === 'const') return `must be ${JSON.stringify(v.params?.['allowedValue'])}`;
  return v.message ?? 'is invalid';
}

/**
 * Errors of the router itself. A path parameter longer than any name of the
 * contract (find-my-way's maxParamLength: fastify answers 414
 * FST_ERR_MAX_PARAM_LENGTH) is a request that breaks the route schema, named
 * by its parameter; a path with bad percent-encoding names the path.
 */
function frameworkError(err: FastifyError, url: string): WeftError {
  const path = url.split('?')[0] ?? '';
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    const long = longParam(path);
    const key = long === undefined ? 'path' : `params.${long.name}`;
    const got = long === undefined ? clip(path) : `${long.value.length} characters`;
    return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${key}: must be at most ${MAX_PARAM_LENGTH} characters (got ${got})`, {
      key,
      value: clip(long?.value ?? path),
    });
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `path: not a valid URL (bad percent-encoding): ${clip(path)}`, { key: 'path', value: clip(path) });
  }
  return new WeftError('WEFT_ERR_API_REQUEST_INVALID', `${clip(err.message)} (${err.code})`, { key: 'path' });
}

/** The parameter of a contract route that is too long in `path`. */
function longParam(path: string): { name: string; value: string } | undefined {
  const segments = path.split('/');
  for (const route of Object.values(ROUTES)) {
    const pattern = routeOf(route).path.split('/');
    if (pattern.length !== segments.length || !pattern.every((p, i) => p.startsWith(':') || p === segments[i])) continue;
    for (let i = 0; i < pattern.length; i++) {
      if (pattern[i]!.startsWith(':') && segments[i]!.length > MAX_PARAM_LENGTH) return { name: pattern[i]!.slice(1), value: decoded(segments[i]!) };
    }
  }
  return undefined;
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The path (keys and indexes) of the first value nested `max` levels deep, or
 * undefined. A loop over its own stack, never recursion: a 100,000-deep body
 * must not overflow the call stack.
 */
function nestedPath(root: unknown, max: number): string[] | undefined {
  interface Frame {
    value: object;
    depth: number;
    parent?: Frame;
    segment?: string;
  }
  if (root === null || typeof root !== 'object') return undefined;
  const stack: Frame[] = [{ value: root, depth: 0 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if (frame.depth >= max) {
      const path: string[] = [];
      for (let f: Frame | undefined = frame; f?.segment !== undefined; f = f.parent) path.push(f.segment);
      return path.reverse();
    }
    const entries = Object.entries(frame.value);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [segment, child] = entries[i]!;
      if (child !== null && typeof child === 'object') stack.push({ value: child, depth: frame.depth + 1, parent: frame, segment });
    }
  }
  return undefined;
}

/** `text` cut at `max` characters, with an ellipsis and the original length: `aaaa… (1048576 characters)`. */
function clip(text: string, max = MAX_ECHO): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/**
 * The error as answered: what it repeats of the request is cut. The API's own
 * errors cut their echoes to MAX_ECHO where they make them; errors raised
 * elsewhere (`invalid()`: `key: reason (got <value as JSON>)`) may repeat a
 * long key or value in full: a key or value longer than MAX_LINE is cut to
 * MAX_ECHO wherever the message repeats it, then every line of the message
 * and every string of the value is cut to MAX_LINE, so an answer never grows
 * with the input it refuses.
 */
function bounded(err: WeftError): WeftError {
  let message = err.message;
  let key = err.key;
  if (key !== undefined && key.length > MAX_LINE) {
    message = message.split(key).join(clip(key));
    key = clip(key);
  }
  const echoed = jsonOf(err.value);
  if (echoed !== undefined && echoed.length > MAX_LINE) {
    message = message.split(echoed).join(typeof err.value === 'string' ? JSON.stringify(clip(err.value)) : clip(echoed));
    if (typeof err.value === 'string') message = message.split(err.value).join(clip(err.value));
  }
  message = message
    .split('\n')
    .map((line) => clip(line, MAX_LINE))
    .join('\n');
  const details: { key?: string; value?: unknown } = {};
  if (key !== undefined) details.key = clip(key, MAX_LINE);
  if (err.value !== undefined) details.value = boundValue(err.value, 0);
  return new WeftError(err.code, message, details);
}

function jsonOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

/** A copy of an error's value: strings longer than MAX_LINE cut (the value itself, an echo, to MAX_ECHO), at most 100 entries per list or mapping, 4 levels. */
function boundValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return value.length <= MAX_LINE ? value : clip(value, depth === 0 ? MAX_ECHO : MAX_LINE);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= 4) return '…';
  if (Array.isArray(value)) {
    const out: unknown[] = value.slice(0, 100).map((v) => boundValue(v, depth + 1));
    if (value.length > 100) out.push(`… and ${value.length - 100} more`);
    return out;
  }
  const entries = Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries.slice(0, 100)) out[clip(k)] = boundValue(v, depth + 1);
  if (entries.length > 100) out['…'] = `${entries.length - 100} more keys`;
  return out;
}
