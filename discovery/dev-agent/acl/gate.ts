/**
 * Where ACLs meet HTTP: the token a request carries, the Authorizer it
 * resolves to (once per request), and what every route requires, in one table
 * (`ROUTE_ACL`). server.ts runs the table in a preHandler hook: a route that
 * needs a permission is refused with Consul's 403 before its handler runs;
 * a route that lists things resolves the token here and filters its answer
 * itself (`filtered`), as Consul filters lists rather than refusing them.
 * A route missing from the table is refused to every token but a management
 * one, so a new endpoint cannot slip in unguarded (test/discovery/dev-agent/
 * acl.test.ts checks every registered route has an entry).
 *
 * The token comes from `?token=`, else `X-Consul-Token`, else
 * `Authorization: Bearer <token>`, in Consul's order.
 */
import type { FastifyRequest } from 'fastify';
import { PROMETHEUS_SD_PATH } from '../../prometheus-sd.js';
import { ConsulHttpError } from '../http-error.js';
import type { RouteContext } from '../routes/common.js';
import { nodeKey } from '../state/types.js';
import { Authorizer } from './authorizer.js';

/** The token a request carries, if any (`?token`, then X-Consul-Token, then a Bearer Authorization). */
export function requestToken(req: FastifyRequest): string | undefined {
  const q = req.url.indexOf('?');
  if (q !== -1) {
    const t = new URLSearchParams(req.url.slice(q + 1)).get('token');
    if (t !== null && t !== '') return t;
  }
  const header = req.headers['x-consul-token'];
  const h = Array.isArray(header) ? header[0] : header;
  if (h !== undefined && h !== '') return h;
  const auth = req.headers.authorization;
  if (auth !== undefined && auth !== '') {
    // Consul: "<Scheme> <Value>", scheme exactly Bearer, the value's first word.
    const parts = auth.split(' ');
    if (parts.length > 1 && parts[0] === 'Bearer') {
      const value = parts.slice(1).join(' ').trim().split(' ')[0]!.trim();
      if (value !== '') return value;
    }
  }
  return undefined;
}

const resolved = new WeakMap<FastifyRequest, Authorizer>();
const ALLOW_ALL = Authorizer.manage('');

/** The request's Authorizer (resolved once; everything allowed when ACLs are off). 403 `ACL not found` for an unknown token. */
export function authzOf(ctx: RouteContext, req: FastifyRequest): Authorizer {
  const acl = ctx.acl;
  if (acl === undefined || !acl.enabled) return ALLOW_ALL;
  let a = resolved.get(req);
  if (a === undefined) {
    a = acl.resolve(requestToken(req));
    resolved.set(req, a);
  }
  return a;
}

/** What identifies a request's permissions in cached answers: '' when ACLs are off or the token is a management one. */
export function aclIdentity(ctx: RouteContext, req: FastifyRequest): string {
  const a = authzOf(ctx, req);
  return a.isManagement ? '' : a.accessorId;
}

type Gate = (a: Authorizer, req: FastifyRequest, ctx: RouteContext) => void;

/** No ACL (Consul checks none here). */
const PUBLIC = 'public';
/** Any token that resolves; the route filters its answer by read permission. */
const FILTERED = 'filtered';
/** The route decides (txn ops, ACL endpoints). */
const SELF = 'self';

export type RouteAcl = Gate | typeof PUBLIC | typeof FILTERED | typeof SELF;

const params = (req: FastifyRequest): Record<string, string> => req.params as Record<string, string>;
const queryHas = (req: FastifyRequest, name: string): boolean => (req.query as Record<string, unknown>)[name] !== undefined;

/** The body's JSON object, or undefined when it does not parse (the route answers its 400). */
function bodyObject(req: FastifyRequest): Record<string, unknown> | undefined {
  const b = req.body;
  const text = Buffer.isBuffer(b) ? b.toString('utf8') : typeof b === 'string' ? b : '';
  if (text.trim() === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const s = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A local check by ID: its service's name (service:write) or the node (node:write). */
function needCheckWrite(a: Authorizer, ctx: RouteContext, checkId: string): void {
  const c = ctx.store.check(ctx.nodeName, checkId);
  if (c === undefined) return; // unknown: the route answers Consul's 404/500
  if (c.serviceId !== '') a.need('service', 'write', ctx.store.service(ctx.nodeName, c.serviceId)?.name ?? c.serviceName);
  else a.need('node', 'write', ctx.nodeName);
}

function needServiceWriteById(a: Authorizer, ctx: RouteContext, id: string): void {
  const svc = ctx.store.service(ctx.nodeName, id);
  if (svc !== undefined) a.need('service', 'write', svc.name);
}

/** What every route of the dev agent requires, as Consul's endpoints do. Keys are `METHOD url` as registered. */
export const ROUTE_ACL: Readonly<Record<string, RouteAcl>> = {
  // KV: a key read or write; lists are filtered; a recursive delete needs write on everything under the prefix.
  'GET /v1/kv/*': (a, req) => {
    if (queryHas(req, 'keys') || queryHas(req, 'recurse')) return;
    a.need('key', 'read', params(req)['*'] ?? '');
  },
  'PUT /v1/kv/*': (a, req) => a.need('key', 'write', params(req)['*'] ?? ''),
  'DELETE /v1/kv/*': (a, req) => {
    const key = params(req)['*'] ?? '';
    if (queryHas(req, 'recurse')) a.needKeyWritePrefix(key);
    else a.need('key', 'write', key);
  },
  'PUT /v1/txn': SELF,

  // Agent: its own services and checks need write on them; reads of them are filtered or need read.
  'GET /v1/agent/self': (a, _req, ctx) => a.need('agent', 'read', ctx.nodeName),
  'GET /v1/agent/members': FILTERED,
  'GET /v1/agent/services': FILTERED,
  'GET /v1/agent/checks': FILTERED,
  'GET /v1/agent/service/:id': (a, req, ctx) => {
    const svc = ctx.store.service(ctx.nodeName, params(req)['id'] ?? '');
    if (svc !== undefined) a.need('service', 'read', svc.name);
  },
  'GET /v1/agent/health/service/id/*': (a, req, ctx) => {
    const svc = ctx.store.service(ctx.nodeName, params(req)['*'] ?? '');
    if (svc !== undefined) a.need('service', 'read', svc.name);
  },
  'GET /v1/agent/health/service/name/*': (a, req) => a.need('service', 'read', params(req)['*'] ?? ''),
  'PUT /v1/agent/service/register': (a, req, ctx) => {
    const body = bodyObject(req);
    if (body === undefined) return;
    const name = s(body['Name']);
    if (name === '') return; // the route answers "Missing service name"
    a.need('service', 'write', name);
    // A registration that replaces another service's instance needs write on that one too.
    needServiceWriteById(a, ctx, s(body['ID']) || name);
  },
  'PUT /v1/agent/service/deregister/:id': (a, req, ctx) => needServiceWriteById(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/service/maintenance/:id': (a, req, ctx) => needServiceWriteById(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/maintenance': (a, _req, ctx) => a.need('node', 'write', ctx.nodeName),
  'PUT /v1/agent/check/register': (a, req, ctx) => {
    const body = bodyObject(req);
    if (body === undefined) return;
    const serviceId = s(body['ServiceID']) || s(body['ServiceId']);
    if (serviceId !== '') needServiceWriteById(a, ctx, serviceId);
    else a.need('node', 'write', ctx.nodeName);
  },
  'PUT /v1/agent/check/deregister/:id': (a, req, ctx) => needCheckWrite(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/check/pass/:id': (a, req, ctx) => needCheckWrite(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/check/warn/:id': (a, req, ctx) => needCheckWrite(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/check/fail/:id': (a, req, ctx) => needCheckWrite(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/check/update/:id': (a, req, ctx) => needCheckWrite(a, ctx, params(req)['id'] ?? ''),
  'PUT /v1/agent/reload': (a, _req, ctx) => a.need('agent', 'write', ctx.nodeName),
  'PUT /v1/agent/leave': (a, _req, ctx) => a.need('agent', 'write', ctx.nodeName),
  'PUT /v1/agent/join/*': (a, _req, ctx) => a.need('agent', 'write', ctx.nodeName),
  'PUT /v1/agent/force-leave/*': (a) => a.need('operator', 'write'),
  'GET /v1/agent/host': (a) => a.need('operator', 'read'),
  'GET /v1/agent/metrics': (a, _req, ctx) => a.need('agent', 'read', ctx.nodeName),

  // Catalog and health: lists are filtered by node:read and service:read; writes need write on what they change.
  'GET /v1/catalog/datacenters': PUBLIC,
  'GET /v1/catalog/nodes': FILTERED,
  'GET /v1/catalog/services': FILTERED,
  'GET /v1/catalog/service/:service': FILTERED,
  'GET /v1/catalog/node/:node': FILTERED,
  'GET /v1/catalog/node-services/:node': FILTERED,
  'PUT /v1/catalog/register': (a, req, ctx) => {
    const body = bodyObject(req);
    if (body === undefined) return;
    const node = s(body['Node']);
    if (node === '') return;
    if (body['SkipNodeUpdate'] !== true || !ctx.store.nodes.has(node)) a.need('node', 'write', node);
    const service = body['Service'];
    const svcName = service !== null && typeof service === 'object' ? s((service as Record<string, unknown>)['Service']) : '';
    if (svcName !== '') a.need('service', 'write', svcName);
    const checks = [body['Check'], ...(Array.isArray(body['Checks']) ? body['Checks'] : [])].filter((c) => c !== null && typeof c === 'object') as Array<Record<string, unknown>>;
    for (const c of checks) {
      const sid = s(c['ServiceID']);
      if (sid === '') a.need('node', 'write', node);
      else a.need('service', 'write', ctx.store.services.get(nodeKey(node, sid))?.name ?? svcName);
    }
  },
  'PUT /v1/catalog/deregister': (a, req, ctx) => {
    const body = bodyObject(req);
    if (body === undefined) return;
    const node = s(body['Node']);
    const serviceId = s(body['ServiceID']);
    const checkId = s(body['CheckID']);
    if (serviceId !== '') {
      const svc = ctx.store.services.get(nodeKey(node, serviceId));
      if (svc !== undefined) a.need('service', 'write', svc.name);
    } else if (checkId !== '') {
      const c = ctx.store.checks.get(nodeKey(node, checkId));
      if (c !== undefined && c.serviceId !== '') a.need('service', 'write', c.serviceName);
      else a.need('node', 'write', node);
    } else a.need('node', 'write', node);
  },
  'GET /v1/health/service/:service': FILTERED,
  'GET /v1/health/checks/:service': FILTERED,
  'GET /v1/health/node/:node': FILTERED,
  'GET /v1/health/state/:state': FILTERED,

  // Sessions: write on the session's node to create, renew or destroy; reads are filtered by session:read.
  'PUT /v1/session/create': (a, req, ctx) => {
    const body = bodyObject(req);
    if (body === undefined) return;
    a.need('session', 'write', s(body['Node']) || ctx.nodeName);
  },
  'PUT /v1/session/renew/:id': (a, req, ctx) => {
    const sess = ctx.store.sessions.get(params(req)['id'] ?? '');
    if (sess !== undefined) a.need('session', 'write', sess.node);
  },
  'PUT /v1/session/destroy/:id': (a, req, ctx) => {
    const sess = ctx.store.sessions.get(params(req)['id'] ?? '');
    if (sess !== undefined) a.need('session', 'write', sess.node);
  },
  'GET /v1/session/info/:id': FILTERED,
  'GET /v1/session/list': FILTERED,
  'GET /v1/session/node/:node': FILTERED,

  // Events: write on the name to fire; the list is filtered by event:read.
  'PUT /v1/event/fire/*': (a, req) => a.need('event', 'write', params(req)['*'] ?? ''),
  'GET /v1/event/list': FILTERED,

  'GET /v1/status/leader': PUBLIC,
  'GET /v1/status/peers': PUBLIC,
  'GET /v1/operator/raft/configuration': (a) => a.need('operator', 'read'),
  'GET /v1/coordinate/datacenters': PUBLIC,
  'GET /v1/coordinate/nodes': FILTERED,
  'GET /v1/coordinate/node/:node': FILTERED,

  // weft's Prometheus HTTP SD: read through the caller's own token, so it sees what the caller may read.
  [`GET ${PROMETHEUS_SD_PATH}`]: FILTERED,

  // The ACL endpoints check their own permissions (bootstrap and token/self need none).
  'PUT /v1/acl/bootstrap': SELF,
  'GET /v1/acl/policies': SELF,
  'PUT /v1/acl/policy': SELF,
  'GET /v1/acl/policy/:id': SELF,
  'PUT /v1/acl/policy/:id': SELF,
  'DELETE /v1/acl/policy/:id': SELF,
  'GET /v1/acl/policy/name/:name': SELF,
  'GET /v1/acl/tokens': SELF,
  'PUT /v1/acl/token': SELF,
  'GET /v1/acl/token/self': SELF,
  'GET /v1/acl/token/:id': SELF,
  'PUT /v1/acl/token/:id': SELF,
  'DELETE /v1/acl/token/:id': SELF,
};

/** Whether a route (as registered: method and URL pattern) has an entry in ROUTE_ACL. */
export function hasRouteAcl(method: string, url: string): boolean {
  return ROUTE_ACL[`${method === 'HEAD' ? 'GET' : method} ${url}`] !== undefined;
}

/** Runs the route's entry of ROUTE_ACL; throws Consul's 403 when refused. */
export function enforceRouteAcl(ctx: RouteContext, req: FastifyRequest): void {
  if (ctx.acl === undefined || !ctx.acl.enabled) return;
  const url = req.routeOptions.url;
  if (url === undefined) return; // not found: the 404 handler answers
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const rule = ROUTE_ACL[`${method} ${url}`];
  if (rule === PUBLIC || rule === SELF) return;
  const a = authzOf(ctx, req);
  if (rule === FILTERED) return;
  if (rule === undefined) {
    if (!a.isManagement) throw new ConsulHttpError(403, `Permission denied: weft dev agent: ${method} ${url} has no ACL rule; only a management token may call it`);
    return;
  }
  rule(a, req, ctx);
}
