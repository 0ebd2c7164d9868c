/**
 * The HTTP side: a fastify instance that takes every body as raw bytes (KV
 * values are opaque; JSON endpoints decode themselves to answer bad JSON the
 * way Consul does), applies Consul's cross-cutting rules (?dc, ?filter,
 * ACL tokens: each route's requirement from acl/gate.ts runs before its
 * handler) and turns errors into Consul's plain-text answers.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { isWeftError } from '../../base/errors.js';
import { enforceRouteAcl, hasRouteAcl } from './acl/gate.js';
import { acceptsFilter } from './filter/index.js';
import { ConsulHttpError } from './http-error.js';
import { aclRoutes } from './routes/acl.js';
import { agentRoutes } from './routes/agent.js';
import { agentHealthRoutes } from './routes/agent-health.js';
import { agentOpsRoutes } from './routes/agent-ops.js';
import { catalogRoutes } from './routes/catalog.js';
import { type RouteContext, setDefaultAclPolicyHeader } from './routes/common.js';
import { coordinateRoutes } from './routes/coordinate.js';
import { eventRoutes } from './routes/event.js';
import { healthRoutes } from './routes/health.js';
import { kvRoutes } from './routes/kv.js';
import { metricsRoutes } from './routes/metrics.js';
import { operatorRoutes } from './routes/operator.js';
import { sessionRoutes } from './routes/session.js';
import { statusRoutes } from './routes/status.js';
import { txnRoutes } from './routes/txn.js';

/** Bodies above this are refused before routing (KV values have their own 512 KiB limit and message). */
const BODY_LIMIT = 8 * 1024 * 1024;

/** Builds the fastify app with every route; the caller listens and closes. */
export function buildServer(ctx: RouteContext): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    // KV keys and IDs can be long; find-my-way's default cap is 100 characters.
    routerOptions: { maxParamLength: 2048 },
    // Parked blocking queries must not hold close() for minutes.
    forceCloseConnections: true,
  });

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.addHook('onRequest', async (req) => {
    const url = req.url;
    const q = url.indexOf('?');
    if (q === -1) return;
    const search = new URLSearchParams(url.slice(q + 1));
    // ?filter works on the routes Consul documents it for (registered with FILTERED). Consul ignores it
    // elsewhere, which would hide a mistake: the dev agent refuses it.
    if (search.has('filter') && search.get('filter') !== '' && !acceptsFilter(req.routeOptions.config)) {
      throw new ConsulHttpError(
        400,
        `weft dev agent: ?filter is not supported on ${req.method} ${url.slice(0, q)}; Consul documents it for agent/services, agent/checks, catalog/{nodes,services,service,node,node-services} and health/{node,checks,service,state}`,
      );
    }
    // Agent endpoints are answered locally and ignore ?dc, like Consul's.
    const dc = search.get('dc');
    if (dc !== null && dc !== '' && dc !== ctx.datacenter && !url.startsWith('/v1/agent/')) {
      throw new ConsulHttpError(500, 'No path to datacenter');
    }
  });

  // ACLs: the route's requirement (acl/gate.ts), once the body is read (registrations are judged by what they register).
  setDefaultAclPolicyHeader(app, ctx.acl?.enabled === true ? ctx.acl.defaultPolicy : 'allow');
  app.addHook('preHandler', async (req) => enforceRouteAcl(ctx, req));
  // A route without an ACL rule is refused to all but management tokens; say so when one is added.
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (!hasRouteAcl(method, route.url)) ctx.logger.warn({ method, url: route.url }, 'dev-consul: route has no ACL rule (acl/gate.ts); only management tokens may call it');
    }
  });

  app.setErrorHandler((err: FastifyError | ConsulHttpError, _req, reply) => {
    let status = 500;
    let message = err.message;
    if (err instanceof ConsulHttpError) status = err.status;
    else if (isWeftError(err)) status = err.statusCode;
    else if (typeof (err as FastifyError).statusCode === 'number') status = (err as FastifyError).statusCode!;
    if (status >= 500 && !(err instanceof ConsulHttpError)) ctx.logger.error({ err }, 'dev-consul: request failed');
    if (status === 413 && !(err instanceof ConsulHttpError)) message = `Request body too large, max size: ${BODY_LIMIT} bytes`;
    void reply.code(status).header('Content-Type', 'text/plain; charset=utf-8').send(message);
  });

  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).header('Content-Type', 'text/plain; charset=utf-8').send('404 page not found\n');
  });

  metricsRoutes(app, ctx); // first: its onResponse hook times every route
  agentRoutes(app, ctx);
  agentHealthRoutes(app, ctx);
  agentOpsRoutes(app, ctx);
  catalogRoutes(app, ctx);
  healthRoutes(app, ctx);
  kvRoutes(app, ctx);
  txnRoutes(app, ctx);
  sessionRoutes(app, ctx);
  statusRoutes(app, ctx);
  eventRoutes(app, ctx);
  operatorRoutes(app, ctx);
  coordinateRoutes(app, ctx);
  aclRoutes(app, ctx);
  return app;
}
